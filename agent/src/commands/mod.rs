//! Commands from the controller: verify the signature and addressing, refuse replays, run
//! the action once within a bounded time, and answer with a result. Nothing runs unless every
//! check passes.

mod lane;
mod ledger;
mod verify;

pub use lane::{Lane, Turn, in_order};
pub use ledger::{Ledger, LedgerError};
pub use verify::{Refusal, Verifier};

use cordon_proto::time::now_ms;
use cordon_proto::{Command, CommandOutcome, CommandResult, SignedCommand, action, command_result};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// How long an action may run when the configuration does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What an action knows of the command that carries it.
#[derive(Debug, Clone)]
pub struct Job {
    pub command_id: String,
    /// When the action is given up (the command's time bound); work that can end itself
    /// early, as a collection can, ends before.
    pub deadline: std::time::Instant,
}

/// Carries out one verified action.
pub trait Executor: Send + Sync {
    fn execute(
        &self,
        job: &Job,
        action: &action::Kind,
    ) -> impl Future<Output = Result<command_result::Output, String>> + Send;
}

/// The agent's command pipeline.
pub struct Dispatcher<E> {
    verifier: Verifier,
    ledger: Mutex<Ledger>,
    exec: E,
    /// Longest an action may run before its command ends as failed, in milliseconds (a
    /// reloaded configuration changes it).
    timeout_ms: AtomicU64,
}

impl<E: Executor> Dispatcher<E> {
    pub fn new(verifier: Verifier, ledger: Ledger, exec: E) -> Self {
        Self {
            verifier,
            ledger: Mutex::new(ledger),
            exec,
            timeout_ms: AtomicU64::new(DEFAULT_TIMEOUT.as_millis() as u64),
        }
    }

    /// Bounds how long one action may run.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.set_timeout(timeout);
        self
    }

    /// Bounds how long the actions of commands from now on may run.
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// What carries out the actions.
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// Handles one signed command and returns the result to send back.
    pub async fn handle(&self, signed: &SignedCommand) -> CommandResult {
        let now = now_ms();
        let command = match self.verifier.verify(signed, now) {
            Ok(c) => c,
            Err((claimed_id, refusal)) => {
                tracing::warn!(command_id = %claimed_id, reason = %refusal, "command refused");
                return refused(claimed_id, &refusal);
            }
        };
        // Record the id before running, so a crash mid-action cannot lead to a second run.
        {
            let mut ledger = self.ledger.lock().await;
            if let Some(previous) = ledger.seen(&command.id) {
                return match previous {
                    Some(result) => {
                        tracing::info!(command_id = %command.id, "command already ran; resending its result");
                        result
                    }
                    None => {
                        let refusal = Refusal::Replayed;
                        tracing::warn!(command_id = %command.id, reason = %refusal, "command refused");
                        refused(command.id, &refusal)
                    }
                };
            }
            if let Err(e) = ledger.begin(&command.id, command.expires_at_ms, now) {
                tracing::error!(command_id = %command.id, error = %e, "cannot record the command; not running it");
                return failed(command.id, format!("cannot record the command: {e}"));
            }
        }
        let result = self.run(&command).await;
        if let Err(e) = self.ledger.lock().await.finish(&command.id, &result) {
            tracing::error!(command_id = %command.id, error = %e, "cannot record the command result");
        }
        result
    }

    async fn run(&self, command: &Command) -> CommandResult {
        let Some(action) = command.action.as_ref().and_then(|a| a.kind.as_ref()) else {
            return failed(command.id.clone(), "the command has no action".into());
        };
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed));
        let job = Job {
            command_id: command.id.clone(),
            deadline: std::time::Instant::now() + timeout,
        };
        let outcome = match tokio::time::timeout(timeout, self.exec.execute(&job, action)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::error!(command_id = %command.id, timeout_secs = timeout.as_secs_f64(), "command timed out");
                Err(format!(
                    "the action did not finish within {:?} and was given up; work already under way on the host may still complete, so check the host's state",
                    timeout
                ))
            }
        };
        match outcome {
            Ok(output) => CommandResult {
                command_id: command.id.clone(),
                outcome: CommandOutcome::Succeeded as i32,
                error: String::new(),
                agent_time_ms: now_ms(),
                output: Some(output),
            },
            Err(e) => failed(command.id.clone(), e),
        }
    }
}

fn failed(id: String, error: String) -> CommandResult {
    CommandResult {
        command_id: id,
        outcome: CommandOutcome::Failed as i32,
        error,
        agent_time_ms: now_ms(),
        output: None,
    }
}

fn refused(id: String, refusal: &Refusal) -> CommandResult {
    CommandResult {
        command_id: id,
        outcome: CommandOutcome::Refused as i32,
        error: refusal.to_string(),
        agent_time_ms: now_ms(),
        output: None,
    }
}

#[cfg(test)]
mod tests;
