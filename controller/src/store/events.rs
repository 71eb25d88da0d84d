//! Telemetry events, stored once per (agent, sequence number): the `Events` trait, its queries
//! here, its write path in `ingest.rs` and its pruning in `retention.rs`.

use super::alerts::Finding;
use super::retention::PRUNE_CHUNK;
use super::rows::Cols;
use super::{Ingested, Pruned, Store, StoreError};
use crate::policy::grouping::Grouping;

use cordon_proto::{Event, event};
use prost::Message;
use rusqlite::params;
use rusqlite::types::Value;

/// One event as stored: its sequence number, time, kind, one-line summary and encoded body.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub agent_id: String,
    pub seq: u64,
    pub time_ms: i64,
    pub kind: String,
    pub summary: String,
    pub body: Vec<u8>,
    pub received_at_ms: i64,
}

/// What `query_events` filters on; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub agent_id: Option<String>,
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub contains: Option<String>,
    pub limit: u32,
    /// A page: only events before (older than) this one, or only after (newer than) it, in
    /// the events' order (time, agent, seq).
    pub before: Option<EventKey>,
    pub after: Option<EventKey>,
}

/// An event's place in the order events are listed in: time, then agent, then seq.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventKey {
    pub time_ms: i64,
    pub agent_id: String,
    pub seq: u64,
}

impl StoredEvent {
    pub fn key(&self) -> EventKey {
        EventKey {
            time_ms: self.time_ms,
            agent_id: self.agent_id.clone(),
            seq: self.seq,
        }
    }
}

/// Which process events of an agent `process_events` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessLink {
    /// Those of processes with this pid (any start time: pids are reused).
    Pid(u32),
    /// Those of processes whose parent had this pid.
    Parent(u32),
}

impl ProcessLink {
    /// The indexed column this link reads, and the pid it looks for there.
    pub fn column(self) -> (&'static str, u32) {
        match self {
            Self::Pid(p) => ("pid", p),
            Self::Parent(p) => ("ppid", p),
        }
    }
}

/// A process event's pid, parent pid and start ticks, as the store indexes them; `None` for
/// any other event (or a body that does not decode).
pub(super) fn process_key(e: &StoredEvent) -> Option<(u32, u32, u64)> {
    if e.kind != "process" {
        return None;
    }
    match Event::decode(e.body.as_slice()).ok()?.body? {
        event::Body::Process(p) => Some((p.pid, p.ppid, p.start_ticks)),
        _ => None,
    }
}

pub(super) fn from_row<R: Cols>(r: &R) -> Result<StoredEvent, R::Error> {
    Ok(StoredEvent {
        agent_id: r.col(0)?,
        seq: r.col::<i64>(1)? as u64,
        time_ms: r.col(2)?,
        kind: r.col(3)?,
        summary: r.col(4)?,
        body: r.col(5)?,
        received_at_ms: r.col(6)?,
    })
}

/// The query for `f` and its arguments: the keys of the newest matches first, from
/// `events_by_time` alone (it holds every column filtered on), then only those rows (see
/// migration 0011).
fn search(f: EventFilter) -> (String, Vec<Value>) {
    // The page nearest the `after` cursor is the oldest after it; any other, the newest.
    let order = if f.after.is_some() { "ASC" } else { "DESC" };
    let (filter, args) = where_clause(f);
    let sql = format!(
        "SELECT e.agent_id, e.seq, e.time_ms, e.kind, e.summary, e.body, e.received_at FROM
           (SELECT agent_id, seq FROM events {filter}
            ORDER BY time_ms {order}, agent_id {order}, seq {order} LIMIT ?) k
         JOIN events e ON e.agent_id = k.agent_id AND e.seq = k.seq
         ORDER BY e.time_ms, e.agent_id, e.seq"
    );
    (sql, args)
}

/// A value a search condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

/// How a backend's SQL writes the search's parameters and its case-insensitive `LIKE`.
pub(super) struct Dialect {
    /// The placeholder of the n-th parameter (from 1).
    pub placeholder: fn(usize) -> String,
    /// `LIKE` that ignores ASCII case.
    pub like: &'static str,
}

const SQLITE: Dialect = Dialect {
    placeholder: |_| "?".into(),
    like: "LIKE",
};

/// `WHERE` with a condition for each filter given (only those, so the time bounds limit the
/// index range read) and its arguments, the limit last.
fn where_clause(f: EventFilter) -> (String, Vec<Value>) {
    let (filter, args) = conditions(f, &SQLITE);
    let args = args
        .into_iter()
        .map(|a| match a {
            Arg::Int(i) => Value::Integer(i),
            Arg::Text(t) => Value::Text(t),
        })
        .collect();
    (filter, args)
}

/// The search's `WHERE` in a backend's dialect and its arguments, the limit last.
pub(super) fn conditions(f: EventFilter, d: &Dialect) -> (String, Vec<Arg>) {
    let mut terms = Vec::new();
    let mut args = Vec::new();
    let mut add = |term: &str, v: Arg| {
        args.push(v);
        terms.push(term.replace('?', &(d.placeholder)(args.len())));
    };
    if let Some(a) = f.agent_id {
        add("agent_id = ?", Arg::Text(a));
    }
    if let Some(k) = f.kind {
        add("kind = ?", Arg::Text(k));
    }
    if let Some(t) = f.since_ms {
        add("time_ms >= ?", Arg::Int(t));
    }
    if let Some(t) = f.until_ms {
        add("time_ms <= ?", Arg::Int(t));
    }
    if let Some(t) = f.contains {
        // Literal text: LIKE's wildcards in it are escaped.
        let escaped = t
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = format!("summary {} ? ESCAPE '\\'", d.like);
        add(&like, Arg::Text(format!("%{escaped}%")));
    }
    for (cursor, op) in [(f.before, "<"), (f.after, ">")] {
        if let Some(k) = cursor {
            let n = args.len();
            let p = |i| (d.placeholder)(n + i);
            terms.push(format!(
                "(time_ms, agent_id, seq) {op} ({}, {}, {})",
                p(1),
                p(2),
                p(3)
            ));
            args.extend([
                Arg::Int(k.time_ms),
                Arg::Text(k.agent_id),
                Arg::Int(k.seq as i64),
            ]);
        }
    }
    args.push(Arg::Int(i64::from(f.limit)));
    let filter = match terms.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", terms.join(" AND ")),
    };
    (filter, args)
}

/// The events aggregate: telemetry stored exactly once per (agent, seq), with what detection
/// found in it, queried by filter and pruned by age or count. Every backend passes
/// `conformance::events` (stored once, concurrently too, queries, findings, retention).
pub trait Events: Send + Sync {
    /// Stores a batch and, for each event that was new, records what detection found in it
    /// (`findings[i]` for `events[i]`: one entry per event), all at once: an event is stored and judged once, or
    /// neither. An event whose (agent, seq) is already stored is skipped, also within one
    /// batch. Returns once that is durable, with the events that were new and the alerts
    /// they raised (grouped by `grouping`; none without it).
    fn ingest(
        &self,
        events: Vec<StoredEvent>,
        findings: Vec<Vec<Finding>>,
        grouping: Option<Grouping>,
    ) -> impl Future<Output = Result<Ingested, StoreError>> + Send;

    /// Stores a batch with no findings; returns the events that were new.
    fn insert_events(
        &self,
        events: Vec<StoredEvent>,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Events matching `f` (the summary containing `f.contains` literally, case-insensitive
    /// for ASCII), the newest `f.limit` (with `f.after`, the oldest `f.limit` after it),
    /// returned oldest first.
    fn query_events(
        &self,
        f: EventFilter,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// An agent's process events linked to a pid as `by` says, oldest first, at most `limit`
    /// (the newest of them). Found by index, however many other events are stored.
    fn process_events(
        &self,
        agent_id: String,
        by: ProcessLink,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// The newest `limit` events of an agent, newest last.
    fn events(
        &self,
        agent_id: String,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        self.query_events(EventFilter {
            agent_id: Some(agent_id),
            limit,
            ..Default::default()
        })
    }

    /// One event by its key (agent, seq); None if it is not stored (never was, or pruned).
    fn event(
        &self,
        agent_id: String,
        seq: u64,
    ) -> impl Future<Output = Result<Option<StoredEvent>, StoreError>> + Send;

    fn event_count(&self, agent_id: String)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes events whose time is before `older_than` (Unix ms), then the oldest events
    /// (by time, agent, seq) beyond the newest `keep_newest`. `None` leaves that limit out.
    /// A prune never holds the store for long (see `retention.rs`).
    fn prune_events(
        &self,
        older_than: Option<i64>,
        keep_newest: Option<u64>,
    ) -> impl Future<Output = Result<Pruned, StoreError>> + Send;
}

impl Events for Store {
    async fn ingest(
        &self,
        events: Vec<StoredEvent>,
        findings: Vec<Vec<Finding>>,
        grouping: Option<Grouping>,
    ) -> Result<Ingested, StoreError> {
        self.group_commit(events, findings, grouping).await
    }

    async fn insert_events(
        &self,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let n = events.len();
        let none = vec![Vec::new(); n];
        Ok(self.group_commit(events, none, None).await?.0)
    }

    async fn query_events(&self, f: EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(move |c| {
            let (sql, args) = search(f);
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| from_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn process_events(
        &self,
        agent_id: String,
        by: ProcessLink,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (column, pid) = by.column();
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT agent_id, seq, time_ms, kind, summary, body, received_at FROM
                   (SELECT * FROM events WHERE agent_id = ?1 AND {column} = ?2
                    ORDER BY time_ms DESC, seq DESC LIMIT ?3)
                 ORDER BY time_ms, seq"
            ))?;
            let rows = stmt.query_map(params![agent_id, pid, limit], |r| from_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn event(&self, agent_id: String, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        use rusqlite::OptionalExtension;
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT agent_id, seq, time_ms, kind, summary, body, received_at FROM events
                 WHERE agent_id = ?1 AND seq = ?2",
            )?;
            // As ingest stores it.
            let seq = seq as i64;
            Ok(stmt
                .query_row(params![agent_id, seq], |r| from_row(r))
                .optional()?)
        })
        .await
    }

    async fn event_count(&self, agent_id: String) -> Result<u64, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM events WHERE agent_id = ?1",
                [agent_id],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    async fn prune_events(
        &self,
        older_than: Option<i64>,
        keep_newest: Option<u64>,
    ) -> Result<Pruned, StoreError> {
        self.prune_in_chunks(older_than, keep_newest, PRUNE_CHUNK)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A search by time and text reads the index alone, seeking only the rows it returns
    /// (a rare text over a day of a million events took seconds otherwise).
    #[tokio::test]
    async fn a_text_search_filters_on_the_index_alone() {
        let s = Store::memory().unwrap();
        let f = EventFilter {
            since_ms: Some(1),
            contains: Some("xmrig".into()),
            limit: 50,
            ..Default::default()
        };
        let (sql, args) = search(f);
        let plan = s
            .with(move |c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
            })
            .await
            .unwrap();
        assert!(
            plan.contains("COVERING INDEX events_by_time (time_ms>?)"),
            "{plan}"
        );
    }
}
