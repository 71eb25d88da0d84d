//! The command path on the controller: persist, sign, push on the agent's stream at once,
//! record the agent's result, and expire what never ran.

use super::replicas::Signal;
use super::{Admin, Controller, CoreError};
use crate::store::{CommandQueue, CommandRow, CommandStatus, Completion, action_kind};
use cordon_proto::time::now_ms;
use cordon_proto::{
    Command, CommandOutcome, CommandResult, ControllerMessage, action, command_result,
    controller_message,
};
use prost::Message;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Longest a command may live.
pub const MAX_COMMAND_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest an administrator may wait for a command's result in one call.
pub(super) const MAX_WAIT_SECS: u64 = 300;

/// A command an administrator asks for.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// An agent id or unambiguous prefix.
    pub agent: String,
    pub action: Option<action::Kind>,
    /// 0: the configured default.
    pub ttl_secs: u64,
    /// 0: do not wait for the result.
    pub wait_secs: u64,
}

impl Controller {
    /// Persists a signed command for `agent_id` and pushes it if the agent is online.
    pub async fn submit_command(
        &self,
        agent_id: String,
        action: action::Kind,
        ttl: Duration,
        created_by: String,
    ) -> Result<CommandRow, CoreError> {
        let row = self.signed_row(agent_id, &action, ttl, created_by);
        // The desired containment state is the controller's record, whoever asks; it is
        // stored with the command.
        self.store
            .insert_commands(vec![row.clone()], desired_isolation(&action))
            .await?;
        tracing::info!(command_id = %row.id, agent_id = %row.agent_id, kind = %row.kind, by = %row.created_by, "command queued");
        self.deliver(&row).await?;
        Ok(self.store.command(row.id.clone()).await?.unwrap_or(row))
    }

    /// A new command for `agent_id`, signed, as it is stored before it is sent.
    pub(super) fn signed_row(
        &self,
        agent_id: String,
        action: &action::Kind,
        ttl: Duration,
        created_by: String,
    ) -> CommandRow {
        let now = now_ms();
        let ttl = ttl.min(MAX_COMMAND_TTL);
        let command = Command {
            id: new_command_id(),
            agent_id: agent_id.clone(),
            issued_at_ms: now,
            expires_at_ms: now + ttl.as_millis() as i64,
            action: Some(action.clone().into()),
        };
        let signed = self.signer.sign(&command);
        CommandRow {
            id: command.id.clone(),
            agent_id,
            kind: action_kind(action).to_string(),
            envelope: signed.encode_to_vec(),
            created_at_ms: now,
            expires_at_ms: command.expires_at_ms,
            status: CommandStatus::Pending,
            delivered_at_ms: None,
            completed_at_ms: None,
            error: String::new(),
            result: None,
            created_by,
        }
    }

    /// Sends a stored command on the agent's stream if it is here, or tells the replica that
    /// holds it.
    pub(super) async fn deliver(&self, row: &CommandRow) -> Result<(), CoreError> {
        if !self.push(row).await? {
            let (agent, id) = (row.agent_id.clone(), row.id.clone());
            self.signal(Signal::Command { agent, id }).await;
        }
        Ok(())
    }

    /// Sends a stored command on the agent's open stream, if there is one here; false if
    /// there is none.
    pub(super) async fn push(&self, row: &CommandRow) -> Result<bool, CoreError> {
        let Some(tx) = self.sessions.sender(&row.agent_id) else {
            return Ok(false);
        };
        let signed =
            cordon_proto::SignedCommand::decode(row.envelope.as_slice()).map_err(|source| {
                CoreError::CorruptCommand {
                    id: row.id.clone(),
                    source,
                }
            })?;
        let msg = ControllerMessage {
            msg: Some(controller_message::Msg::Command(signed)),
        };
        if tx.send(Ok(msg)).await.is_ok() {
            self.store.mark_delivered(row.id.clone(), now_ms()).await?;
        }
        Ok(true)
    }

    /// Pushes every open command of a just-connected agent, oldest first.
    pub async fn deliver_open(&self, agent_id: &str) -> Result<(), CoreError> {
        for row in self
            .store
            .open_commands(agent_id.to_string(), now_ms())
            .await?
        {
            self.push(&row).await?;
        }
        Ok(())
    }

    /// Records a result from `agent_id` (the identity from its certificate).
    pub async fn record_result(
        &self,
        agent_id: &str,
        result: CommandResult,
    ) -> Result<(), CoreError> {
        let status = match result.outcome() {
            CommandOutcome::Succeeded => CommandStatus::Succeeded,
            _ => CommandStatus::Failed,
        };
        let mut error = result.error.clone();
        if result.outcome() == CommandOutcome::Refused {
            error = format!("refused by the agent: {error}");
        }
        let mut status = status;
        if let Some(command_result::Output::Collection(c)) = &result.output
            && status == CommandStatus::Succeeded
            && let Some(why) = self.rows_missing(&result.command_id, c).await?
        {
            (status, error) = (CommandStatus::Failed, why);
        }
        if let Some(command_result::Output::Fetched(f)) = &result.output
            && status == CommandStatus::Succeeded
            && let Some(why) = self
                .file_unverified(&result.command_id, agent_id, f)
                .await?
        {
            (status, error) = (CommandStatus::Failed, why);
        }
        error.truncate(cordon_proto::limits::MAX_TEXT);
        let id = result.command_id.clone();
        let completion = self
            .store
            .complete_command(
                id.clone(),
                agent_id.to_string(),
                status,
                error,
                result.encode_to_vec(),
                now_ms(),
            )
            .await?;
        match completion {
            Completion::Recorded => {
                tracing::info!(command_id = %id, agent_id, status = status.as_str(), "command finished");
                let _ = self.finished.send(id.clone());
                self.signal(Signal::Finished(id)).await;
            }
            Completion::WrongAgent => {
                tracing::warn!(command_id = %id, agent_id, "agent sent a result for another agent's command; ignored")
            }
            Completion::UnknownCommand => {
                tracing::warn!(command_id = %id, agent_id, "result for an unknown command; ignored")
            }
            Completion::AlreadyFinal => {
                tracing::debug!(command_id = %id, agent_id, "result for a command already finished")
            }
        }
        Ok(())
    }

    /// Submits a command for an administrator and, if asked, waits for its result; records it
    /// in the audit log with the status it reached. Callers that may hang up run it in a task
    /// of its own, so the entry of a command already sent is never cancelled.
    pub async fn submit_as(
        &self,
        admin: &Admin,
        req: CommandRequest,
    ) -> Result<CommandRow, CoreError> {
        self.submit_with_reason(admin, req, "").await
    }

    /// As [`Self::submit_as`], with the person's reason for the action in the audit entry
    /// (the console asks for one with every action).
    pub async fn submit_with_reason(
        &self,
        admin: &Admin,
        req: CommandRequest,
        reason: &str,
    ) -> Result<CommandRow, CoreError> {
        let mut entry = admin.entry(
            format!(
                "command.{}",
                req.action.as_ref().map_or("unknown", action_kind)
            ),
            format!("agent:{}", req.agent),
        )
        .detail(
            json!({ "action": req.action, "ttl_secs": req.ttl_secs, "wait_secs": req.wait_secs }),
        );
        if !reason.is_empty() {
            entry.detail["reason"] = json!(reason);
        }
        // An override of the agent's protection stands out in the log, not only in the action.
        if let Some(action::Kind::Quarantine(q)) = &req.action
            && q.force
        {
            entry.detail["force"] = json!(true);
        }
        let result = async {
            let agent = self.resolve(&req.agent).await?;
            if agent.revoked_at_ms.is_some() {
                return Err(CoreError::CommandForRevoked(agent.id));
            }
            let action = req.action.ok_or(CoreError::ActionRequired)?;
            if let Some(why) = self.second_person_needed(&agent, &action).await? {
                let asked = self.ask_second_person(admin, &agent, action, why).await?;
                return Err(CoreError::AwaitsSecondPerson(asked.id));
            }
            let ttl = match req.ttl_secs {
                0 => self.config.command_ttl_secs,
                n => n,
            };
            let row = self
                .submit_command(
                    agent.id,
                    action,
                    Duration::from_secs(ttl),
                    admin.name.clone(),
                )
                .await?;
            if req.wait_secs == 0 {
                return Ok(row);
            }
            let wait = Duration::from_secs(req.wait_secs.min(MAX_WAIT_SECS));
            Ok(self.wait_command(&row.id, wait).await?.unwrap_or(row))
        }
        .await;
        // The outcome is the command's status when the answer goes back: its result when the
        // caller waited for it (as cordonctl does), otherwise pending or delivered.
        self.audited(entry, result, |row, e| {
            e.target = format!("agent:{}", row.agent_id);
            e.detail["command_id"] = json!(row.id);
            e.outcome = match row.error.as_str() {
                "" => row.status.as_str().to_string(),
                why => format!("{}: {why}", row.status.as_str()),
            };
        })
        .await
    }

    /// Commands, newest first, for one agent (id or prefix) or all.
    pub async fn commands(&self, agent: &str, limit: u32) -> Result<Vec<CommandRow>, CoreError> {
        let agent = self.resolve_optional(agent).await?;
        let limit = super::agents::list_limit(limit)?;
        Ok(self.store.commands(agent, limit).await?)
    }

    pub async fn command(&self, id: &str) -> Result<CommandRow, CoreError> {
        self.store
            .command(id.to_string())
            .await?
            .ok_or_else(|| CoreError::NoCommand(id.into()))
    }

    /// Waits up to `wait` for the command to reach a final state; returns it as it stands.
    pub async fn wait_command(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<Option<CommandRow>, CoreError> {
        let mut rx = self.finished.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let row = self.store.command(id.to_string()).await?;
            match &row {
                Some(r) if !r.status.is_final() => {}
                _ => return Ok(row),
            }
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) => return Ok(row),
                    Ok(Ok(done)) if done == id => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Lagged(_))) => break,
                    Ok(Err(RecvError::Closed)) => return Ok(row),
                }
            }
        }
    }
}

/// How long the command-expiry lease holds without renewal (one controller of those
/// sharing a store expires commands).
const EXPIRY_LEASE: Duration = Duration::from_secs(5);

/// Once a second, ends open commands whose expiry has passed.
pub async fn expire_loop(ctl: Arc<Controller>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = expire_once(&ctl).await {
            tracing::error!(error = %e, "expiring commands failed");
        }
    }
}

async fn expire_once(ctl: &Controller) -> Result<(), crate::store::StoreError> {
    let now = now_ms();
    if !ctl
        .store
        .claim_lease("command-expiry", EXPIRY_LEASE, now)
        .await?
    {
        return Ok(());
    }
    for id in ctl.store.expire_commands(now).await? {
        tracing::info!(command_id = %id, "command expired");
        let _ = ctl.finished.send(id.clone());
        ctl.signal(Signal::Finished(id)).await;
    }
    Ok(())
}

/// The desired isolation an action records: isolate sets it, release clears it.
fn desired_isolation(action: &action::Kind) -> Option<bool> {
    match action {
        action::Kind::Isolate(_) => Some(true),
        action::Kind::Release(_) => Some(false),
        _ => None,
    }
}

fn new_command_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("cmd-{}", hex::encode(bytes))
}
