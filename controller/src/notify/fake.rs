//! A [`Notifier`] that records what it is asked to send, for other modules' tests.

use super::{BoxFuture, Delivery, Notification, Notifier, NotifyError};
use std::sync::Mutex;

/// Delivers everything to the known targets at the first attempt (status 200), or fails
/// every send once [`RecordingNotifier::fail`] is set; records each call either way.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    targets: Vec<String>,
    sent: Mutex<Vec<(String, Notification)>>,
    fail: Mutex<Option<u16>>,
}

impl RecordingNotifier {
    pub fn new(targets: &[&str]) -> Self {
        let mut targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        targets.sort();
        Self {
            targets,
            ..Self::default()
        }
    }

    /// From now on, every send to a known target fails with this HTTP status.
    pub fn fail(&self, status: u16) {
        *lock(&self.fail) = Some(status);
    }

    /// (target, notification) for every send to a known target, in order.
    pub fn sent(&self) -> Vec<(String, Notification)> {
        lock(&self.sent).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock has failed already; keep recording.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Notifier for RecordingNotifier {
    fn send<'a>(
        &'a self,
        target: &'a str,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<Delivery, NotifyError>> {
        Box::pin(async move {
            if !self.targets.iter().any(|t| t == target) {
                return Err(NotifyError::UnknownTarget {
                    target: target.into(),
                });
            }
            lock(&self.sent).push((target.into(), n.clone()));
            let failed = *lock(&self.fail);
            let delivery = Delivery {
                target: target.into(),
                attempts: 1,
                status: Some(failed.unwrap_or(200)),
                error: failed.map(|s| format!("HTTP {s}")),
            };
            match failed {
                Some(_) => Err(NotifyError::Undelivered(delivery)),
                None => Ok(delivery),
            }
        })
    }

    fn targets(&self) -> Vec<String> {
        self.targets.clone()
    }
}
