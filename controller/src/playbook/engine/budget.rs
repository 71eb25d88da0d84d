//! The isolation budget's lock. Checking the fleet-wide budget and recording an isolation
//! happen under it, so runs started together cannot all slip under the budget. Within one
//! controller it is a mutex; on a store that several controllers share it is also a lease in
//! the store (`leases`), taken by one controller at a time, so two replicas cannot both count
//! the same last isolation left. A controller that dies holding the lease loses it after
//! [`LEASE_TTL`].

use super::{Engine, EngineError};
use crate::store::AnyStore;
use cordon_proto::time::now_ms;
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;

/// The lease's name in the store.
const LEASE: &str = "isolation-budget";
/// How long the lease holds if its holder never gives it up.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long a step waits for the lease before failing.
const WAIT: Duration = Duration::from_secs(15);
/// How often a waiting step asks for the lease again.
const RETRY: Duration = Duration::from_millis(50);

/// Held while a step checks the budget and records its isolation; dropping it gives the
/// lease up, and only then the mutex, so the next step of this controller asks for the
/// lease after it is given up, not before.
pub(super) struct BudgetLock {
    local: Option<OwnedMutexGuard<()>>,
    store: AnyStore,
}

/// Takes the budget's lock: this controller's mutex, then the store's lease (at once on a
/// store of its own).
pub(super) async fn lock(eng: &Engine) -> Result<BudgetLock, EngineError> {
    let local = eng.playbooks.budget.clone().lock_owned().await;
    let started = Instant::now();
    while !eng.store.claim_lease(LEASE, LEASE_TTL, now_ms()).await? {
        if started.elapsed() > WAIT {
            return Err(EngineError::BudgetBusy(WAIT.as_secs()));
        }
        tokio::time::sleep(RETRY).await;
    }
    Ok(BudgetLock {
        local: Some(local),
        store: eng.store.clone(),
    })
}

impl Drop for BudgetLock {
    fn drop(&mut self) {
        let local = self.local.take();
        if !self.store.shared() {
            return; // the mutex alone
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.release_lease(LEASE).await {
                tracing::warn!(error = %e, "giving up the isolation budget's lease failed; it lapses by itself");
            }
            drop(local);
        });
    }
}
