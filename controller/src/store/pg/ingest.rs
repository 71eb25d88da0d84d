//! Group commit on PostgreSQL: batches that arrive while this controller's writers are busy
//! are stored together. Each batch (from any agent's stream) joins a queue. At most
//! [`WRITERS`] drainers per controller take everything queued, up to a bound, store it as one
//! batch (`events.rs`: one transaction, one commit), answer each batch's caller, and go on
//! while anything is queued; a batch that finds fewer drainers at work starts one. So under
//! load a commit carries many batches, from few connections (on two cores, 32 connections
//! each inserting into the same indexes cost the server more than they gain), and without
//! load a batch goes alone at once. `synchronous_commit` stays on: a caller is answered only
//! after the commit that made its events durable.
//!
//! Exactly once holds as for one batch: within a group a key repeated by two batches is
//! stored once, for the first of them, and the new events and alerts are given back to the
//! batch they came from. A group that fails is stored again batch by batch, so one bad batch
//! fails only itself; a group that gets no connection fails each of its batches with that
//! error.

use super::PgStore;
use super::events::{Rows, Stored, store};
use crate::policy::grouping::Grouping;
use crate::store::{Finding, Ingested, StoreError, StoredEvent};
use deadpool_postgres::Object;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Most events one group stores (whole batches; a larger batch goes alone).
const GROUP_EVENTS: usize = 10_000;

/// Most groups one controller stores at once (drainers, each on its own connection).
const WRITERS: usize = 2;

/// One batch waiting to be stored.
struct Job {
    events: Vec<StoredEvent>,
    findings: Vec<Vec<Finding>>,
    grouping: Option<Grouping>,
    done: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// Batches waiting to be stored, and how many drainers are at work.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    drainers: usize,
}

impl Queue {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`; whether its caller should start a drainer (fewer than [`WRITERS`] are at
    /// work, and now one more is counted).
    fn push(&self, job: Job) -> bool {
        let mut state = self.state();
        state.jobs.push_back(job);
        let start = state.drainers < WRITERS;
        state.drainers += usize::from(start);
        start
    }

    /// The oldest jobs with the first one's grouping, up to `GROUP_EVENTS` events (at least
    /// one job); or, with nothing queued, none, and the calling drainer stops.
    fn take_group(&self) -> Option<Vec<Job>> {
        let mut state = self.state();
        let mut group: Vec<Job> = Vec::new();
        let mut events = 0;
        while let Some(next) = state.jobs.front() {
            let fits = events + next.events.len() <= GROUP_EVENTS;
            if let Some(first) = group.first()
                && (!fits || next.grouping != first.grouping)
            {
                break;
            }
            events += next.events.len();
            group.extend(state.jobs.pop_front());
        }
        if group.is_empty() {
            state.drainers -= 1;
            return None;
        }
        Some(group)
    }
}

impl PgStore {
    /// `Events::ingest`: the batch joins the queue and is stored with whatever else is
    /// queued when a writer takes it; returns once that is committed.
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
        let job = Job {
            events,
            findings,
            grouping,
            done,
        };
        if self.queue.push(job) {
            // A task of its own, so the group's callers are answered even if this one goes
            // away.
            let store = self.clone();
            tokio::spawn(async move { store.drain().await });
        }
        result
            .await
            .map_err(|_| StoreError::Task("the ingest was dropped".into()))?
    }

    /// Stores queued groups until none is left.
    async fn drain(&self) {
        while let Some(group) = self.queue.take_group() {
            match self.client().await {
                Ok(c) => self.store_group(c, group).await,
                Err(e) => {
                    for job in group {
                        job.answer(Err(again(&e)));
                    }
                }
            }
        }
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

/// The same failure to get a connection, for each batch of a group.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::PoolBusy { target, waited_ms } => StoreError::PoolBusy {
            target: target.clone(),
            waited_ms: *waited_ms,
        },
        StoreError::Unreachable { target, reason } => StoreError::Unreachable {
            target: target.clone(),
            reason: reason.clone(),
        },
        e => StoreError::GroupCommit(e.to_string()),
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
