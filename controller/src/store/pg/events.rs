//! Events on PostgreSQL: the write path and the queries. The unique (agent, seq) that the
//! partitioned `events` cannot hold itself is `event_keys`' primary key. A batch (or a group
//! of queued batches, `ingest.rs`) goes in:
//!
//! - first on the fast path (`copy.rs`): in one transaction, binary COPYs of its keys and of
//!   its events. A key that is not new (stored already, repeated in the batch, or inserted by
//!   a concurrent batch that then commits) fails it with a unique violation and nothing of it
//!   is stored;
//! - then, only after such a failure, with [`STORE_NEW`], one statement: the keys with `ON
//!   CONFLICT DO NOTHING RETURNING`, and only the events whose keys were new. A concurrent
//!   batch with the same keys waits on the key index until this one commits, then skips them.
//!
//! Either way each event is stored, and judged, exactly once: with findings, the events go in
//! in one transaction with their alerts. An agent resends an event only when a reply was
//! lost, so the careful path is the exception. `synchronous_commit` stays on: a batch is
//! answered once its commit is durable.
//!
//! Queries: the search reads `events_by_time`; one agent's events are found through its keys
//! (no index on `events` leads with the agent), a process tree through the partial pid and
//! parent pid indexes.

use super::{PgStore, all, big, copy, partitions};
use crate::policy::grouping::Grouping;
use crate::store::events::{Arg, Dialect, conditions, from_row, process_key};
use crate::store::{
    AlertChange, EventFilter, Events, Finding, Ingested, ProcessLink, Pruned, StoreError,
    StoredEvent,
};
use deadpool_postgres::Object;
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement, Transaction};

const POSTGRES: Dialect = Dialect {
    placeholder: |n| format!("${n}"),
    like: "ILIKE",
};

const COLUMNS: &str = "agent_id, seq, time_ms, kind, summary, body, received_at";

/// Whether an insert failed because no partition holds a row's day (one dropped by another
/// controller after this one saw it).
pub(super) fn no_partition(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else {
        return false;
    };
    e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
        && e.as_db_error()
            .is_some_and(|d| d.message().contains("no partition"))
}

/// The rows of a batch, as the parameters of [`STORE_NEW`] unnest them.
const BATCH: &str = "
    SELECT b.agent_id COLLATE \"C\" AS agent_id, b.seq, b.time_ms, b.kind, b.body,
           b.received_at, b.summary, b.pid, b.ppid, b.start_ticks, b.place
    FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BYTEA[],
                $6::BIGINT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[])
        WITH ORDINALITY AS b(agent_id, seq, time_ms, kind, body, received_at, summary,
                             pid, ppid, start_ticks, place)";

/// The columns of `events` a batch fills.
const INSERTED: &str =
    "agent_id, seq, time_ms, kind, body, received_at, summary, pid, ppid, start_ticks";

/// A batch whose keys may be stored already: the keys into `event_keys` sorted, so two
/// batches sharing keys take their locks in the same order (one waits for the other, never a
/// deadlock), with `ON CONFLICT DO NOTHING RETURNING`; then the events whose keys were new
/// (the first of any repeated within the batch) into `events`. Returns their 1-based places
/// in the batch.
static STORE_NEW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH batch AS ({BATCH}),
         new_keys AS (
             INSERT INTO event_keys (agent_id, seq, time_ms)
             SELECT agent_id, seq, time_ms FROM batch ORDER BY agent_id, seq
             ON CONFLICT DO NOTHING RETURNING agent_id, seq),
         first AS (
             SELECT DISTINCT ON (b.agent_id, b.seq) b.*
             FROM batch b JOIN new_keys k ON k.agent_id = b.agent_id AND k.seq = b.seq
             ORDER BY b.agent_id, b.seq, b.place),
         stored AS (INSERT INTO events ({INSERTED}) SELECT {INSERTED} FROM first)
         SELECT place FROM first ORDER BY place"
    )
});

/// How a batch goes in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Insert {
    /// `copy::store_all`: every key new, or a unique violation.
    All,
    /// [`STORE_NEW`]: only the new keys' events.
    New,
}

/// Whether the fast path failed because a key was not new (or, defensively, on a deadlock),
/// so the batch must go through [`STORE_NEW`].
fn collided(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    let StoreError::Postgres(e) = e else {
        return false;
    };
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

/// Stores the events of `events` whose keys are new with [`STORE_NEW`] (prepared as
/// `statement`); returns their indices, in order.
async fn store_new(
    c: &impl GenericClient,
    statement: &Statement,
    events: &[&StoredEvent],
) -> Result<Vec<usize>, StoreError> {
    let keys: Vec<_> = events.iter().map(|e| process_key(e)).collect();
    let col = |f: fn(&StoredEvent) -> i64| events.iter().map(|e| f(e)).collect::<Vec<i64>>();
    let text = |f: fn(&StoredEvent) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
    let process =
        |f: fn((u32, u32, u64)) -> i64| keys.iter().map(|k| k.map(f)).collect::<Vec<Option<i64>>>();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let (agents, seqs, times) = (
        text(|e| &e.agent_id),
        col(|e| e.seq as i64),
        col(|e| e.time_ms),
    );
    let (kinds, received, summaries) = (
        text(|e| &e.kind),
        col(|e| e.received_at_ms),
        text(|e| &e.summary),
    );
    let (pids, ppids, ticks) = (
        process(|k| i64::from(k.0)),
        process(|k| i64::from(k.1)),
        process(|k| k.2 as i64),
    );
    let params: [&(dyn ToSql + Sync); 10] = [
        &agents, &seqs, &times, &kinds, &bodies, &received, &summaries, &pids, &ppids, &ticks,
    ];
    let rows = c.query(statement, &params).await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<_, i64>(0)? as usize - 1))
        .collect()
}

/// Serialises the grouping of alerts per agent across controllers (as SQLite's single
/// writer does), so two batches of one host cannot each open an incident for it. Agents are
/// locked in sorted order, to the end of the transaction.
async fn lock_agents<'a>(
    tx: &Transaction<'_>,
    agents: impl Iterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let agents: std::collections::BTreeSet<&str> = agents.collect();
    for agent in agents {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&agent],
        )
        .await?;
    }
    Ok(())
}

/// Events to store, with what detection found in each (`findings[i]` for `events[i]`): one
/// batch, or a group's batches one after another (`ingest.rs`).
pub(super) struct Rows<'a> {
    pub events: Vec<&'a StoredEvent>,
    pub findings: Vec<&'a [Finding]>,
}

impl<'a> Rows<'a> {
    pub(super) fn of(events: &'a [StoredEvent], findings: &'a [Vec<Finding>]) -> Self {
        let mut rows = Self {
            events: Vec::new(),
            findings: Vec::new(),
        };
        rows.push(events, findings);
        rows
    }

    /// Adds a batch (an event without an entry in `findings` has none).
    pub(super) fn push(&mut self, events: &'a [StoredEvent], findings: &'a [Vec<Finding>]) {
        self.events.extend(events);
        let found = |i| findings.get(i).map_or(&[][..], Vec::as_slice);
        self.findings.extend((0..events.len()).map(found));
    }

    pub(super) fn days(&self) -> std::collections::HashSet<i64> {
        let day = |e: &&StoredEvent| partitions::day_of(e.time_ms);
        self.events.iter().map(day).collect()
    }
}

/// Which of the rows were new (by index), and the alerts they raised, each with its event's
/// index.
pub(super) type Stored = (Vec<usize>, Vec<(usize, AlertChange)>);

/// Stores `rows` on `c` (their partitions exist): the fast path, then, if a key was not new,
/// the careful one (see the module's header).
pub(super) async fn store(
    c: &mut Object,
    rows: &Rows<'_>,
    grouping: Option<Grouping>,
) -> Result<Stored, StoreError> {
    match store_once(c, Insert::All, rows, grouping).await {
        Err(e) if collided(&e) => store_once(c, Insert::New, rows, grouping).await,
        stored => stored,
    }
}

/// Stores `rows` as `how` says; with findings (and a grouping), in one transaction with the
/// alerts of the events that were new.
async fn store_once(
    c: &mut Object,
    how: Insert,
    rows: &Rows<'_>,
    grouping: Option<Grouping>,
) -> Result<Stored, StoreError> {
    let judged = grouping.filter(|_| rows.findings.iter().any(|f| !f.is_empty()));
    let statement = match how {
        Insert::All => None,
        Insert::New => Some(c.prepare_cached(&STORE_NEW).await?),
    };
    if let (Some(statement), None) = (&statement, judged) {
        // Nothing to record beside the events: the one statement is the transaction.
        let new = store_new(&***c, statement, &rows.events).await?;
        return Ok((new, Vec::new()));
    }
    let tx = c.transaction().await?;
    let new = match &statement {
        None => {
            copy::store_all(&tx, &rows.events).await?;
            (0..rows.events.len()).collect()
        }
        Some(statement) => store_new(&*tx, statement, &rows.events).await?,
    };
    let mut alerts = Vec::new();
    if let Some(g) = judged {
        let judged = new.iter().filter(|&&i| !rows.findings[i].is_empty());
        lock_agents(&tx, judged.map(|&i| rows.events[i].agent_id.as_str())).await?;
        for &i in &new {
            for f in rows.findings[i] {
                alerts.push((i, super::alerts::record(&tx, rows.events[i], f, g).await?));
            }
        }
    }
    tx.commit().await?;
    Ok((new, alerts))
}

impl PgStore {
    /// Stores `rows` on their own (from a connection of their own), creating any missing
    /// day's partition first, and once more if one vanished meanwhile.
    pub(super) async fn store_alone(
        &self,
        rows: &Rows<'_>,
        grouping: Option<Grouping>,
    ) -> Result<Stored, StoreError> {
        self.ensure_partitions(rows.days()).await?;
        let first = store(&mut self.client().await?, rows, grouping).await;
        match first {
            Err(e) if no_partition(&e) => {
                self.days.forget_all();
                self.ensure_partitions(rows.days()).await?;
                store(&mut self.client().await?, rows, grouping).await
            }
            stored => stored,
        }
    }

    async fn select_events(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        all(&self.client().await?.query(sql, args).await?, from_row)
    }
}

impl Events for PgStore {
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
        Ok(self.group_commit(events, Vec::new(), None).await?.0)
    }

    async fn query_events(&self, f: EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        // The page nearest the `after` cursor is the oldest after it; any other, the newest.
        let order = if f.after.is_some() { "ASC" } else { "DESC" };
        let by_agent = f.agent_id.is_some();
        let (mut filter, args) = conditions(f, &POSTGRES);
        if by_agent {
            debug_assert!(filter.starts_with("WHERE agent_id = $1"), "{filter}");
            // The agent's keys (`conditions` puts the agent first) lead the planner to its
            // events when they are few among many; no index on `events` leads with the agent.
            filter.push_str(
                " AND (time_ms, agent_id, seq) IN
                     (SELECT time_ms, agent_id, seq FROM event_keys WHERE agent_id = $1)",
            );
        }
        let limit = format!("${}", args.len());
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM events {filter}
                 ORDER BY time_ms {order}, agent_id {order}, seq {order} LIMIT {limit}) page
             ORDER BY time_ms, agent_id, seq"
        );
        let args: Vec<Box<dyn ToSql + Sync + Send>> = args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync + Send> {
                match a {
                    Arg::Int(i) => Box::new(i),
                    Arg::Text(t) => Box::new(t),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as _).collect();
        self.select_events(&sql, &refs).await
    }

    async fn process_events(
        &self,
        agent_id: String,
        by: ProcessLink,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (column, pid) = by.column();
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM events
                 WHERE agent_id = $1 AND {column} = $2
                 ORDER BY time_ms DESC, seq DESC LIMIT $3) newest
             ORDER BY time_ms, seq"
        );
        let args: [&(dyn ToSql + Sync); 3] = [&agent_id, &i64::from(pid), &big(limit)];
        self.select_events(&sql, &args).await
    }

    async fn event(&self, agent_id: String, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        // The key's time (event_keys' primary key) finds the one partition that holds it.
        let sql = format!(
            "SELECT {COLUMNS} FROM events
             WHERE (time_ms, agent_id, seq) =
                   (SELECT time_ms, agent_id, seq FROM event_keys
                    WHERE agent_id = $1 AND seq = $2)"
        );
        // As ingest stores it.
        let seq = seq as i64;
        let args: [&(dyn ToSql + Sync); 2] = [&agent_id, &seq];
        Ok(self.select_events(&sql, &args).await?.pop())
    }

    async fn event_count(&self, agent_id: String) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM event_keys WHERE agent_id = $1",
                &[&agent_id],
            )
            .await?
            .try_get(0)?;
        Ok(n as u64)
    }

    async fn prune_events(
        &self,
        older_than: Option<i64>,
        keep_newest: Option<u64>,
    ) -> Result<Pruned, StoreError> {
        self.prune(older_than, keep_newest).await
    }
}
