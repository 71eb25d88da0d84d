//! Fakes of the engine's interface (`deps.rs`) for its tests: a clock that moves only when
//! told, an agent that answers commands as configured and remembers what it was sent, and an
//! audit log in the store like the real one.

use super::deps::{Audit, BoxFuture, Clock, CommandError, CommandState, Commands};
use crate::policy::audit::AuditEntry;
use crate::store::{AnyStore, AuditLog, CommandStatus, action_kind};
use cordon_proto::action;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A clock that stands still until [`ManualClock::advance`]; sleepers wake when it passes
/// their deadline.
pub struct ManualClock {
    now: watch::Sender<i64>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: watch::channel(start_ms).0,
        }
    }

    pub fn advance(&self, d: Duration) {
        self.now.send_modify(|t| *t += d.as_millis() as i64);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let until = self.now_ms() + d.as_millis() as i64;
        let mut now = self.now.subscribe();
        Box::pin(async move {
            while *now.borrow_and_update() < until {
                if now.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
    }
}

/// How the fake agent answers a kind of command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Succeed,
    Fail(String),
    /// Never answers: the command stays delivered.
    Silent,
}

/// A command the fake agent was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub id: String,
    pub agent_id: String,
    pub action: action::Kind,
    pub by: String,
}

/// An agent that answers every command at once, as [`FakeAgent::answer`] set for its kind
/// (succeeding by default).
#[derive(Default)]
pub struct FakeAgent {
    answers: Mutex<HashMap<&'static str, Answer>>,
    sent: Mutex<Vec<Sent>>,
    /// Commands sent before the test began (a controller that stopped), with their answer.
    known: Mutex<HashMap<String, Answer>>,
}

impl FakeAgent {
    pub fn answer(&self, kind: &'static str, a: Answer) {
        lock(&self.answers).insert(kind, a);
    }

    /// A command that was sent before the engine started, and how it ended.
    pub fn already_sent(&self, id: &str, a: Answer) {
        lock(&self.known).insert(id.into(), a);
    }

    /// Every command sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }

    /// The kinds of the commands sent, in order (`isolate`, `kill`, ...).
    pub fn kinds(&self) -> Vec<&'static str> {
        self.sent().iter().map(|s| action_kind(&s.action)).collect()
    }
}

impl Commands for FakeAgent {
    fn submit(
        &self,
        agent_id: String,
        action: action::Kind,
        _ttl: Duration,
        by: String,
    ) -> BoxFuture<'_, Result<String, CommandError>> {
        Box::pin(async move {
            let mut sent = lock(&self.sent);
            let id = format!("cmd-{}", sent.len() + 1);
            let answer = lock(&self.answers)
                .get(action_kind(&action))
                .cloned()
                .unwrap_or(Answer::Succeed);
            lock(&self.known).insert(id.clone(), answer);
            sent.push(Sent {
                id: id.clone(),
                agent_id,
                action,
                by,
            });
            Ok(id)
        })
    }

    fn wait(
        &self,
        id: String,
        _wait: Duration,
    ) -> BoxFuture<'_, Result<Option<CommandState>, CommandError>> {
        Box::pin(async move {
            let state = |status, error: &str| CommandState {
                status,
                error: error.into(),
                result: String::new(),
            };
            Ok(lock(&self.known).get(&id).map(|a| match a {
                Answer::Succeed => state(CommandStatus::Succeeded, ""),
                Answer::Fail(why) => state(CommandStatus::Failed, why),
                Answer::Silent => state(CommandStatus::Delivered, ""),
            }))
        })
    }
}

/// The audit log in the store, as the controller keeps it.
pub struct StoreAudit {
    pub store: AnyStore,
    pub clock: std::sync::Arc<ManualClock>,
}

impl Audit for StoreAudit {
    fn record(&self, entry: AuditEntry) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .append_audit(entry, self.clock.now_ms())
                .await
                .expect("audit entry");
        })
    }
}
