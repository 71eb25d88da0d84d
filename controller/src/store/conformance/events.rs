//! The contract of the events aggregate: each (agent, seq) stored once, whatever is resent;
//! queries that return exactly the events their filter names; retention that removes only
//! what is past its limits.

use super::alerts::{G, finding};
use crate::store::{EventFilter, Events, ProcessLink, StoredEvent};
use cordon_proto::{Event, ProcessEvent, event};
use prost::Message;
use std::collections::BTreeSet;
use std::sync::Arc;

pub fn event(agent: &str, seq: u64, time_ms: i64, kind: &str, summary: &str) -> StoredEvent {
    StoredEvent {
        agent_id: agent.into(),
        seq,
        time_ms,
        kind: kind.into(),
        summary: summary.into(),
        body: vec![seq as u8],
        received_at_ms: time_ms,
    }
}

/// (agent, seq) of each event, in the order given.
fn keys(events: &[StoredEvent]) -> Vec<(&str, u64)> {
    events
        .iter()
        .map(|e| (e.agent_id.as_str(), e.seq))
        .collect()
}

/// Four events: a/1 at 100, b/1 at 150, a/2 at 200, a/3 at 300.
fn four() -> Vec<StoredEvent> {
    vec![
        event("a", 1, 100, "process", "exec /bin/sh"),
        event("b", 1, 150, "process", "exec /usr/bin/id"),
        event("a", 2, 200, "file", "create /tmp/a_b%c"),
        event("a", 3, 300, "network", "connect 10.0.0.1:443"),
    ]
}

/// A batch sent twice is stored once; a resent (agent, seq) keeps what was stored first,
/// even with other content, and the same seq from another agent is another event.
pub async fn events_stored_once<S: Events>(s: &S) {
    let batch = four();
    let added = s.insert_events(batch.clone()).await.expect("insert");
    assert_eq!(keys(&added), keys(&batch), "all new, in batch order");
    let again = s.insert_events(batch).await.expect("resend");
    assert!(again.is_empty(), "a resent batch stores nothing");

    let mixed = vec![
        event("a", 2, 999, "file", "other content"),
        event("a", 4, 400, "file", "new"),
        event("a", 4, 400, "file", "new"),
        event("c", 1, 100, "process", "another agent"),
    ];
    let added = s.insert_events(mixed).await.expect("insert");
    assert_eq!(
        keys(&added),
        [("a", 4), ("c", 1)],
        "twice in one batch: once"
    );

    let a = s.events("a".into(), 100).await.expect("events");
    assert_eq!(keys(&a), [("a", 1), ("a", 2), ("a", 3), ("a", 4)]);
    assert_eq!(
        (a[1].summary.as_str(), a[1].time_ms),
        ("create /tmp/a_b%c", 200)
    );
    assert_eq!(a[1].body, [2], "the body as stored first");
    for (agent, n) in [("a", 4), ("b", 1), ("c", 1), ("nobody", 0)] {
        assert_eq!(s.event_count(agent.into()).await.expect("count"), n);
    }
}

/// Overlapping batches from two agents, all in flight at once: every (agent, seq) is
/// reported new by exactly one of them, whichever was stored first, and stored once.
pub async fn concurrent_batches<S: Events + 'static>(s: Arc<S>) {
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let s = s.clone();
            let agent = if i % 2 == 0 { "a" } else { "b" };
            let batch = (i * 5..i * 5 + 20)
                .map(|seq| event(agent, seq, 1_000 + seq as i64, "notice", "tick"))
                .collect();
            tokio::spawn(async move { s.insert_events(batch).await.expect("insert") })
        })
        .collect();
    let mut new = BTreeSet::new();
    for t in tasks {
        for e in t.await.expect("task") {
            let (agent, seq) = (e.agent_id, e.seq);
            assert!(new.insert((agent.clone(), seq)), "{agent}/{seq} new twice");
        }
    }
    assert_eq!(new.len(), 2 * 210, "a: seqs 0..210, b: 5..215");
    for agent in ["a", "b"] {
        let n = s.event_count(agent.into()).await.expect("count");
        assert_eq!(n, new.iter().filter(|(a, _)| a == agent).count() as u64);
    }
}

/// A filter on these fields (None matches everything), up to `limit` events.
fn filter(
    agent: Option<&str>,
    kind: Option<&str>,
    (since_ms, until_ms): (Option<i64>, Option<i64>),
    contains: Option<&str>,
    limit: u32,
) -> EventFilter {
    EventFilter {
        agent_id: agent.map(String::from),
        kind: kind.map(String::from),
        since_ms,
        until_ms,
        contains: contains.map(String::from),
        limit,
        ..Default::default()
    }
}

/// Each filter (agent, kind, time bounds, literal text, limit) returns exactly its events,
/// the newest `limit` of them, oldest first.
pub async fn event_queries<S: Events>(s: &S) {
    s.insert_events(four()).await.expect("insert");
    let any = (None, None);
    let cases = [
        (
            filter(None, None, any, None, 100),
            "a/1 b/1 a/2 a/3",
            "all, oldest first",
        ),
        (filter(Some("b"), None, any, None, 100), "b/1", "one agent"),
        (
            filter(None, Some("process"), any, None, 100),
            "a/1 b/1",
            "one kind",
        ),
        (
            filter(Some("a"), Some("process"), any, None, 100),
            "a/1",
            "both",
        ),
        (
            filter(None, None, (Some(150), Some(200)), None, 100),
            "b/1 a/2",
            "bounds included",
        ),
        (
            filter(None, None, any, Some("EXEC"), 100),
            "a/1 b/1",
            "any case",
        ),
        (filter(None, None, any, Some("a_b%c"), 100), "a/2", "text"),
        (
            filter(None, None, any, Some("a%c"), 100),
            "",
            "wildcards are literal",
        ),
        (
            filter(None, None, any, None, 2),
            "a/2 a/3",
            "the newest, oldest first",
        ),
    ];
    for (f, want, what) in cases {
        let found = s.query_events(f).await.expect("query");
        let found: Vec<String> = keys(&found)
            .iter()
            .map(|(a, q)| format!("{a}/{q}"))
            .collect();
        assert_eq!(found.join(" "), want, "{what}");
    }
    let last = s.events("a".into(), 1).await.expect("events");
    assert_eq!(keys(&last), [("a", 3)], "an agent's newest");
}

/// Detection's findings are recorded for new events only: a resent event raises nothing,
/// and without grouping no alert is raised at all.
pub async fn ingest_records_findings_once<S: Events>(s: &S) {
    let batch = vec![
        event("h", 1, 1_000, "process", "exec nc"),
        event("h", 2, 1_001, "process", "exec ls"),
    ];
    let findings = vec![vec![finding("r1", "high")], vec![]];
    let (new, alerts) = s
        .ingest(batch.clone(), findings.clone(), Some(G))
        .await
        .expect("ingest");
    assert_eq!(keys(&new), [("h", 1), ("h", 2)]);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].new);
    assert_eq!(
        (
            alerts[0].agent_id.as_str(),
            alerts[0].finding.rule.rule_id.as_str()
        ),
        ("h", "r1")
    );
    let (new, alerts) = s.ingest(batch, findings, Some(G)).await.expect("resend");
    assert!(
        new.is_empty() && alerts.is_empty(),
        "a resend is judged no more"
    );
    let ungrouped = vec![event("h", 3, 1_002, "process", "exec nc")];
    let (new, alerts) = s
        .ingest(ungrouped, vec![vec![finding("r1", "high")]], None)
        .await
        .expect("ingest");
    assert_eq!((new.len(), alerts.len()), (1, 0));
}

/// (agent, seq, time) of every stored event, in (time, agent, seq) order.
async fn stored<S: Events>(s: &S) -> Vec<(String, u64, i64)> {
    let all = EventFilter {
        limit: 10_000,
        ..Default::default()
    };
    let mut rows: Vec<_> = s
        .query_events(all)
        .await
        .expect("query")
        .into_iter()
        .map(|e| (e.agent_id, e.seq, e.time_ms))
        .collect();
    rows.sort_by(|x, y| (x.2, &x.0, x.1).cmp(&(y.2, &y.0, y.1)));
    rows
}

/// Retention by age removes exactly what is older than the cut-off; the row cap keeps
/// exactly the newest; a second pass finds nothing; a pruned event resent is new again.
pub async fn retention<S: Events>(s: &S) {
    for agent in ["a", "b"] {
        let batch = (0..20)
            .map(|i| event(agent, i + 1, 1_000 + i as i64, "notice", "tick"))
            .collect();
        s.insert_events(batch).await.expect("insert");
    }
    let pruned = s.prune_events(Some(1_010), None).await.expect("prune");
    assert_eq!((pruned.by_age, pruned.by_cap), (20, 0));
    let left = stored(s).await;
    assert_eq!(left.len(), 20);
    assert_eq!(left[0].2, 1_010, "the event at the cut-off stays");
    assert_eq!(
        s.prune_events(Some(1_010), None)
            .await
            .expect("prune")
            .total(),
        0
    );

    let pruned = s.prune_events(None, Some(5)).await.expect("prune");
    assert_eq!((pruned.by_age, pruned.by_cap), (0, 15));
    let want = [
        ("b", 18, 1_017),
        ("a", 19, 1_018),
        ("b", 19, 1_018),
        ("a", 20, 1_019),
        ("b", 20, 1_019),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(a, q, t)| (a.to_string(), *q, *t))
        .collect();
    assert_eq!(stored(s).await, want, "the newest by (time, agent, seq)");
    assert_eq!(
        s.prune_events(Some(0), Some(5))
            .await
            .expect("prune")
            .total(),
        0
    );

    let resent = vec![
        event("a", 1, 1_000, "notice", "tick"),
        event("a", 20, 1_019, "notice", "tick"),
    ];
    let added = s.insert_events(resent).await.expect("insert");
    assert_eq!(keys(&added), [("a", 1)], "pruned is new again; kept is not");
}

/// A process's exec event: `pid` started at `ticks` under `ppid`, running `argv`.
pub fn exec(agent: &str, seq: u64, (pid, ppid, ticks): (u32, u32, u64), argv: &str) -> StoredEvent {
    let p = ProcessEvent {
        kind: cordon_proto::process_event::Kind::Exec as i32,
        pid,
        ppid,
        start_ticks: ticks,
        argv: argv.split(' ').map(String::from).collect(),
        ..Default::default()
    };
    let body = Event {
        seq,
        time_ms: seq as i64,
        body: Some(event::Body::Process(p)),
        ..Default::default()
    };
    StoredEvent {
        body: body.encode_to_vec(),
        ..event(agent, seq, seq as i64, "process", argv)
    }
}

/// An agent's process events are found by pid and by parent pid: every instance of a
/// reused pid, no other agent's, no event of another kind, the newest `limit`.
pub async fn process_queries<S: Events>(s: &S) {
    s.insert_events(vec![
        exec("a", 1, (10, 1, 100), "sh"),
        exec("a", 2, (11, 10, 110), "id"),
        exec("a", 3, (12, 10, 120), "ls"),
        exec("a", 4, (10, 1, 900), "reused"),
        exec("b", 5, (10, 1, 100), "other host"),
        event("a", 6, 6, "file", "create /tmp/x"),
    ])
    .await
    .expect("insert");
    let seqs = |v: Vec<StoredEvent>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    let found = |by, limit| s.process_events("a".into(), by, limit);
    assert_eq!(
        seqs(found(ProcessLink::Pid(10), 100).await.expect("query")),
        [1, 4]
    );
    assert_eq!(
        seqs(found(ProcessLink::Parent(10), 100).await.expect("query")),
        [2, 3]
    );
    assert_eq!(
        seqs(found(ProcessLink::Parent(10), 1).await.expect("query")),
        [3]
    );
    assert!(
        found(ProcessLink::Pid(99), 100)
            .await
            .expect("query")
            .is_empty()
    );
    let b = s.process_events("b".into(), ProcessLink::Pid(10), 100);
    assert_eq!(seqs(b.await.expect("query")), [5]);
}

/// One event by its key: the stored one, whole; none for a seq never stored, for the same
/// seq of another agent, or for an event pruned away.
pub async fn event_by_key<S: Events>(s: &S) {
    s.insert_events(vec![
        exec("a", 7, (10, 1, 100), "sh -c id"),
        event("a", 8, 5_000, "file", "create /tmp/x"),
        event("b", 9, 9, "process", "exec /bin/true"),
    ])
    .await
    .expect("insert");
    let got = s
        .event("a".into(), 7)
        .await
        .expect("lookup")
        .expect("stored");
    let whole = exec("a", 7, (10, 1, 100), "sh -c id");
    assert_eq!(
        (
            got.agent_id.as_str(),
            got.seq,
            got.time_ms,
            got.kind.as_str()
        ),
        ("a", 7, 7, "process")
    );
    assert_eq!((got.summary, got.body), (whole.summary, whole.body));
    let file = s
        .event("a".into(), 8)
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!((file.kind.as_str(), file.time_ms), ("file", 5_000));
    for (agent, seq) in [("a", 9), ("b", 7), ("c", 7), ("a", u64::MAX)] {
        let none = s.event(agent.into(), seq).await.expect("lookup");
        assert!(none.is_none(), "{agent}:{seq} is not stored");
    }
    s.prune_events(Some(1_000), None).await.expect("prune");
    assert!(
        s.event("a".into(), 7).await.expect("lookup").is_none(),
        "pruned"
    );
    assert!(
        s.event("a".into(), 8).await.expect("lookup").is_some(),
        "kept"
    );
}

/// Pages of a query follow the events' order: `before` the oldest shown gives the page
/// older than it, `after` the newest shown the page newer, with nothing skipped or repeated.
pub async fn event_pages<S: Events>(s: &S) {
    let mut batch = four();
    batch.push(event("b", 2, 300, "file", "same time as a/3"));
    s.insert_events(batch).await.expect("insert");
    let page = |before, after| {
        let f = EventFilter {
            limit: 2,
            before,
            after,
            ..Default::default()
        };
        async move {
            let found = s.query_events(f).await.expect("query");
            let keys: Vec<String> = keys(&found)
                .iter()
                .map(|(a, q)| format!("{a}/{q}"))
                .collect();
            (keys.join(" "), found)
        }
    };
    let (newest, rows) = page(None, None).await;
    assert_eq!(newest, "a/3 b/2", "ties in time go by agent");
    let (older, rows2) = page(Some(rows[0].key()), None).await;
    assert_eq!(older, "b/1 a/2");
    let (oldest, rows3) = page(Some(rows2[0].key()), None).await;
    assert_eq!(oldest, "a/1");
    let (newer, _) = page(None, Some(rows3[0].key())).await;
    assert_eq!(newer, "b/1 a/2", "the page just after, oldest first");
    let (none, _) = page(None, Some(rows[1].key())).await;
    assert_eq!(none, "", "nothing is newer than the newest");
}
