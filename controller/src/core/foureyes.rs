//! Four eyes. With `[people] four_eyes = true`, a person's containment of a protected host
//! (one carrying a `playbooks.protected_labels` label: isolate, kill, quarantine, block) and
//! the release of a host that a playbook isolated for a critical incident do not run: they
//! become a pending approval, recorded with who asked, that another person with the approve
//! permission decides. Once approved, the command goes out as the one who asked, with the
//! approver named beside it. Nobody decides their own request, and no service account decides
//! any.

use super::{Admin, Controller, CoreError};
use crate::store::{
    Agent, Alerts, ApprovalRow, ApprovalStatus, IncidentStatus, PlaybookStore, StepStatus,
    TimelineRow,
};
use cordon_proto::action;
use cordon_proto::limits::MAX_LIST;
use cordon_proto::time::now_ms;
use prost::Message;
use serde_json::json;
use std::time::Duration;

impl Controller {
    /// Why `action` on `agent` must wait for a second person now, if it must.
    pub(super) async fn second_person_needed(
        &self,
        agent: &Agent,
        action: &action::Kind,
    ) -> Result<Option<String>, CoreError> {
        if !self.config.people.four_eyes {
            return Ok(None);
        }
        use action::Kind::*;
        match action {
            Isolate(_) | Kill(_) | Quarantine(_) | BlockIp(_) => {
                let label = self
                    .playbooks
                    .config
                    .protected_labels
                    .iter()
                    .find(|(k, v)| agent.labels.get(k).is_some_and(|have| have == v));
                Ok(label.map(|(k, v)| format!("host carries the protected label {k}={v}")))
            }
            Release(_) if agent.isolation_desired => Ok(self
                .critical_isolation(&agent.id)
                .await?
                .map(|inc| format!("a playbook isolated it for critical incident {inc}"))),
            _ => Ok(None),
        }
    }

    /// The open critical incident on `agent_id` for which a playbook isolated it, if any.
    async fn critical_isolation(&self, agent_id: &str) -> Result<Option<String>, CoreError> {
        let incidents = self.store.incidents(None, MAX_LIST).await?;
        let open = incidents.into_iter().filter(|i| {
            i.agent_id == agent_id
                && i.severity == "critical"
                && matches!(i.status, IncidentStatus::Open | IncidentStatus::Contained)
        });
        for inc in open {
            let runs = self.store.runs_for_incident(inc.id.clone()).await?;
            let isolated = runs
                .iter()
                .flat_map(|(_, steps)| steps)
                .any(|s| s.action == "isolate_host" && s.status == StepStatus::Succeeded);
            if isolated {
                return Ok(Some(inc.id));
            }
        }
        Ok(None)
    }

    /// Records `action` as a pending approval asked by `admin`; on the incident's timeline
    /// too when the host has an open incident.
    pub(super) async fn ask_second_person(
        &self,
        admin: &Admin,
        agent: &Agent,
        action: action::Kind,
        why: String,
    ) -> Result<ApprovalRow, CoreError> {
        let now = now_ms();
        let incident = self.open_incident(&agent.id).await?;
        let what = format!("{} {}", super::action_kind(&action), agent.id);
        let timeout = Duration::from_secs(self.config.people.approval_timeout_secs);
        let row = ApprovalRow {
            incident_id: incident.clone().unwrap_or_default(),
            action: Some(cordon_proto::Action::from(action).encode_to_vec()),
            ..ApprovalRow::pending(
                admin.name.clone(),
                agent.id.clone(),
                what.clone(),
                why,
                now,
                timeout,
            )
        };
        let asked = self.store.request_approval(row).await?;
        if let Some(incident) = incident {
            let text = format!("approval {} requested by {}: {what}", asked.id, admin.name);
            self.timeline(&incident, "approval", &admin.name, text, &asked.id)
                .await?;
        }
        tracing::info!(approval = %asked.id, by = %admin.name, what = %what, "containment waits for a second person");
        Ok(asked)
    }

    /// Adds an entry to an incident's timeline.
    pub(super) async fn timeline(
        &self,
        incident: &str,
        kind: &str,
        actor: &str,
        text: String,
        reference: &str,
    ) -> Result<(), CoreError> {
        let entry = TimelineRow {
            at_ms: now_ms(),
            kind: kind.into(),
            actor: actor.into(),
            text,
            reference: reference.into(),
        };
        Ok(self.store.add_timeline(incident.to_string(), entry).await?)
    }

    /// The most recent open incident on `agent_id`.
    async fn open_incident(&self, agent_id: &str) -> Result<Option<String>, CoreError> {
        let open = self
            .store
            .incidents(Some(IncidentStatus::Open), MAX_LIST)
            .await?;
        Ok(open
            .into_iter()
            .filter(|i| i.agent_id == agent_id)
            .max_by_key(|i| i.updated_at_ms)
            .map(|i| i.id))
    }

    /// Refuses a decision by the one who asked, or on a person's request past its expiry
    /// (which is then marked expired). (Service accounts are refused before the approval is
    /// looked up.)
    pub(super) async fn may_decide(&self, by: &Admin, a: &ApprovalRow) -> Result<(), CoreError> {
        if a.requested_by == by.name {
            return Err(CoreError::OwnRequest(a.id.clone()));
        }
        let person = a.run_id.is_empty();
        if person && a.status == ApprovalStatus::Pending && a.expires_at_ms <= now_ms() {
            let expired = ApprovalStatus::Expired;
            self.store
                .decide_approval(
                    a.id.clone(),
                    expired,
                    "controller".into(),
                    String::new(),
                    now_ms(),
                )
                .await?;
            return Err(CoreError::ApprovalDecided {
                id: a.id.clone(),
                status: expired.to_string(),
            });
        }
        Ok(())
    }

    /// Sends the command of an approved person's request, as the one who asked.
    pub(super) async fn carry_out(&self, a: &ApprovalRow, by: &Admin) -> Result<(), CoreError> {
        let Some(bytes) = &a.action else {
            return Ok(());
        };
        let action = cordon_proto::Action::decode(bytes.as_slice())
            .ok()
            .and_then(|a| a.kind)
            .ok_or_else(|| CoreError::CorruptApproval(a.id.clone()))?;
        let kind = super::action_kind(&action);
        let ttl = Duration::from_secs(self.config.command_ttl_secs);
        let mut entry = crate::policy::audit::AuditEntry::new(
            &a.requested_by,
            format!("command.{kind}"),
            format!("agent:{}", a.agent_id),
        )
        .detail(json!({ "approval": a.id, "approved_by": by.name, "action": action }));
        let sent = self
            .submit_command(a.agent_id.clone(), action, ttl, a.requested_by.clone())
            .await;
        entry.outcome = match &sent {
            Ok(row) => format!("{} (approved by {})", row.status.as_str(), by.name),
            Err(e) => e.outcome(),
        };
        let _ = self.record(entry).await;
        sent.map(|_| ())
    }
}
