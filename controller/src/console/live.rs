//! The overview's figures, gathered from the core for the page and for its live updates: a
//! server-sent event stream (`GET /live/overview`, through `sse.rs`) that sends the figures
//! as JSON when it opens and every [`INTERVAL`] after, which `assets/console.js` writes into
//! the page.

use super::Shared;
use super::guard::Caller;
use super::sse::{self, Feed, Stream};
use crate::core::{Controller, CoreError, IncidentStatus};
use crate::policy::grouping::LEVELS;
use axum::Extension;
use axum::extract::State;
use axum::response::sse::Event;
use cordon_proto::limits::MAX_LIST;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How often the overview is sent again.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Alerts the overview lists.
const LATEST_ALERTS: u32 = 10;

/// What the overview shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub agents_online: usize,
    pub agents_offline: usize,
    pub agents_isolated: usize,
    /// Agents (not revoked) whose sensors are degraded.
    pub agents_degraded: usize,
    /// Events stored per second, lately.
    pub events_per_sec: f64,
    /// Open incidents per severity, from critical down, each severity listed.
    pub open_incidents: Vec<(String, usize)>,
    pub pending_approvals: usize,
    /// Newest first.
    pub latest_alerts: Vec<AlertLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    pub at_ms: i64,
    pub level: String,
    pub title: String,
    pub agent_id: String,
    pub count: u32,
    pub incident_id: String,
}

/// The overview's figures now.
pub async fn gather(ctl: &Controller) -> Result<Overview, CoreError> {
    let agents = ctl.agents().await?;
    let live = agents.iter().filter(|p| p.agent.revoked_at_ms.is_none());
    let online = live.clone().filter(|p| p.online).count();
    let open = ctl
        .incidents(IncidentStatus::Open.as_str(), MAX_LIST)
        .await?;
    let open_incidents = LEVELS
        .iter()
        .rev()
        .map(|l| {
            (
                l.to_string(),
                open.iter().filter(|i| i.severity == *l).count(),
            )
        })
        .collect();
    let mut alerts = ctl.alerts(0, LEVELS[0], "", LATEST_ALERTS).await?;
    alerts.sort_by_key(|a| std::cmp::Reverse(a.last_at_ms));
    Ok(Overview {
        agents_online: online,
        agents_offline: live.clone().count() - online,
        agents_isolated: live.clone().filter(|p| p.agent.isolation_desired).count(),
        agents_degraded: live.filter(|p| !p.degraded().is_empty()).count(),
        events_per_sec: ctl.events_per_sec(),
        open_incidents,
        pending_approvals: ctl.approvals(false).await?.len(),
        latest_alerts: alerts
            .into_iter()
            .map(|a| AlertLine {
                at_ms: a.last_at_ms,
                level: a.rule.level,
                title: a.rule.title,
                agent_id: a.agent_id,
                count: a.count,
                incident_id: a.incident_id,
            })
            .collect(),
    })
}

/// `GET /live/overview`: the overview as server-sent events.
pub async fn overview_events(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Stream {
    sse::stream(shared, caller, INTERVAL, OverviewFeed)
}

/// The overview, all of it each time.
struct OverviewFeed;

impl Feed for OverviewFeed {
    async fn next(&mut self, shared: &Shared, _: &Caller) -> Result<Vec<Event>, CoreError> {
        Ok(vec![sse::json_event(
            "overview",
            &gather(&shared.ctl).await?,
        )])
    }
}
