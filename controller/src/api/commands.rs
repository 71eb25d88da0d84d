//! The command path on the controller: persist, sign, push on the agent's stream at once,
//! record the agent's result, and expire what never ran.

use super::Controller;
use crate::store::{CommandRow, CommandStatus, Completion};
use cordon_proto::time::now_ms;
use cordon_proto::{
    Command, CommandOutcome, CommandRecord, CommandResult, ControllerMessage, action,
    controller_message,
};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

/// Longest a command may live.
pub const MAX_COMMAND_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The short name stored and shown for an action.
pub fn action_kind(action: &action::Kind) -> &'static str {
    match action {
        action::Kind::Ping(_) => "ping",
        action::Kind::CollectInventory(_) => "inventory",
        action::Kind::Isolate(_) => "isolate",
        action::Kind::Release(_) => "release",
        action::Kind::Kill(_) => "kill",
        action::Kind::Quarantine(_) => "quarantine",
        action::Kind::ListQuarantine(_) => "quarantine-list",
        action::Kind::Restore(_) => "restore",
        action::Kind::BlockIp(_) => "block-ip",
        action::Kind::UnblockIp(_) => "unblock-ip",
    }
}

impl Controller {
    /// Persists a signed command for `agent_id` and pushes it if the agent is online.
    pub async fn submit_command(
        &self,
        agent_id: String,
        action: action::Kind,
        ttl: Duration,
        created_by: String,
    ) -> Result<CommandRow, Status> {
        // The desired containment state is the controller's record, whoever asks.
        match &action {
            action::Kind::Isolate(_) => {
                self.store
                    .set_isolation_desired(agent_id.clone(), true)
                    .await?
            }
            action::Kind::Release(_) => {
                self.store
                    .set_isolation_desired(agent_id.clone(), false)
                    .await?
            }
            _ => {}
        }
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
        let row = CommandRow {
            id: command.id.clone(),
            agent_id,
            kind: action_kind(&action).to_string(),
            envelope: signed.encode_to_vec(),
            created_at_ms: now,
            expires_at_ms: command.expires_at_ms,
            status: CommandStatus::Pending,
            delivered_at_ms: None,
            completed_at_ms: None,
            error: String::new(),
            result: None,
            created_by,
        };
        self.store.insert_command(row.clone()).await?;
        tracing::info!(command_id = %row.id, agent_id = %row.agent_id, kind = %row.kind, by = %row.created_by, "command queued");
        self.push(&row).await?;
        Ok(self.store.command(row.id.clone()).await?.unwrap_or(row))
    }

    /// Sends a stored command on the agent's open stream, if there is one.
    async fn push(&self, row: &CommandRow) -> Result<(), Status> {
        let Some(tx) = self.sessions.sender(&row.agent_id) else {
            return Ok(());
        };
        let signed = cordon_proto::SignedCommand::decode(row.envelope.as_slice())
            .map_err(|e| Status::internal(format!("stored command {} is corrupt: {e}", row.id)))?;
        let msg = ControllerMessage {
            msg: Some(controller_message::Msg::Command(signed)),
        };
        if tx.send(Ok(msg)).await.is_ok() {
            self.store.mark_delivered(row.id.clone(), now_ms()).await?;
        }
        Ok(())
    }

    /// Pushes every open command of a just-connected agent, oldest first.
    pub async fn deliver_open(&self, agent_id: &str) -> Result<(), Status> {
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
    pub async fn record_result(&self, agent_id: &str, result: CommandResult) -> Result<(), Status> {
        let status = match result.outcome() {
            CommandOutcome::Succeeded => CommandStatus::Succeeded,
            _ => CommandStatus::Failed,
        };
        let mut error = result.error.clone();
        if result.outcome() == CommandOutcome::Refused {
            error = format!("refused by the agent: {error}");
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
                let _ = self.finished.send(id);
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

    /// Waits up to `wait` for the command to reach a final state; returns it as it stands.
    pub async fn wait_command(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<Option<CommandRow>, Status> {
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

/// Once a second, ends open commands whose expiry has passed.
pub async fn expire_loop(ctl: Arc<Controller>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match ctl.store.expire_commands(now_ms()).await {
            Ok(ids) => {
                for id in ids {
                    tracing::info!(command_id = %id, "command expired");
                    let _ = ctl.finished.send(id);
                }
            }
            Err(e) => tracing::error!(error = %e, "expiring commands failed"),
        }
    }
}

fn new_command_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("cmd-{}", hex::encode(bytes))
}

/// The admin view of a stored command.
pub fn record(row: CommandRow) -> CommandRecord {
    let result = row
        .result
        .as_deref()
        .and_then(|b| CommandResult::decode(b).ok());
    let status = match row.status {
        CommandStatus::Pending => cordon_proto::CommandStatus::Pending,
        CommandStatus::Delivered => cordon_proto::CommandStatus::Delivered,
        CommandStatus::Succeeded => cordon_proto::CommandStatus::Succeeded,
        CommandStatus::Failed => cordon_proto::CommandStatus::Failed,
        CommandStatus::Expired => cordon_proto::CommandStatus::Expired,
    };
    CommandRecord {
        command_id: row.id,
        agent_id: row.agent_id,
        kind: row.kind,
        status: status as i32,
        created_at_ms: row.created_at_ms,
        expires_at_ms: row.expires_at_ms,
        delivered_at_ms: row.delivered_at_ms.unwrap_or(0),
        completed_at_ms: row.completed_at_ms.unwrap_or(0),
        error: row.error,
        created_by: row.created_by,
        result,
    }
}
