//! The telemetry write path, with group commit (`group.rs`): each batch, from any agent's
//! stream, joins the queue and is stored in one transaction with whatever else is queued,
//! in a savepoint of its own (a batch that fails fails alone).
//!
//! Within a transaction each event is inserted once per (agent, seq), so a batch sees the
//! events of batches before it in the same group: dedup and the list of new events are
//! exactly as if each batch had its own transaction.

use super::alerts::{AlertChange, Finding};
use super::{Store, StoreError, StoredEvent};
use crate::policy::grouping::Grouping;
use rusqlite::{Connection, params};
use std::sync::Arc;

/// The events of a batch that were new, and the alerts they raised or counted again.
pub type Ingested = (Vec<StoredEvent>, Vec<AlertChange>);

/// Which of a batch's events were new (by index), and the alerts they raised.
type Stored = (Vec<usize>, Vec<AlertChange>);

impl Store {
    /// `Events::ingest`: the batch's events and findings are stored in one transaction with
    /// whatever else is queued (`group.rs`). Returns once that transaction is committed.
    pub(super) async fn group_commit(
        &self,
        events: Vec<StoredEvent>,
        findings: Vec<Vec<Finding>>,
        grouping: Option<Grouping>,
    ) -> Result<Ingested, StoreError> {
        let weight = events.len();
        let agent = events.first().map(|e| Arc::from(e.agent_id.as_str()));
        let (new, alerts, events) = self
            .grouped_by(agent, weight, move |c| {
                let (new, alerts) = store_batch(c, &events, &findings, grouping)?;
                Ok((new, alerts, events))
            })
            .await?;
        // Hand over the new events themselves.
        let mut events: Vec<Option<StoredEvent>> = events.into_iter().map(Some).collect();
        let added = new.into_iter().filter_map(|i| events[i].take()).collect();
        Ok((added, alerts))
    }
}

/// Inserts one batch's new events and records their findings, in `tx`.
fn store_batch(
    tx: &Connection,
    events: &[StoredEvent],
    findings: &[Vec<Finding>],
    grouping: Option<Grouping>,
) -> Result<Stored, StoreError> {
    let mut added = Vec::new();
    let mut alerts = Vec::new();
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (agent_id, seq, time_ms, kind, body, received_at, summary,
                                       pid, ppid, start_ticks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (i, (e, found)) in events.iter().zip(findings).enumerate() {
        let p = super::events::process_key(e);
        let n = stmt.execute(params![
            e.agent_id,
            e.seq as i64,
            e.time_ms,
            e.kind,
            e.body,
            e.received_at_ms,
            e.summary,
            p.map(|p| p.0),
            p.map(|p| p.1),
            p.map(|p| p.2 as i64),
        ])?;
        if n == 0 {
            continue;
        }
        if let Some(grouping) = grouping {
            for f in found {
                alerts.push(super::alerts::record(
                    tx,
                    &e.agent_id,
                    e.seq,
                    &e.summary,
                    e.received_at_ms,
                    f,
                    grouping,
                )?);
            }
        }
        added.push(i);
    }
    Ok((added, alerts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Events;

    fn ev(agent: &str, seq: u64) -> StoredEvent {
        StoredEvent {
            agent_id: agent.into(),
            seq,
            time_ms: 1000 + seq as i64,
            kind: "notice".into(),
            summary: format!("event {seq}"),
            body: vec![1],
            received_at_ms: 5000,
        }
    }

    fn seqs(added: &[StoredEvent]) -> Vec<u64> {
        added.iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn a_failing_batch_in_a_group_fails_alone() {
        let s = Store::memory().unwrap();
        s.with(|c| {
            // A batch with an empty kind fails: a trigger refuses it.
            Ok(c.execute_batch(
                "CREATE TRIGGER refuse_empty_kind BEFORE INSERT ON events WHEN NEW.kind = ''
                 BEGIN SELECT RAISE(ABORT, 'empty kind'); END;",
            )?)
        })
        .await
        .unwrap();
        let mut broken = ev("a", 3);
        broken.kind = String::new();
        // Both batches queue while the connection is busy, so they go in one group.
        let busy = s.hold_connection();
        let ingest = |events: Vec<StoredEvent>| {
            let s = s.clone();
            let none = vec![Vec::new(); events.len()];
            tokio::spawn(async move { s.group_commit(events, none, None).await })
        };
        let ok = ingest(vec![ev("a", 1), ev("a", 2)]);
        let bad = ingest(vec![broken, ev("a", 4)]);
        assert_eq!(s.until_queued(2).await, 2, "both batches queued");
        drop(busy);
        assert_eq!(seqs(&ok.await.unwrap().unwrap().0), vec![1, 2]);
        assert!(bad.await.unwrap().is_err());
        assert_eq!(
            s.event_count("a".into()).await.unwrap(),
            2,
            "seq 4 rolled back"
        );
    }
}
