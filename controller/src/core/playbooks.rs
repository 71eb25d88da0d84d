//! Playbooks and incidents as administrators drive them: applying and enabling playbooks,
//! the dry run, approvals, notes, and an incident with everything attached to it.

use super::replicas::Signal;
use super::{Admin, Controller, CoreError};
use crate::playbook::context::RunContext;
use crate::playbook::{engine, spec};
use crate::store::{
    Agent, Agents, AlertRow, ApprovalRow, ApprovalStatus, IncidentRow, PlaybookRow, RunRow,
    StepRow, TimelineRow,
};
use crate::store::{Alerts, PlaybookStore};
use cordon_proto::limits::{MAX_PLAYBOOK_BYTES, MAX_TEXT};
use cordon_proto::time::now_ms;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// A stored playbook as administrators see it.
#[derive(Debug, Clone)]
pub struct PlaybookInfo {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub dry_run: bool,
    pub origin: String,
    pub steps: usize,
    pub updated_at_ms: i64,
}

impl PlaybookInfo {
    fn new(pb: &spec::Playbook, row: &PlaybookRow) -> Self {
        Self {
            name: pb.name.clone(),
            description: pb.description.clone(),
            enabled: row.enabled,
            dry_run: pb.dry_run,
            origin: row.origin.clone(),
            steps: pb.steps.len(),
            updated_at_ms: row.updated_at_ms,
        }
    }
}

/// What a playbook would do for an alert.
#[derive(Debug, Clone)]
pub struct Plan {
    pub triggers: bool,
    pub steps: Vec<String>,
}

/// An incident with everything attached to it.
#[derive(Debug, Clone)]
pub struct IncidentDetails {
    pub incident: IncidentRow,
    pub timeline: Vec<TimelineRow>,
    pub alerts: Vec<AlertRow>,
    pub approvals: Vec<ApprovalRow>,
}

/// An incident's host and playbook runs, for the report.
#[derive(Debug, Clone)]
pub struct IncidentHistory {
    pub details: IncidentDetails,
    pub agent: Option<Agent>,
    pub runs: Vec<(RunRow, Vec<StepRow>)>,
}

pub(super) fn parse(origin: &str, yaml: &str) -> Result<spec::Playbook, CoreError> {
    if yaml.len() > MAX_PLAYBOOK_BYTES {
        return Err(CoreError::PlaybookTooLarge {
            origin: origin.into(),
            size: yaml.len(),
        });
    }
    Ok(spec::parse(yaml, origin)?)
}

impl Controller {
    /// Checks, stores and installs a playbook file, for an administrator.
    pub async fn apply_playbook_as(
        &self,
        admin: &Admin,
        origin: &str,
        yaml: &str,
    ) -> Result<PlaybookInfo, CoreError> {
        let entry = admin
            .entry("playbook.apply", "")
            .detail(json!({ "origin": origin }));
        let result = self.apply_playbook(origin, yaml).await;
        self.audited(entry, result, |p, e| {
            e.target = format!("playbook:{}", p.name)
        })
        .await
    }

    /// Checks, stores and installs a playbook file.
    pub async fn apply_playbook(
        &self,
        origin: &str,
        yaml: &str,
    ) -> Result<PlaybookInfo, CoreError> {
        self.put_playbook(origin, yaml, None).await
    }

    /// Checks, stores and installs a playbook, enabled as `enabled` says or, if `None`, as
    /// its YAML does.
    pub(super) async fn put_playbook(
        &self,
        origin: &str,
        yaml: &str,
        enabled: Option<bool>,
    ) -> Result<PlaybookInfo, CoreError> {
        let pb = parse(origin, yaml)?;
        let row = PlaybookRow {
            name: pb.name.clone(),
            origin: origin.into(),
            source: yaml.into(),
            enabled: enabled.unwrap_or(pb.enabled),
            updated_at_ms: now_ms(),
        };
        self.store.upsert_playbook(row.clone()).await?;
        let info = PlaybookInfo::new(&pb, &row);
        self.playbooks.install(pb, row.source, row.enabled);
        self.signal(Signal::Playbooks).await;
        Ok(info)
    }

    /// At start: applies the configured directory, installs every stored playbook, resumes
    /// unfinished runs and starts those an alert should have had (see `engine::catch_up`).
    pub async fn load_playbooks(
        self: &Arc<Self>,
        dir: Option<&Path>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(dir) = dir {
            let mut paths: Vec<_> = std::fs::read_dir(dir)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect();
            paths.sort();
            for p in paths {
                let yaml = std::fs::read_to_string(&p)?;
                if let Err(e) = self.apply_playbook(&p.display().to_string(), &yaml).await {
                    tracing::error!("playbook not applied: {}", e.public_message());
                }
            }
        }
        self.install_stored_playbooks().await?;
        let resumed = engine::resume(&self.engine).await?;
        if resumed > 0 {
            tracing::info!(runs = resumed, "playbook runs resumed");
        }
        let started = engine::catch_up(&self.engine).await?;
        if started > 0 {
            tracing::warn!(
                runs = started,
                "playbook runs started for alerts raised just before the controller stopped"
            );
        }
        Ok(())
    }

    /// Installs every stored playbook as stored (at start, and when another controller on
    /// a shared store changed one).
    pub(super) async fn install_stored_playbooks(&self) -> Result<(), crate::store::StoreError> {
        for row in self.store.playbooks().await? {
            match spec::parse(&row.source, &row.origin) {
                Ok(pb) => self.playbooks.install(pb, row.source, row.enabled),
                Err(e) => tracing::error!("stored playbook no longer parses: {e}"),
            }
        }
        Ok(())
    }

    pub async fn list_playbooks(&self) -> Result<Vec<PlaybookInfo>, CoreError> {
        Ok(self
            .store
            .playbooks()
            .await?
            .iter()
            .filter_map(|row| {
                spec::parse(&row.source, &row.origin)
                    .ok()
                    .map(|pb| PlaybookInfo::new(&pb, row))
            })
            .collect())
    }

    pub async fn set_playbook_enabled(
        &self,
        admin: &Admin,
        name: &str,
        enabled: bool,
    ) -> Result<PlaybookInfo, CoreError> {
        let action = if enabled {
            "playbook.enable"
        } else {
            "playbook.disable"
        };
        let entry = admin.entry(action, format!("playbook:{name}"));
        let result = async {
            if !self
                .store
                .set_playbook_enabled(name.into(), enabled, now_ms())
                .await?
            {
                return Err(CoreError::NoPlaybook(name.into()));
            }
            self.playbooks.set_enabled(name, enabled);
            self.signal(Signal::Playbooks).await;
            self.list_playbooks()
                .await?
                .into_iter()
                .find(|p| p.name == name)
                .ok_or_else(|| CoreError::NoPlaybook(name.into()))
        }
        .await;
        self.audited(entry, result, |_, _| {}).await
    }

    /// What the playbook would do for a stored alert; nothing is sent or stored.
    pub async fn dry_run_playbook(
        &self,
        origin: &str,
        yaml: &str,
        alert_id: &str,
    ) -> Result<Plan, CoreError> {
        let pb = parse(origin, yaml)?;
        let alert = self.alert(alert_id).await?;
        let agent = self.store.agent(alert.agent_id.clone()).await?;
        let mut cx = RunContext::new(alert, agent);
        let triggers = cx.triggers(&pb);
        let steps = engine::plan(&self.engine, &pb, &mut cx)
            .await
            .map_err(CoreError::Plan)?;
        Ok(Plan { triggers, steps })
    }

    /// Pending approvals, or all of them.
    pub async fn approvals(&self, all: bool) -> Result<Vec<ApprovalRow>, CoreError> {
        Ok(self.store.approvals(all, None).await?)
    }

    /// Approves or denies a pending approval; the waiting run wakes at once.
    pub async fn decide_approval(
        &self,
        admin: &Admin,
        approval_id: &str,
        approve: bool,
        reason: &str,
    ) -> Result<ApprovalRow, CoreError> {
        let (action, status) = if approve {
            ("approval.approve", ApprovalStatus::Approved)
        } else {
            ("approval.deny", ApprovalStatus::Denied)
        };
        let entry = admin
            .entry(action, format!("approval:{approval_id}"))
            .detail(json!({ "reason": reason }));
        let result = self.decide(admin, approval_id, status, reason).await;
        self.audited(entry, result, |_, _| {}).await
    }

    async fn decide(
        &self,
        admin: &Admin,
        approval_id: &str,
        status: ApprovalStatus,
        reason: &str,
    ) -> Result<ApprovalRow, CoreError> {
        if admin.kind == crate::policy::people::Kind::Service {
            return Err(CoreError::ServiceCannotApprove(admin.name.clone()));
        }
        let asked = self
            .store
            .approval(approval_id.into())
            .await?
            .ok_or_else(|| CoreError::NoApproval(approval_id.into()))?;
        self.may_decide(admin, &asked).await?;
        let decided = self
            .store
            .decide_approval(
                approval_id.into(),
                status,
                admin.name.clone(),
                reason.into(),
                now_ms(),
            )
            .await?;
        let Some(a) = decided else {
            return Err(match self.store.approval(approval_id.into()).await? {
                Some(a) => CoreError::ApprovalDecided {
                    id: a.id,
                    status: a.status.to_string(),
                },
                None => CoreError::NoApproval(approval_id.into()),
            });
        };
        let note = match reason {
            "" => String::new(),
            r => format!(": {r}"),
        };
        if !a.incident_id.is_empty() {
            let text = format!(
                "approval {} {status} ({}), requested by {}{note}",
                a.id, a.what, a.requested_by
            );
            self.timeline(&a.incident_id, "approval", &admin.name, text, &a.id)
                .await?;
        }
        let _ = self.playbooks.decided.send(a.id.clone());
        self.signal(Signal::Decided(a.id.clone())).await;
        if status == ApprovalStatus::Approved {
            self.carry_out(&a, admin).await?;
        }
        Ok(a)
    }

    /// Adds an administrator's note to an incident's timeline; returns the incident's id.
    pub async fn add_incident_note(
        &self,
        admin: &Admin,
        incident: &str,
        text: &str,
    ) -> Result<String, CoreError> {
        let entry = admin
            .entry("incident.note", format!("incident:{incident}"))
            .detail(json!({ "text": text }));
        let result = async {
            if text.trim().is_empty() || text.len() > MAX_TEXT {
                return Err(CoreError::BadNote);
            }
            let Some((inc, _, _)) = self.store.incident(incident.into()).await? else {
                return Err(CoreError::NoIncident(incident.into()));
            };
            self.timeline(&inc.id, "note", &admin.name, text.into(), "")
                .await?;
            Ok(inc.id)
        }
        .await;
        self.audited(entry, result, |_, _| {}).await
    }

    /// An incident (by id or prefix) with its timeline, alerts and approvals.
    pub async fn incident(&self, id: &str) -> Result<IncidentDetails, CoreError> {
        let (incident, timeline, alerts) = self
            .store
            .incident(id.into())
            .await?
            .ok_or_else(|| CoreError::NoIncident(id.into()))?;
        let approvals = self
            .store
            .approvals(true, Some(incident.id.clone()))
            .await?;
        Ok(IncidentDetails {
            incident,
            timeline,
            alerts,
            approvals,
        })
    }

    /// An incident with its host and playbook runs.
    pub async fn incident_history(&self, id: &str) -> Result<IncidentHistory, CoreError> {
        let details = self.incident(id).await?;
        let runs = self
            .store
            .runs_for_incident(details.incident.id.clone())
            .await?;
        let agent = self.store.agent(details.incident.agent_id.clone()).await?;
        Ok(IncidentHistory {
            details,
            agent,
            runs,
        })
    }
}
