//! Group commit on the SQLite connection. A write joins a queue; a drainer on the blocking
//! pool takes the connection, then everything queued, up to a bound, stores it in one
//! transaction, and answers each writer only after that commit. With `synchronous = FULL` a
//! commit costs a sync of the log, so writes that arrive while one is being committed share
//! the next sync instead of each waiting for its own. At most one drainer waits for the
//! connection at a time, so ten thousand writers cost two blocking threads, not ten thousand.
//! Writes keep their order: the queue is first in, first out, and a group is stored in that
//! order.
//!
//! Telemetry batches (`ingest.rs`) and presence (`presence.rs`: hellos, heartbeats, going
//! offline) each have a queue of their own.

use super::{Store, StoreError};
use rusqlite::{Connection, Transaction};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One write waiting for the connection.
pub(super) trait Job: Send + 'static {
    /// What storing it returns to its writer.
    type Stored;
    /// Most weight (see [`Job::weight`]) one group holds; a heavier job goes alone.
    const GROUP_WEIGHT: usize;

    fn weight(&self) -> usize;
    /// Stores this job in `tx`, which holds the jobs before it in the same group.
    fn store(&self, tx: &Transaction<'_>) -> Result<Self::Stored, StoreError>;
    /// Hands the outcome to the writer.
    fn answer(self, result: Result<Self::Stored, StoreError>);
}

/// Jobs waiting for the connection, oldest first.
pub(super) struct Queue<J> {
    jobs: Mutex<VecDeque<J>>,
    /// A drainer is waiting for the connection and will take what is queued now.
    drainer_waiting: AtomicBool,
}

impl<J> Default for Queue<J> {
    fn default() -> Self {
        Self {
            jobs: Mutex::new(VecDeque::new()),
            drainer_waiting: AtomicBool::new(false),
        }
    }
}

impl<J: Job> Queue<J> {
    pub(super) fn push(&self, job: J) {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
    }

    fn has_jobs(&self) -> bool {
        !self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The oldest jobs, up to `GROUP_WEIGHT` (at least one job if any are queued).
    pub(super) fn take_group(&self) -> Vec<J> {
        let mut q = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut group = Vec::new();
        let mut weight = 0;
        while let Some(next) = q.front() {
            if !group.is_empty() && weight + next.weight() > J::GROUP_WEIGHT {
                break;
            }
            weight += next.weight();
            group.extend(q.pop_front());
        }
        group
    }
}

impl Store {
    /// Queues `job` for the next group, starting a drainer unless one is already waiting for
    /// the connection (it will take this job too). The job's writer waits for its answer.
    pub(super) fn join_group<J: Job>(&self, queue: &Arc<Queue<J>>, job: J) {
        queue.push(job);
        self.start_drainer(queue);
    }

    fn start_drainer<J: Job>(&self, queue: &Arc<Queue<J>>) {
        if queue.drainer_waiting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (store, queue) = (self.clone(), queue.clone());
        tokio::task::spawn_blocking(move || store.drain(&queue));
    }

    /// Takes the connection, then one group of what is queued (writes queued from now on
    /// start the next drainer), and stores it. Whatever did not fit goes to the next drainer,
    /// so other users of the connection get their turn between groups.
    fn drain<J: Job>(&self, queue: &Arc<Queue<J>>) {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        queue.drainer_waiting.store(false, Ordering::Release);
        let group = queue.take_group();
        if group.is_empty() {
            return;
        }
        store_group(&mut conn, group);
        drop(conn);
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.poke();
        }
        if queue.has_jobs() {
            self.start_drainer(queue);
        }
    }
}

/// Stores `group` in one transaction and answers each job. If that fails, each job is tried
/// in a transaction of its own, so one bad job fails only itself.
pub(super) fn store_group<J: Job>(c: &mut Connection, group: Vec<J>) {
    if group.len() < 2 {
        group.into_iter().for_each(|job| store_alone(c, job));
        return;
    }
    let stored = (|| {
        let tx = c.transaction()?;
        let results = group
            .iter()
            .map(|job| job.store(&tx))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok::<_, StoreError>(results)
    })();
    match stored {
        Ok(results) => {
            for (job, result) in group.into_iter().zip(results) {
                job.answer(Ok(result));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = group.len(), "group commit failed; storing its writes one by one");
            group.into_iter().for_each(|job| store_alone(c, job));
        }
    }
}

fn store_alone<J: Job>(c: &mut Connection, job: J) {
    let result = (|| {
        let tx = c.transaction()?;
        let result = job.store(&tx)?;
        tx.commit()?;
        Ok(result)
    })();
    job.answer(result);
}
