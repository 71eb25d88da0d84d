//! What the playbook engine needs from the rest of the controller, and nothing more: a way to
//! send a command to an agent and wait for its confirmed result, the audit log, and a clock.
//! (The store and the notifier are passed as they are.) The core implements these for the
//! running controller; tests use fakes (`fakes.rs`), so the engine runs without an agent,
//! a network or root.

use crate::policy::audit::AuditEntry;
use crate::store::CommandStatus;
use cordon_proto::action;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a command could not be sent or followed (the implementation's own error).
pub type CommandError = Box<dyn std::error::Error + Send + Sync>;

/// A command as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandState {
    pub status: CommandStatus,
    /// Why it failed or expired (empty otherwise).
    pub error: String,
    /// What its result says, where that is worth saying (a collection's rows and where to
    /// read them); empty otherwise.
    pub result: String,
}

/// Commands to agents.
pub trait Commands: Send + Sync {
    /// Persists, signs and sends `action` to the agent (at once if it is online); returns the
    /// command's id. `by` is who asked (`playbook:NAME`).
    fn submit(
        &self,
        agent_id: String,
        action: action::Kind,
        ttl: Duration,
        by: String,
    ) -> BoxFuture<'_, Result<String, CommandError>>;

    /// Waits up to `wait` for the command to reach a final state and returns it as it stands
    /// then (`None`: no such command).
    fn wait(
        &self,
        id: String,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Option<CommandState>, CommandError>>;
}

/// The audit log. A failure to record is the implementation's to log: the action it
/// describes has happened either way.
pub trait Audit: Send + Sync {
    fn record(&self, entry: AuditEntry) -> BoxFuture<'_, ()>;
}

/// The time, and waiting for it to pass.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// The system's clock and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        cordon_proto::time::now_ms()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}
