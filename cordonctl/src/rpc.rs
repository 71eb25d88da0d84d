//! Calling the admin service: a refusal becomes a readable [`CtlError`], and a host command
//! is submitted and waited for until the agent's confirmed result.

use crate::client::AdminClient;
use crate::error::CtlError;
use crate::text::{status_name, time};
use cordon_proto::{CommandRecord, CommandStatus, SubmitCommandRequest, action};
use std::time::{Duration, Instant};

/// Awaits an RPC, turning a refusal into a readable error.
pub async fn call<T>(
    fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CtlError> {
    let resp = fut.await.map_err(|s| CtlError::Refused {
        message: cordon_proto::status::describe(&s),
        code: s.code(),
    })?;
    Ok(resp.into_inner())
}

/// Submits a command and waits up to `wait` seconds for its result, returning the record and
/// the round trip. A failed, expired or unfinished command is an error that says where it
/// stands.
pub async fn submit(
    admin: &mut AdminClient,
    agent_id: String,
    action: action::Kind,
    wait: u64,
) -> Result<(CommandRecord, Duration), CtlError> {
    let started = Instant::now();
    let req = SubmitCommandRequest {
        agent_id,
        ttl_secs: 0,
        wait_secs: wait.max(1),
        action: Some(action.into()),
    };
    let rec = call(admin.submit_command(req)).await?;
    let rtt = started.elapsed();
    let (id, status) = (&rec.command_id, status_name(rec.status));
    match rec.status() {
        CommandStatus::Succeeded => Ok((rec, rtt)),
        CommandStatus::Failed | CommandStatus::Expired => Err(CtlError::Command(format!(
            "command {id} {status}: {}",
            rec.error
        ))),
        _ => Err(CtlError::Command(format!(
            "no result within {wait}s: command {id} is {status} and stays queued until {} \
             (see `cordonctl commands show {id}`)",
            time(rec.expires_at_ms)
        ))),
    }
}
