//! Event retention in the background: prunes stored events past the configured age or row
//! cap once at start and then every minute, and logs what went (`store/retention.rs` does the
//! deleting, in bounded chunks).

use crate::config::EventRetention;
use crate::store::Events;
use crate::store::{AnyStore, Pruned, StoreError};
use cordon_proto::time::now_ms;
use std::time::Duration;

/// Time between prunes.
const EVERY: Duration = Duration::from_secs(60);

/// One prune by `policy` as of `now_ms`.
pub async fn prune(
    store: &impl Events,
    policy: &EventRetention,
    now_ms: i64,
) -> Result<Pruned, StoreError> {
    store
        .prune_events(policy.cutoff_ms(now_ms), policy.keep_newest())
        .await
}

/// How long the retention lease holds without renewal: one controller of those sharing a
/// store prunes.
const LEASE: Duration = Duration::from_secs(180);

/// Prunes now and every minute after, for ever (the caller aborts it).
pub async fn prune_loop(store: AnyStore, policy: EventRetention) {
    if policy == EventRetention::FOREVER {
        tracing::info!("event retention: keeping events forever");
        return;
    }
    tracing::info!(
        retention_days = policy.retention_days,
        max_rows = policy.max_rows,
        "event retention: pruning every minute"
    );
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.claim_lease("retention", LEASE, now_ms()).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "event retention: taking the lease failed");
                continue;
            }
        }
        let started = std::time::Instant::now();
        match prune(&store, &policy, now_ms()).await {
            Ok(p) if p.total() > 0 => tracing::info!(
                by_age = p.by_age,
                by_cap = p.by_cap,
                ms = started.elapsed().as_millis() as u64,
                "pruned events"
            ),
            Ok(_) => tracing::debug!("no events to prune"),
            Err(e) => tracing::error!(error = %e, "pruning events failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoredEvent};

    #[tokio::test]
    async fn the_default_policy_prunes_what_is_older_than_thirty_days() {
        let store = Store::memory().unwrap();
        let now = 100 * 86_400_000;
        let day = |d: i64, seq: u64| StoredEvent {
            agent_id: "a".into(),
            seq,
            time_ms: now - d * 86_400_000,
            kind: "notice".into(),
            summary: String::new(),
            body: vec![],
            received_at_ms: now,
        };
        store
            .insert_events(vec![day(31, 1), day(29, 2), day(0, 3)])
            .await
            .unwrap();
        let forever = prune(&store, &EventRetention::FOREVER, now).await.unwrap();
        assert_eq!(forever.total(), 0);
        let pruned = prune(&store, &EventRetention::default(), now)
            .await
            .unwrap();
        assert_eq!(pruned.by_age, 1);
        let left: Vec<u64> = store
            .events("a".into(), 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, vec![2, 3]);
    }
}
