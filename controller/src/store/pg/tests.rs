//! What the PostgreSQL backend adds to the contract: day partitions (made on demand for a
//! wrong clock, dropped whole by retention), a schema migrated once when controllers start
//! together, and a clear error, soon, when the database cannot be reached.

use super::partitions::{DAY_MS, day_of};
use super::{PgOptions, PgStore, testing};
use crate::store::{EventFilter, Events, StoreError, StoredEvent};
use std::time::{Duration, Instant};

/// An event of `agent` at `time_ms`.
fn ev(agent: &str, seq: u64, time_ms: i64) -> StoredEvent {
    crate::store::conformance::event(agent, seq, time_ms, "notice", "tick")
}

async fn all(s: &PgStore) -> Vec<(u64, i64)> {
    let f = EventFilter {
        limit: 1000,
        ..Default::default()
    };
    let found = s.query_events(f).await.expect("query");
    found.iter().map(|e| (e.seq, e.time_ms)).collect()
}

#[tokio::test]
async fn an_event_from_a_wrong_clock_gets_a_partition_of_its_own() {
    let Some(o) = testing::database("pg_wrong_clock").await else {
        return;
    };
    let s = PgStore::open(&o).await.expect("open");
    let today = day_of(cordon_proto::time::now_ms());
    let before = s.partition_days().await.expect("days");
    assert_eq!(
        before,
        (today..=today + 3).collect::<Vec<_>>(),
        "made ahead"
    );
    let far_past = -5 * DAY_MS + 1;
    let far_future = (today + 400) * DAY_MS;
    let batch = vec![ev("a", 1, far_past), ev("a", 2, far_future), ev("a", 2, 7)];
    let added = s.insert_events(batch).await.expect("insert");
    assert_eq!(added.len(), 2, "seq 2 once, however its time differs");
    assert_eq!(all(&s).await, [(1, far_past), (2, far_future)]);
    let days = s.partition_days().await.expect("days");
    assert!(
        days.contains(&-5) && days.contains(&(today + 400)),
        "{days:?}"
    );
}

#[tokio::test]
async fn retention_drops_whole_days_and_deletes_within_the_cutoff_day() {
    let Some(o) = testing::database("pg_retention_drops_days").await else {
        return;
    };
    let s = PgStore::open(&o).await.expect("open");
    let batch = (0..6)
        .map(|i| ev("a", i + 1, i as i64 * DAY_MS / 2))
        .collect();
    s.insert_events(batch).await.expect("insert");
    // Days 0, 1 and 2 hold two events each; the cutoff falls inside day 2.
    let pruned = s
        .prune_events(Some(2 * DAY_MS + 1), None)
        .await
        .expect("prune");
    assert_eq!(pruned.by_age, 5);
    assert_eq!(all(&s).await, [(6, 5 * DAY_MS / 2)]);
    let days = s.partition_days().await.expect("days");
    assert!(!days.contains(&0) && !days.contains(&1), "{days:?}");
    assert!(days.contains(&2), "the cutoff's day stays");
    let resent = s.insert_events(vec![ev("a", 1, 0)]).await.expect("resend");
    assert_eq!(resent.len(), 1, "a pruned event's key went with it");
    let capped = s.prune_events(None, Some(1)).await.expect("cap");
    assert_eq!(capped.by_cap, 1);
    assert_eq!(all(&s).await, [(6, 5 * DAY_MS / 2)]);
    assert!(!s.partition_days().await.expect("days").contains(&0));
}

#[tokio::test]
async fn controllers_starting_together_migrate_once() {
    let Some(o) = testing::database("pg_migrate_once").await else {
        return;
    };
    let (a, b) = tokio::join!(PgStore::open(&o), PgStore::open(&o));
    let (a, _b) = (a.expect("first"), b.expect("second"));
    let versions: i64 = a
        .client()
        .await
        .expect("client")
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .await
        .expect("versions")
        .get(0);
    assert_eq!(versions, super::schema::MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_soon() {
    let dir = tempfile::tempdir().expect("dir");
    let mut o = PgOptions::new(format!(
        "host={} user=cordon dbname=cordon",
        dir.path().display()
    ));
    o.wait = Duration::from_secs(2);
    let started = Instant::now();
    let refused = PgStore::open(&o).await.err().expect("no server there");
    assert!(
        matches!(&refused, StoreError::Unreachable { target, .. } if target.contains("/cordon")),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let bad = PgStore::open(&PgOptions::new("postgres://[")).await.err();
    assert!(matches!(bad, Some(StoreError::PgUrl(_))), "{bad:?}");
}

#[tokio::test]
async fn a_day_dropped_by_another_controller_is_made_again() {
    let Some(o) = testing::database("pg_day_made_again").await else {
        return;
    };
    let (a, b) = (
        PgStore::open(&o).await.expect("a"),
        PgStore::open(&o).await.expect("b"),
    );
    a.insert_events(vec![ev("a", 1, 10)]).await.expect("insert");
    b.insert_events(vec![ev("b", 1, 20)])
        .await
        .expect("b sees day 0");
    let pruned = a.prune_events(Some(DAY_MS), None).await.expect("prune");
    assert_eq!(pruned.by_age, 2);
    let again = b
        .insert_events(vec![ev("b", 2, 30)])
        .await
        .expect("b again");
    assert_eq!(again.len(), 1);
    assert_eq!(all(&a).await, [(2, 30)]);
}

/// Batches of one host committed at once by different connections (as by two controllers)
/// still group their alerts into one incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_alerts_of_a_host_open_one_incident() {
    let Some(o) = testing::database("pg_one_incident").await else {
        return;
    };
    let s = PgStore::open(&o).await.expect("open");
    let grouping = crate::policy::grouping::Grouping {
        alert_window_ms: 600_000,
        incident_window_ms: 3_600_000,
    };
    let batches = (1..=8u64).map(|seq| {
        let s = s.clone();
        let finding = crate::store::conformance::finding(&format!("r{seq}"), "high");
        tokio::spawn(async move {
            let batch = vec![ev("h", seq, 1_000 + seq as i64)];
            s.ingest(batch, vec![vec![finding]], Some(grouping)).await
        })
    });
    let mut incidents = std::collections::BTreeSet::new();
    for batch in batches.collect::<Vec<_>>() {
        let (_, alerts) = batch.await.expect("task").expect("ingest");
        incidents.extend(alerts.into_iter().map(|a| a.incident_id));
    }
    assert_eq!(incidents.len(), 1, "{incidents:?}");
}

/// A statement past the timeout is cancelled, and a call finding every pooled connection
/// busy fails once its wait is over: neither hangs.
#[tokio::test]
async fn slow_statements_and_a_full_pool_fail_in_bounded_time() {
    let Some(mut o) = testing::database("pg_bounded_waits").await else {
        return;
    };
    o.pool_size = 1;
    o.statement_timeout = Duration::from_millis(300);
    o.wait = Duration::from_millis(500);
    let s = PgStore::open(&o).await.expect("open");
    let started = Instant::now();
    let held = s.client().await.expect("the one connection");
    let slow = held.batch_execute("SELECT pg_sleep(10)").await;
    let cancelled = slow.expect_err("cancelled");
    assert_eq!(
        cancelled.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{cancelled}"
    );
    let busy = s
        .event_count("a".into())
        .await
        .expect_err("no free connection");
    assert!(matches!(busy, StoreError::PoolBusy { .. }), "{busy}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    assert_eq!(s.event_count("a".into()).await.expect("free again"), 0);
}

/// Overlapping batches of several hosts, each sent at once through two controllers' stores
/// (whose small pools make them queue and go in groups): every (agent, seq) is stored once,
/// handed back as new to exactly one caller, and judged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_batches_from_two_stores_sharing_keys_store_each_event_once() {
    let Some(o) = testing::database("pg_grouped_batches").await else {
        return;
    };
    let stores = [
        PgStore::open(&o).await.expect("a"),
        PgStore::open(&o).await.expect("b"),
    ];
    let grouping = crate::policy::grouping::Grouping {
        alert_window_ms: 600_000,
        incident_window_ms: 3_600_000,
    };
    let finding = crate::store::conformance::finding("r", "high");
    // Batch k of a host holds seqs 20k+1..=20k+25: its last five are the next one's first.
    let batch = |agent: &str, k: u64| -> Vec<StoredEvent> {
        (20 * k + 1..=20 * k + 25)
            .map(|seq| ev(agent, seq, 1_000 + seq as i64))
            .collect()
    };
    let mut tasks = Vec::new();
    for agent in ["h1", "h2", "h3", "h4"] {
        for k in 0..6 {
            for s in &stores {
                let (s, events) = (s.clone(), batch(agent, k));
                let findings = vec![vec![finding.clone()]; events.len()];
                tasks.push(tokio::spawn(async move {
                    s.ingest(events, findings, Some(grouping)).await
                }));
            }
        }
    }
    let mut new = Vec::new();
    let mut judged = 0;
    for t in tasks {
        let (added, alerts) = t.await.expect("task").expect("ingest");
        judged += alerts.len();
        new.extend(added.into_iter().map(|e| (e.agent_id, e.seq)));
    }
    let distinct: std::collections::BTreeSet<_> = new.iter().cloned().collect();
    assert_eq!(new.len(), distinct.len(), "an event handed back twice");
    assert_eq!(distinct.len(), 4 * 125, "seqs 1..=125 of each host");
    assert_eq!(judged, 4 * 125, "each event judged once");
    for agent in ["h1", "h2", "h3", "h4"] {
        let n = stores[1].event_count(agent.into()).await.expect("count");
        assert_eq!(n, 125, "{agent}");
    }
}
