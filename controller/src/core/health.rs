//! The controller's health as a load balancer sees it: healthy while its store answers.
//! A probe every few seconds records the store's state, logs each change (once, not on
//! every probe), and `GET /healthz` on the optional health listener reports it: 200 with
//! `ok`, or 503 with why.

use super::Controller;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Time between probes of the store.
const EVERY: Duration = Duration::from_secs(2);
/// Longest a probe may take before the store counts as unavailable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// None while healthy, else why not.
#[derive(Clone, Default)]
pub struct Health(Arc<RwLock<Option<String>>>);

impl Health {
    /// Why the controller is unhealthy, or None.
    pub fn problem(&self) -> Option<String> {
        self.0
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records the latest probe; true when the state changed.
    fn set(&self, problem: Option<String>) -> bool {
        let mut cur = self.0.write().unwrap_or_else(|p| p.into_inner());
        let changed = cur.is_some() != problem.is_some();
        *cur = problem;
        changed
    }
}

/// Probes the store for ever (the caller aborts it).
pub async fn watch(ctl: Arc<Controller>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let problem = match tokio::time::timeout(PROBE_TIMEOUT, ctl.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("store unavailable: {e}")),
            Err(_) => Some(format!(
                "store unavailable: no answer within {PROBE_TIMEOUT:?}"
            )),
        };
        if ctl.health.set(problem.clone()) {
            match problem {
                Some(why) => tracing::error!(
                    "unhealthy: {why}; agents keep spooling, admin requests are refused until it is back"
                ),
                None => tracing::warn!("healthy again: the store answers"),
            }
        }
    }
}

/// The health endpoint's answer: status code and body.
pub fn report(health: &Health) -> (u16, String) {
    match health.problem() {
        None => (200, "ok\n".into()),
        Some(why) => (503, format!("{why}\n")),
    }
}
