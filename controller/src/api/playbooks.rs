//! The admin side of playbooks: applying files, the dry run, approvals, incident notes.

use super::Controller;
use crate::playbook::context::RunContext;
use crate::playbook::{engine, spec};
use crate::store::{ApprovalRow, PlaybookRow, TimelineRow};
use cordon_proto::limits::MAX_PLAYBOOK_BYTES;
use cordon_proto::time::now_ms;
use cordon_proto::*;
use std::path::Path;
use tonic::Status;

pub fn approval_record(a: ApprovalRow) -> ApprovalRecord {
    ApprovalRecord {
        id: a.id,
        run_id: a.run_id,
        incident_id: a.incident_id,
        agent_id: a.agent_id,
        what: a.what,
        reason: a.reason,
        status: a.status,
        requested_at_ms: a.requested_at_ms,
        expires_at_ms: a.expires_at_ms,
        decided_by: a.decided_by,
        decided_at_ms: a.decided_at_ms,
        note: a.note,
    }
}

fn record(pb: &spec::Playbook, row: &PlaybookRow) -> PlaybookRecord {
    PlaybookRecord {
        name: pb.name.clone(),
        description: pb.description.clone(),
        enabled: row.enabled,
        dry_run: pb.dry_run,
        origin: row.origin.clone(),
        steps: pb.steps.len() as u32,
        updated_at_ms: row.updated_at_ms,
    }
}

fn parse(origin: &str, yaml: &str) -> Result<spec::Playbook, Status> {
    if yaml.len() > MAX_PLAYBOOK_BYTES {
        return Err(Status::invalid_argument(format!(
            "{origin}: playbook of {} bytes is over the limit of {MAX_PLAYBOOK_BYTES}",
            yaml.len()
        )));
    }
    spec::parse(yaml, origin).map_err(|e| Status::invalid_argument(e.to_string()))
}

impl Controller {
    /// Checks, stores and installs a playbook file.
    pub async fn apply_playbook(&self, origin: &str, yaml: &str) -> Result<PlaybookRecord, Status> {
        let pb = parse(origin, yaml)?;
        let row = PlaybookRow {
            name: pb.name.clone(),
            origin: origin.into(),
            source: yaml.into(),
            enabled: pb.enabled,
            updated_at_ms: now_ms(),
        };
        self.store.upsert_playbook(row.clone()).await?;
        let rec = record(&pb, &row);
        self.playbooks.install(pb, row.source, row.enabled);
        Ok(rec)
    }

    /// At start: applies the configured directory, installs every stored playbook, resumes
    /// unfinished runs and starts those an alert should have had (see `engine::catch_up`).
    pub async fn load_playbooks(
        self: &std::sync::Arc<Self>,
        dir: Option<&Path>,
    ) -> anyhow::Result<()> {
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
                    tracing::error!("playbook not applied: {}", e.message());
                }
            }
        }
        for row in self.store.playbooks().await? {
            match spec::parse(&row.source, &row.origin) {
                Ok(pb) => self.playbooks.install(pb, row.source, row.enabled),
                Err(e) => tracing::error!("stored playbook no longer parses: {e}"),
            }
        }
        let resumed = engine::resume(self).await?;
        if resumed > 0 {
            tracing::info!(runs = resumed, "playbook runs resumed");
        }
        let started = engine::catch_up(self).await?;
        if started > 0 {
            tracing::warn!(
                runs = started,
                "playbook runs started for alerts raised just before the controller stopped"
            );
        }
        Ok(())
    }

    pub async fn list_playbooks(&self) -> Result<Vec<PlaybookRecord>, Status> {
        Ok(self
            .store
            .playbooks()
            .await?
            .iter()
            .filter_map(|row| {
                spec::parse(&row.source, &row.origin)
                    .ok()
                    .map(|pb| record(&pb, row))
            })
            .collect())
    }

    pub async fn set_playbook_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<PlaybookRecord, Status> {
        if !self
            .store
            .set_playbook_enabled(name.into(), enabled)
            .await?
        {
            return Err(Status::not_found(format!("no playbook {name:?}")));
        }
        self.playbooks.set_enabled(name, enabled);
        self.list_playbooks()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Status::internal("playbook vanished"))
    }

    /// What the playbook would do for a stored alert; nothing is sent or stored.
    pub async fn dry_run_playbook(
        &self,
        r: DryRunPlaybookRequest,
    ) -> Result<DryRunPlaybookResponse, Status> {
        let pb = parse(&r.origin, &r.yaml)?;
        let alert = self
            .store
            .alert(r.alert_id.clone())
            .await?
            .ok_or_else(|| Status::not_found(format!("no alert {:?}", r.alert_id)))?;
        let agent = self.store.agent(alert.agent_id.clone()).await?;
        let mut cx = RunContext::new(alert, agent);
        let triggers = cx.triggers(&pb);
        let steps = engine::plan(self, &pb, &mut cx)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(DryRunPlaybookResponse { triggers, steps })
    }

    /// Approves or denies a pending approval, as `admin`.
    pub async fn decide_approval(
        &self,
        admin: String,
        r: DecideApprovalRequest,
    ) -> Result<ApprovalRecord, Status> {
        let status = if r.approve { "approved" } else { "denied" };
        let Some(a) = self
            .store
            .decide_approval(
                r.approval_id.clone(),
                status.into(),
                admin.clone(),
                r.reason.clone(),
                now_ms(),
            )
            .await?
        else {
            return Err(match self.store.approval(r.approval_id.clone()).await? {
                Some(a) => Status::failed_precondition(format!(
                    "approval {} is already {}",
                    a.id, a.status
                )),
                None => Status::not_found(format!("no approval {:?}", r.approval_id)),
            });
        };
        let note = if r.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", r.reason)
        };
        self.store
            .add_timeline(
                a.incident_id.clone(),
                TimelineRow {
                    at_ms: now_ms(),
                    kind: "approval".into(),
                    actor: admin,
                    text: format!("approval {} {status} ({}){note}", a.id, a.what),
                    reference: a.id.clone(),
                },
            )
            .await?;
        let _ = self.playbooks.decided.send(a.id.clone());
        Ok(approval_record(a))
    }

    pub async fn add_incident_note(
        &self,
        admin: String,
        r: AddIncidentNoteRequest,
    ) -> Result<(), Status> {
        if r.text.trim().is_empty() || r.text.len() > cordon_proto::limits::MAX_TEXT {
            return Err(Status::invalid_argument(
                "a note is 1 to 4096 characters of text",
            ));
        }
        let Some((inc, _, _)) = self.store.incident(r.incident_id.clone()).await? else {
            return Err(Status::not_found(format!(
                "no incident {:?}",
                r.incident_id
            )));
        };
        self.store
            .add_timeline(
                inc.id,
                TimelineRow {
                    at_ms: now_ms(),
                    kind: "note".into(),
                    actor: admin,
                    text: r.text,
                    reference: String::new(),
                },
            )
            .await?;
        Ok(())
    }
}
