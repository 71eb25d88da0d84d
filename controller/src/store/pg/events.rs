//! Events on PostgreSQL: the write path and the queries. A batch goes in with one
//! statement: its keys into `event_keys` with `ON CONFLICT DO NOTHING RETURNING` (the
//! unique (agent, seq) that the partitioned `events` cannot hold itself), and only the
//! events whose keys were new into `events`; with findings, in one transaction with their
//! alerts. A concurrent batch with the same keys waits on the key index until this one
//! commits, then skips them: each event is stored, and judged, exactly once. The statement is
//! prepared once per pooled connection, so a batch without findings is one round trip.
//!
//! Group commit: each batch has its own transaction on its own pooled connection, and the
//! server itself makes concurrent commits share one WAL flush (PostgreSQL's group commit),
//! which is what the SQLite backend's queue (`store/ingest.rs`) does by hand.

use super::{PgStore, all, big, partitions};
use crate::policy::grouping::Grouping;
use crate::store::events::{Arg, Dialect, conditions, from_row, process_key};
use crate::store::{
    EventFilter, Events, Finding, Ingested, ProcessLink, Pruned, StoreError, StoredEvent,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement, Transaction};

const POSTGRES: Dialect = Dialect {
    placeholder: |n| format!("${n}"),
    like: "ILIKE",
};

const COLUMNS: &str = "agent_id, seq, time_ms, kind, summary, body, received_at";

/// Whether an insert failed because no partition holds a row's day (one dropped by another
/// controller after this one saw it).
fn no_partition(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else {
        return false;
    };
    e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
        && e.as_db_error()
            .is_some_and(|d| d.message().contains("no partition"))
}

/// A batch in one statement (one round trip, prepared once per connection): the keys into
/// `event_keys` sorted, so two batches sharing keys take their locks in the same order (one
/// waits for the other, never a deadlock); then the events whose keys were new (the first of
/// any repeated within the batch) into `events`. Returns their 1-based places in the batch.
const STORE_NEW: &str = "
WITH batch AS (
    SELECT b.agent_id COLLATE \"C\" AS agent_id, b.seq, b.time_ms, b.kind, b.body,
           b.received_at, b.summary, b.pid, b.ppid, b.start_ticks, b.place
    FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BYTEA[],
                $6::BIGINT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[])
        WITH ORDINALITY AS b(agent_id, seq, time_ms, kind, body, received_at, summary,
                             pid, ppid, start_ticks, place)
), new_keys AS (
    INSERT INTO event_keys (agent_id, seq, time_ms)
    SELECT agent_id, seq, time_ms FROM batch ORDER BY agent_id, seq
    ON CONFLICT DO NOTHING RETURNING agent_id, seq
), first AS (
    SELECT DISTINCT ON (b.agent_id, b.seq) b.*
    FROM batch b JOIN new_keys k ON k.agent_id = b.agent_id AND k.seq = b.seq
    ORDER BY b.agent_id, b.seq, b.place
), stored AS (
    INSERT INTO events (agent_id, seq, time_ms, kind, body, received_at, summary,
                        pid, ppid, start_ticks)
    SELECT agent_id, seq, time_ms, kind, body, received_at, summary, pid, ppid, start_ticks
    FROM first
)
SELECT place FROM first ORDER BY place";

/// Stores the new events of `events` (see [`STORE_NEW`]); returns their indices, in order.
async fn store_new(
    c: &impl GenericClient,
    statement: &Statement,
    events: &[StoredEvent],
) -> Result<Vec<usize>, StoreError> {
    let keys: Vec<_> = events.iter().map(process_key).collect();
    let col = |f: fn(&StoredEvent) -> i64| events.iter().map(f).collect::<Vec<i64>>();
    let text = |f: fn(&StoredEvent) -> &str| events.iter().map(f).collect::<Vec<&str>>();
    let process =
        |f: fn((u32, u32, u64)) -> i64| keys.iter().map(|k| k.map(f)).collect::<Vec<Option<i64>>>();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let rows = c
        .query(
            statement,
            &[
                &text(|e| &e.agent_id),
                &col(|e| e.seq as i64),
                &col(|e| e.time_ms),
                &text(|e| &e.kind),
                &bodies,
                &col(|e| e.received_at_ms),
                &text(|e| &e.summary),
                &process(|k| i64::from(k.0)),
                &process(|k| i64::from(k.1)),
                &process(|k| k.2 as i64),
            ],
        )
        .await?;
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

impl PgStore {
    /// `Events::ingest`: stores the batch, creating any missing day's partition first (and
    /// once more if one vanished meanwhile).
    async fn store_batch(
        &self,
        events: &[StoredEvent],
        findings: &[Vec<Finding>],
        grouping: Option<Grouping>,
    ) -> Result<Ingested, StoreError> {
        let days = events
            .iter()
            .map(|e| partitions::day_of(e.time_ms))
            .collect();
        self.ensure_partitions(days).await?;
        match self.store_once(events, findings, grouping).await {
            Err(e) if no_partition(&e) => {
                self.days.forget_all();
                let days = events.iter().map(|e| partitions::day_of(e.time_ms));
                self.ensure_partitions(days.collect()).await?;
                self.store_once(events, findings, grouping).await
            }
            stored => stored,
        }
    }

    async fn store_once(
        &self,
        events: &[StoredEvent],
        findings: &[Vec<Finding>],
        grouping: Option<Grouping>,
    ) -> Result<Ingested, StoreError> {
        let mut c = self.client().await?;
        let statement = c.prepare_cached(STORE_NEW).await?;
        let judged = grouping.filter(|_| findings.iter().any(|f| !f.is_empty()));
        let Some(g) = judged else {
            // Nothing to record beside the events: the one statement is the transaction.
            let new = store_new(&**c, &statement, events).await?;
            return Ok((new.iter().map(|&i| events[i].clone()).collect(), Vec::new()));
        };
        let tx = c.transaction().await?;
        let new = store_new(&*tx, &statement, events).await?;
        let judged = new
            .iter()
            .filter(|&&i| findings.get(i).is_some_and(|f| !f.is_empty()));
        lock_agents(&tx, judged.map(|&i| events[i].agent_id.as_str())).await?;
        let mut alerts = Vec::new();
        for &i in &new {
            for f in findings.get(i).into_iter().flatten() {
                alerts.push(super::alerts::record(&tx, &events[i], f, g).await?);
            }
        }
        tx.commit().await?;
        let added = new.iter().map(|&i| events[i].clone()).collect();
        Ok((added, alerts))
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
        self.store_batch(&events, &findings, grouping).await
    }

    async fn insert_events(
        &self,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.store_batch(&events, &[], None).await?.0)
    }

    async fn query_events(&self, f: EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        // The page nearest the `after` cursor is the oldest after it; any other, the newest.
        let order = if f.after.is_some() { "ASC" } else { "DESC" };
        let (filter, args) = conditions(f, &POSTGRES);
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
