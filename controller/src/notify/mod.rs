//! Notifications: the playbook engine tells people about incidents through named webhooks
//! configured under `[notify]` in controller.toml.
//!
//! A webhook gets an HTTP POST of a JSON [`Notification`] (or, with `slack = true`, a
//! Slack-compatible `{"text": ..., "blocks": [...]}`), signed with HMAC-SHA256 (see [`sign`]
//! for exactly what is signed). Each attempt has a timeout; connection errors, timeouts, 429
//! and 5xx are retried with jittered exponential backoff, other answers are final.
//!
//! Callers hold a `dyn Notifier`: [`WebhookNotifier`] in the controller, [`RecordingNotifier`]
//! in other modules' tests.

mod config;
mod fake;
mod http;
mod payload;
pub mod sign;
mod webhook;

#[cfg(test)]
mod tests;

pub use config::{NotifyConfig, WebhookConfig};
pub use fake::RecordingNotifier;
pub use webhook::{SetupError, WebhookNotifier};

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// One notification. The JSON webhook body is exactly this struct, every field present
/// (absent options are `null`), so receivers see one stable shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened, e.g. `playbook_step`, `approval_requested`, `containment_failed`.
    pub kind: String,
    pub incident_id: Option<String>,
    pub agent_id: Option<String>,
    pub hostname: Option<String>,
    /// One line, e.g. the rule title.
    pub title: String,
    /// Severity, e.g. the alert's Sigma level (`low` .. `critical`).
    pub level: String,
    /// The human-readable message.
    pub text: String,
    /// When it happened, Unix milliseconds.
    pub at_ms: i64,
    /// The playbook that sent it, if any.
    pub playbook: Option<String>,
    /// Anything else the sender wants a machine to read (step results, alert fields...).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// How a send went: recorded in the incident timeline either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The webhook's configured name.
    pub target: String,
    /// Requests made (1 when the first one succeeded).
    pub attempts: u32,
    /// The last HTTP status received, if any request got an answer.
    pub status: Option<u16>,
    /// Why the last attempt failed; `None` when delivered.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no webhook named {target:?} is configured")]
    UnknownTarget { target: String },
    #[error("encoding the notification for {target:?}: {source}")]
    Encode {
        target: String,
        source: serde_json::Error,
    },
    #[error(
        "webhook {:?} not delivered after {} attempt(s): {}",
        .0.target,
        .0.attempts,
        .0.error.as_deref().unwrap_or("unknown error")
    )]
    Undelivered(Delivery),
}

impl NotifyError {
    /// The attempts made, when there were any.
    pub fn delivery(&self) -> Option<&Delivery> {
        match self {
            Self::Undelivered(d) => Some(d),
            _ => None,
        }
    }
}

/// A boxed future, so that [`Notifier`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends notifications to named targets.
pub trait Notifier: Send + Sync {
    /// Delivers `n` to the target called `target`, retrying as configured. `Ok` only once the
    /// receiver answered 2xx; a delivery that gave up is `Err(NotifyError::Undelivered)`.
    fn send<'a>(
        &'a self,
        target: &'a str,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<Delivery, NotifyError>>;

    /// The configured target names, sorted (so playbooks naming an unknown one can be refused).
    fn targets(&self) -> Vec<String>;
}
