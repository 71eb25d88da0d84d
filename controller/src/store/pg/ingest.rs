//! Group commit on PostgreSQL: batches that arrive while this controller's connections are
//! busy are stored together. Each batch (from any agent's stream) joins a queue; whichever
//! caller gets a pooled connection next takes everything queued, up to a bound, and stores it
//! as one batch (`events.rs`: one statement, one commit), then answers each batch's caller.
//! So under load a statement and its commit carry many batches, and without load a batch
//! goes alone at once, as before. `synchronous_commit` stays on: a caller is answered only
//! after the commit that made its events durable.
//!
//! Exactly once holds as for one batch: within a group a key repeated by two batches is
//! stored once, for the first of them, and the new events and alerts are given back to the
//! batch they came from. A group that fails is stored again batch by batch, so one bad batch
//! fails only itself.

use super::PgStore;
use super::events::{Rows, Stored, store};
use crate::policy::grouping::Grouping;
use crate::store::{Finding, Ingested, StoreError, StoredEvent};
use deadpool_postgres::Object;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Most events one group stores (whole batches; a larger batch goes alone).
const GROUP_EVENTS: usize = 5_000;

/// One batch waiting to be stored.
struct Job {
    id: u64,
    events: Vec<StoredEvent>,
    findings: Vec<Vec<Finding>>,
    grouping: Option<Grouping>,
    done: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// Batches waiting for a connection.
#[derive(Default)]
pub(super) struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    next_id: AtomicU64,
}

impl Queue {
    fn jobs(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The oldest jobs with the first one's grouping, up to `GROUP_EVENTS` events (at least
    /// one job if any are queued).
    fn take_group(&self) -> Vec<Job> {
        let mut q = self.jobs();
        let mut group: Vec<Job> = Vec::new();
        let mut events = 0;
        while let Some(next) = q.front() {
            let fits = events + next.events.len() <= GROUP_EVENTS;
            if let Some(first) = group.first()
                && (!fits || next.grouping != first.grouping)
            {
                break;
            }
            events += next.events.len();
            group.extend(q.pop_front());
        }
        group
    }

    /// Takes job `id` back if no one has taken it yet.
    fn withdraw(&self, id: u64) -> bool {
        let mut q = self.jobs();
        let before = q.len();
        q.retain(|j| j.id != id);
        q.len() < before
    }
}

impl PgStore {
    /// `Events::ingest`: the batch joins the queue and is stored with whatever else is
    /// queued when a connection is free; returns once that is committed.
    pub(super) async fn group_commit(
        &self,
        events: Vec<StoredEvent>,
        findings: Vec<Vec<Finding>>,
        grouping: Option<Grouping>,
    ) -> Result<Ingested, StoreError> {
        // Each batch's days exist before it is queued: the one storing a group holds a
        // connection and must not wait for another.
        self.ensure_partitions(Rows::of(&events, &findings).days())
            .await?;
        let (done, result) = oneshot::channel();
        let id = self.queue.next_id.fetch_add(1, Ordering::Relaxed);
        self.queue.jobs().push_back(Job {
            id,
            events,
            findings,
            grouping,
            done,
        });
        match self.client().await {
            Ok(c) => {
                let group = self.queue.take_group();
                if !group.is_empty() {
                    // A task of its own, so the group's other callers are answered even if
                    // this one goes away.
                    let store = self.clone();
                    tokio::spawn(async move { store.store_group(c, group).await });
                }
            }
            Err(e) if self.queue.withdraw(id) => return Err(e),
            // Another caller took this batch and will answer.
            Err(_) => {}
        }
        result
            .await
            .map_err(|_| StoreError::Task("the ingest was dropped".into()))?
    }

    /// Stores `group` as one batch on `c`, or, if that fails, each batch on its own.
    async fn store_group(&self, mut c: Object, group: Vec<Job>) {
        let mut rows = Rows::of(&[], &[]);
        for job in &group {
            rows.push(&job.events, &job.findings);
        }
        let grouping = group.first().and_then(|j| j.grouping);
        let stored = store(&mut c, &rows, grouping).await;
        drop(rows);
        match stored {
            Ok(stored) => answer_each(group, stored),
            Err(e) if group.len() > 1 || super::events::no_partition(&e) => {
                drop(c);
                tracing::warn!(error = %e, batches = group.len(), "group commit failed; storing its batches one by one");
                for job in group {
                    let rows = Rows::of(&job.events, &job.findings);
                    let stored = self.store_alone(&rows, job.grouping).await;
                    job.answer(stored);
                }
            }
            Err(e) => {
                if let Some(job) = group.into_iter().next() {
                    job.answer(Err(e));
                }
            }
        }
    }
}

/// Answers each job of a group with its share of what the group stored.
fn answer_each(group: Vec<Job>, (new, alerts): Stored) {
    let (mut new, mut alerts) = (new.into_iter().peekable(), alerts.into_iter().peekable());
    let mut start = 0;
    for job in group {
        let end = start + job.events.len();
        let mine = std::iter::from_fn(|| new.next_if(|&i| i < end)).map(|i| i - start);
        let mine_new = mine.collect();
        let raised = std::iter::from_fn(|| alerts.next_if(|(i, _)| *i < end));
        let mine_alerts = raised.map(|(i, a)| (i - start, a)).collect();
        job.answer(Ok((mine_new, mine_alerts)));
        start = end;
    }
}

impl Job {
    /// Answers the caller, handing over the new events themselves.
    fn answer(self, result: Result<Stored, StoreError>) {
        let result = result.map(|(new, alerts)| {
            let mut events: Vec<Option<StoredEvent>> = self.events.into_iter().map(Some).collect();
            let added = new.into_iter().filter_map(|i| events[i].take()).collect();
            (added, alerts.into_iter().map(|(_, a)| a).collect())
        });
        let _ = self.done.send(result);
    }
}
