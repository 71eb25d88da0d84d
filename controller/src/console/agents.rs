//! The handlers of the agents list, the agent page and the labels form. Each reads through
//! the core (`agents_filtered`, `agent`, `commands`, `approvals`, `query_events`) and the
//! labels change goes through `Controller::set_agent_labels`, audited as the person.

use super::Shared;
use super::agent_list;
use super::agent_page::{self, AgentView, Notice};
use super::guard::{Caller, refused};
use super::layout::{failed, html, reason_too_long};
use crate::core::{AgentFilter, CoreError, EventQuery};
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use cordon_proto::limits::parse_label;
use http::StatusCode;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Commands and events the agent page lists.
const PAGE_COMMANDS: u32 = 50;
const PAGE_EVENTS: u32 = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    label: String,
    state: String,
    sensor: String,
}

/// `GET /agents?label=K=V&state=S&sensor=M`.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Response {
    let filter = AgentFilter {
        label: q.label.trim().to_string(),
        state: q.state,
        sensor: q.sensor,
    };
    let all = match shared.ctl.agents().await {
        Ok(all) => all,
        Err(e) => return failed(&e),
    };
    let mut modes: Vec<String> = all
        .iter()
        .map(|p| p.agent.process_sensor.clone())
        .filter(|m| !m.is_empty())
        .collect();
    modes.sort();
    modes.dedup();
    let shown: Vec<_> = all.into_iter().filter(|p| filter.matches(p)).collect();
    html(agent_list::list(&caller, &shown, &filter, &modes))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
    /// The command an action just sent.
    command: String,
    /// The approval an action is waiting for.
    pending: String,
}

/// `GET /agents/{id}`.
pub async fn page(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(asked): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    match view(&shared, &asked, &q).await {
        Ok(v) => html(agent_page::agent(&caller, &v)),
        Err(e) => failed(&e),
    }
}

async fn view(shared: &Shared, asked: &str, q: &PageQuery) -> Result<AgentView, CoreError> {
    let ctl = &shared.ctl;
    let presence = ctl.agent(asked).await?;
    let id = presence.agent.id.clone();
    let commands = ctl.commands(&id, PAGE_COMMANDS).await?;
    let mut pending = ctl.approvals(false).await?;
    pending.retain(|a| a.agent_id == id);
    let mut events = ctl
        .query_events(EventQuery {
            agent: id.clone(),
            limit: PAGE_EVENTS,
            ..Default::default()
        })
        .await?;
    events.reverse();
    // Only what this agent's own records hold is shown back: nothing from the query string.
    let notice = match (q.command.as_str(), q.pending.as_str()) {
        ("", "") => None,
        (cmd, "") => commands
            .iter()
            .find(|r| r.id == cmd)
            .cloned()
            .map(Notice::Command),
        (_, apr) => pending
            .iter()
            .find(|a| a.id == apr)
            .cloned()
            .map(Notice::Pending),
    };
    Ok(AgentView {
        presence,
        commands,
        pending,
        events,
        notice,
    })
}

#[derive(Debug, Deserialize)]
pub struct LabelsForm {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    reason: String,
}

/// `POST /agents/{id}/labels`: replaces the agent's labels.
pub async fn set_labels(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(asked): Path<String>,
    Form(f): Form<LabelsForm>,
) -> Response {
    if let Some(res) = reason_too_long(&f.reason) {
        return res;
    }
    let labels = match parse_labels(&f.labels) {
        Ok(l) => l,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    let set = shared
        .ctl
        .set_agent_labels(&caller.admin, &asked, labels, f.reason.trim())
        .await;
    match set {
        Ok(p) => Redirect::to(&format!("/agents/{}", p.agent.id)).into_response(),
        Err(e) => failed(&e),
    }
}

/// `key=value` lines (blank lines skipped) as a label map.
pub(super) fn parse_labels(text: &str) -> Result<HashMap<String, String>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| parse_label(l).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lines_parse_and_bad_ones_are_named() {
        let l = parse_labels("env=prod\n\n team = red \n").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l["team"], "red");
        assert!(parse_labels("novalue").unwrap_err().contains("novalue"));
    }
}
