//! The telemetry write path, with group commit (`group.rs`): each batch, from any agent's
//! stream, joins the queue and is stored in one transaction with whatever else is queued.
//!
//! Within a transaction each event is inserted once per (agent, seq), so a batch sees the
//! events of batches before it in the same group: dedup and the list of new events are
//! exactly as if each batch had its own transaction.

use super::alerts::{AlertChange, Finding};
use super::group;
use super::{Store, StoreError, StoredEvent};
use crate::policy::grouping::Grouping;
use rusqlite::{Transaction, params};
use tokio::sync::oneshot;

/// Most events one group transaction stores (whole batches; a larger batch goes alone).
const GROUP_EVENTS: usize = 20_000;

/// The events of a batch that were new, and the alerts they raised or counted again.
pub type Ingested = (Vec<StoredEvent>, Vec<AlertChange>);

/// One batch waiting to be stored.
pub(super) struct Job {
    events: Vec<StoredEvent>,
    findings: Vec<Vec<Finding>>,
    grouping: Option<Grouping>,
    done: oneshot::Sender<Result<Ingested, StoreError>>,
}

impl Store {
    /// `Events::ingest`: the batch joins the queue, and its events and findings are stored
    /// in one transaction with whatever else is queued. Returns once that transaction is
    /// committed.
    pub(super) async fn group_commit(
        &self,
        events: Vec<StoredEvent>,
        findings: Vec<Vec<Finding>>,
        grouping: Option<Grouping>,
    ) -> Result<Ingested, StoreError> {
        let (done, result) = oneshot::channel();
        let job = Job {
            events,
            findings,
            grouping,
            done,
        };
        self.join_group(&self.queue, job);
        result
            .await
            .map_err(|_| StoreError::Task("the ingest was dropped".into()))?
    }
}

/// Which of a batch's events were new (by index), and the alerts they raised.
type Stored = (Vec<usize>, Vec<AlertChange>);

impl group::Job for Job {
    type Stored = Stored;
    const GROUP_WEIGHT: usize = GROUP_EVENTS;

    fn weight(&self) -> usize {
        self.events.len()
    }

    fn store(&self, tx: &Transaction<'_>) -> Result<Stored, StoreError> {
        store_batch(tx, self)
    }

    /// Answers the caller, handing over the new events themselves.
    fn answer(self, result: Result<Stored, StoreError>) {
        let result = result.map(|(new, alerts)| {
            let mut events: Vec<Option<StoredEvent>> = self.events.into_iter().map(Some).collect();
            let added = new.into_iter().filter_map(|i| events[i].take()).collect();
            (added, alerts)
        });
        let _ = self.done.send(result);
    }
}

/// Inserts one batch's new events and records their findings, in `tx`.
fn store_batch(tx: &Transaction<'_>, job: &Job) -> Result<Stored, StoreError> {
    let mut added = Vec::new();
    let mut alerts = Vec::new();
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (agent_id, seq, time_ms, kind, body, received_at, summary,
                                       pid, ppid, start_ticks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (i, (e, found)) in job.events.iter().zip(&job.findings).enumerate() {
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
        if let Some(grouping) = job.grouping {
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
        let (ok_tx, ok) = oneshot::channel();
        let (bad_tx, bad) = oneshot::channel();
        let job = |events, done| Job {
            events,
            findings: vec![Vec::new(); 2],
            grouping: None,
            done,
        };
        s.queue.push(job(vec![ev("a", 1), ev("a", 2)], ok_tx));
        // This batch fails: a trigger refuses its empty kind.
        let mut broken = ev("a", 3);
        broken.kind = String::new();
        s.queue.push(job(vec![broken, ev("a", 4)], bad_tx));
        let queue = s.queue.clone();
        s.with(move |c| {
            c.execute_batch(
                "CREATE TRIGGER refuse_empty_kind BEFORE INSERT ON events WHEN NEW.kind = ''
                 BEGIN SELECT RAISE(ABORT, 'empty kind'); END;",
            )?;
            group::store_group(c, queue.take_group());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(seqs(&ok.await.unwrap().unwrap().0), vec![1, 2]);
        assert!(bad.await.unwrap().is_err());
        assert_eq!(
            s.event_count("a".into()).await.unwrap(),
            2,
            "seq 4 rolled back"
        );
    }
}
