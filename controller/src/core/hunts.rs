//! Hunts (issue #15): one collection run on many agents, chosen by id, by labels or all.
//! Creating one signs a `collect` command per agent, stores them with the hunt in one
//! transaction and sends them at once to the agents that are connected; the others get theirs
//! when they return (queued commands are delivered on hello) until the hunt expires. Progress
//! is the commands' statuses; results are their rows. Cancelling ends the commands not yet
//! answered. Creating and cancelling are audited; both need the respond permission
//! (`policy::roles`).

use super::fanout;
use super::{Admin, Controller, CoreError};
use crate::store::{Agent, Agents, CommandRow, HuntRow, HuntSummary, Hunts};
use cordon_proto::time::now_ms;
use cordon_proto::{Collect, action};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a hunt waits for offline agents when the request does not say.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// The longest a hunt may wait: the longest a command may live.
pub const MAX_EXPIRY: Duration = super::commands::MAX_COMMAND_TTL;

/// A hunt an administrator asks for.
#[derive(Debug, Clone, Default)]
pub struct HuntRequest {
    pub collect: Collect,
    /// Exactly one of: agent ids (or prefixes), labels, all.
    pub agent_ids: Vec<String>,
    pub labels: HashMap<String, String>,
    pub all: bool,
    /// 0: [`DEFAULT_EXPIRY`].
    pub expires_secs: u64,
}

/// A hunt with the command sent to each of its agents.
#[derive(Debug, Clone)]
pub struct Hunt {
    pub summary: HuntSummary,
    pub commands: Vec<CommandRow>,
}

impl Controller {
    /// Starts a hunt as `admin`; audited as `hunt.create`.
    pub async fn create_hunt(
        self: &Arc<Self>,
        admin: &Admin,
        req: HuntRequest,
    ) -> Result<Hunt, CoreError> {
        let entry = admin.entry("hunt.create", "hunt").detail(json!({
            "collector": req.collect.collector, "args": req.collect.args,
            "agents": req.agent_ids, "labels": req.labels, "all": req.all,
            "expires_secs": req.expires_secs,
        }));
        let result = self.start_hunt(admin, req).await;
        self.audited(entry, result, |h, e| {
            e.target = format!("hunt:{}", h.summary.hunt.id);
            e.detail["targeted"] = json!(h.commands.len());
            e.detail["selector"] = json!(h.summary.hunt.selector);
        })
        .await
    }

    async fn start_hunt(
        self: &Arc<Self>,
        admin: &Admin,
        req: HuntRequest,
    ) -> Result<Hunt, CoreError> {
        if !cordon_proto::names::COLLECTORS.contains(&req.collect.collector.as_str()) {
            return Err(CoreError::UnknownCollector(req.collect.collector));
        }
        let expiry = match req.expires_secs {
            0 => DEFAULT_EXPIRY,
            n => Duration::from_secs(n),
        };
        if expiry > MAX_EXPIRY {
            return Err(CoreError::HuntTooLong);
        }
        let (agents, selector) = self.hunt_targets(&req).await?;
        let now = now_ms();
        let kind = action::Kind::Collect(req.collect.clone());
        let rows: Vec<CommandRow> = agents
            .iter()
            .map(|a| self.signed_row(a.id.clone(), &kind, expiry, admin.name.clone()))
            .collect();
        let hunt = HuntRow {
            id: format!("hunt-{}", hex::encode(rand::random::<[u8; 8]>())),
            collector: req.collect.collector,
            args: req.collect.args,
            selector,
            created_by: admin.name.clone(),
            created_at_ms: now,
            expires_at_ms: now + expiry.as_millis() as i64,
            cancelled_at_ms: None,
        };
        self.store.create_hunt(hunt.clone(), rows.clone()).await?;
        tracing::info!(hunt_id = %hunt.id, agents = rows.len(), by = %admin.name, "hunt started");
        self.deliver_all(rows).await;
        self.hunt(&hunt.id).await
    }

    /// The unrevoked agents `req` chooses, in id order, and the choice as shown.
    async fn hunt_targets(&self, req: &HuntRequest) -> Result<(Vec<Agent>, String), CoreError> {
        let ways = [!req.agent_ids.is_empty(), !req.labels.is_empty(), req.all];
        if ways.iter().filter(|w| **w).count() != 1 {
            return Err(CoreError::HuntSelector);
        }
        if !req.agent_ids.is_empty() {
            let mut agents = Vec::new();
            for id in &req.agent_ids {
                let a = self.resolve(id).await?;
                if a.revoked_at_ms.is_some() {
                    return Err(CoreError::CommandForRevoked(a.id));
                }
                agents.push(a);
            }
            agents.sort_by(|a, b| a.id.cmp(&b.id));
            agents.dedup_by(|a, b| a.id == b.id);
            let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
            let selector = format!("agents:{}", ids.join(","));
            return Ok((agents, selector));
        }
        cordon_proto::limits::check_labels(&req.labels).map_err(CoreError::BadLabels)?;
        let selector = match req.all {
            true => "all".to_string(),
            false => format!("labels:{}", fanout::selector_text(&req.labels)),
        };
        let targets = fanout::select(self.store.agents().await?, &req.labels, &[]).targets;
        if targets.is_empty() {
            return Err(CoreError::NoHostMatches(selector));
        }
        Ok((targets, selector))
    }

    /// The newest `limit` hunts with their progress.
    pub async fn hunts(&self, limit: u32) -> Result<Vec<HuntSummary>, CoreError> {
        let limit = super::agents::list_limit(limit)?;
        Ok(self.store.hunts(limit).await?)
    }

    /// A hunt, its progress and each agent's command.
    pub async fn hunt(&self, id: &str) -> Result<Hunt, CoreError> {
        let summary = self
            .store
            .hunt(id.to_string())
            .await?
            .ok_or_else(|| CoreError::NoHunt(id.into()))?;
        let commands = self.store.hunt_commands(id.to_string()).await?;
        Ok(Hunt { summary, commands })
    }

    /// Cancels a hunt as `admin`: the commands not yet answered end; audited as
    /// `hunt.cancel`.
    pub async fn cancel_hunt(&self, admin: &Admin, id: &str) -> Result<Hunt, CoreError> {
        let entry = admin.entry("hunt.cancel", format!("hunt:{id}"));
        let result = async {
            let ended = self
                .store
                .cancel_hunt(id.to_string(), now_ms())
                .await?
                .ok_or_else(|| CoreError::NoHunt(id.into()))?;
            for command in &ended {
                let _ = self.finished.send(command.clone());
            }
            let hunt = self.hunt(id).await?;
            Ok((hunt, ended.len()))
        }
        .await;
        let (hunt, _) = self
            .audited(entry, result, |(_, ended), e| {
                e.detail["commands_ended"] = json!(ended);
            })
            .await?;
        Ok(hunt)
    }
}
