//! Events on PostgreSQL: the write path and the queries. A batch goes in with one
//! transaction: its keys into `event_keys` with `ON CONFLICT DO NOTHING RETURNING` (the
//! unique (agent, seq) that the partitioned `events` cannot hold itself), then only the
//! events whose keys were new, in one multi-row insert, then their findings. A concurrent
//! batch with the same keys waits on the key index until this one commits, then skips them:
//! each event is stored, and judged, exactly once.
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
use std::collections::HashSet;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

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

/// Inserts the keys of `events`; returns the indices of the events that were new (the first
/// of any repeated within the batch). Keys go in sorted, so two batches sharing keys take
/// their locks in the same order: one waits for the other, never a deadlock.
async fn new_keys(tx: &Transaction<'_>, events: &[StoredEvent]) -> Result<Vec<usize>, StoreError> {
    let agents: Vec<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq as i64).collect();
    let times: Vec<i64> = events.iter().map(|e| e.time_ms).collect();
    let rows = tx
        .query(
            "INSERT INTO event_keys (agent_id, seq, time_ms)
             SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) ORDER BY 1, 2
             ON CONFLICT DO NOTHING RETURNING agent_id, seq",
            &[&agents, &seqs, &times],
        )
        .await?;
    let mut new = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        .collect::<Result<HashSet<_>, StoreError>>()?;
    Ok((0..events.len())
        .filter(|&i| new.remove(&(events[i].agent_id.clone(), seqs[i])))
        .collect())
}

/// Inserts the events at `new` in one statement.
async fn insert_rows(
    tx: &Transaction<'_>,
    events: &[StoredEvent],
    new: &[usize],
) -> Result<(), StoreError> {
    let rows: Vec<&StoredEvent> = new.iter().map(|&i| &events[i]).collect();
    let keys: Vec<_> = rows.iter().map(|e| process_key(e)).collect();
    let col = |f: fn(&StoredEvent) -> i64| rows.iter().map(|e| f(e)).collect::<Vec<i64>>();
    let text = |f: fn(&StoredEvent) -> &str| rows.iter().map(|e| f(e)).collect::<Vec<&str>>();
    let process =
        |f: fn((u32, u32, u64)) -> i64| keys.iter().map(|k| k.map(f)).collect::<Vec<Option<i64>>>();
    let bodies: Vec<&[u8]> = rows.iter().map(|e| e.body.as_slice()).collect();
    tx.execute(
        "INSERT INTO events (agent_id, seq, time_ms, kind, body, received_at, summary,
                             pid, ppid, start_ticks)
         SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BYTEA[],
                              $6::BIGINT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[])",
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
    Ok(())
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
        let tx = c.transaction().await?;
        let new = new_keys(&tx, events).await?;
        insert_rows(&tx, events, &new).await?;
        let mut alerts = Vec::new();
        if let Some(g) = grouping {
            let judged = new
                .iter()
                .filter(|&&i| findings.get(i).is_some_and(|f| !f.is_empty()));
            lock_agents(&tx, judged.map(|&i| events[i].agent_id.as_str())).await?;
            for &i in &new {
                for f in findings.get(i).into_iter().flatten() {
                    alerts.push(super::alerts::record(&tx, &events[i], f, g).await?);
                }
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
