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

/// One prune, if this controller holds the retention lease (a store of its own always
/// does); None while another controller sharing the store holds it.
pub async fn prune_if_held(
    store: &AnyStore,
    policy: &EventRetention,
    now_ms: i64,
) -> Result<Option<Pruned>, StoreError> {
    if !store.claim_lease("retention", LEASE, now_ms).await? {
        return Ok(None);
    }
    prune(store, policy, now_ms).await.map(Some)
}

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
        let started = std::time::Instant::now();
        match prune_if_held(&store, &policy, now_ms()).await {
            Ok(None) => tracing::debug!("event retention: another controller holds the lease"),
            Ok(Some(p)) if p.total() > 0 => tracing::info!(
                by_age = p.by_age,
                by_cap = p.by_cap,
                ms = started.elapsed().as_millis() as u64,
                "pruned events"
            ),
            Ok(Some(_)) => tracing::debug!("no events to prune"),
            Err(e) => tracing::error!(error = %e, "pruning events failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoredEvent};

    /// Agent "a"'s event `seq` at `time_ms`, received at `now`.
    fn event(seq: u64, time_ms: i64, now: i64) -> StoredEvent {
        StoredEvent {
            agent_id: "a".into(),
            seq,
            time_ms,
            kind: "notice".into(),
            summary: String::new(),
            body: vec![],
            received_at_ms: now,
        }
    }

    /// The sequence numbers of agent "a"'s events still stored.
    async fn seqs_left(store: &impl Events) -> Vec<u64> {
        let left = store.events("a".into(), 20).await.unwrap();
        left.iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn the_default_policy_prunes_what_is_older_than_thirty_days() {
        let store = Store::memory().unwrap();
        let now = 100 * 86_400_000;
        let day = |d: i64, seq: u64| event(seq, now - d * 86_400_000, now);
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
        assert_eq!(seqs_left(&store).await, [2, 3]);
    }

    #[tokio::test]
    async fn two_controllers_on_one_store_prune_once() {
        let test = "two_controllers_on_one_store_prune_once";
        let Some(options) = crate::store::pg::testing::database(test).await else {
            return;
        };
        let open = async || {
            let store = crate::store::pg::PgStore::open(&options).await.unwrap();
            AnyStore::Pg(store)
        };
        let (a, b) = (open().await, open().await);
        let now = now_ms();
        let events = (1..=10).map(|seq| event(seq, now - 1000 + seq as i64, now));
        a.insert_events(events.collect()).await.unwrap();
        // The newest 4 kept: 6 to go, once, by whichever controller holds the lease.
        let policy = EventRetention {
            max_rows: 4,
            ..EventRetention::FOREVER
        };
        let (on_a, on_b) = tokio::join!(
            prune_if_held(&a, &policy, now),
            prune_if_held(&b, &policy, now)
        );
        let pruned: Vec<u64> = [on_a.unwrap(), on_b.unwrap()]
            .into_iter()
            .flatten()
            .map(|p| p.by_cap)
            .collect();
        assert_eq!(pruned, [6], "one controller pruned, the other held off");
        assert_eq!(seqs_left(&b).await, [7, 8, 9, 10]);
    }
}
