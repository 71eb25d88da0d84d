//! Group commit for small writes (the command queue's). Each write joins a queue; whichever
//! blocking task holds the connection next runs every queued write, each in a savepoint of
//! its own, inside one transaction, and answers each caller only after that commit. With
//! `synchronous = FULL` a commit costs a sync of the log, so the writes of a fan-out (a
//! thousand commands delivered, a thousand results arriving at once) share syncs instead of
//! each waiting for its own; a write alone costs what it did.
//!
//! A write that fails rolls back to its savepoint and fails alone; if the commit itself
//! fails, every write of the group gets that error, and nothing of the group is stored.

use super::{Store, StoreError};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Most writes one group transaction runs.
const GROUP_WRITES: usize = 1024;

/// Answers a write's caller once the group's commit is known (its error text, if it failed).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// A queued write: runs in the group's transaction and says how to answer its caller.
type Job = Box<dyn FnOnce(&Connection) -> Answer + Send>;

/// Writes waiting for the connection.
#[derive(Default)]
pub(super) struct Writes(Mutex<VecDeque<Job>>);

impl Writes {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_group(&self) -> Vec<Job> {
        let mut q = self.lock();
        let n = q.len().min(GROUP_WRITES);
        q.drain(..n).collect()
    }
}

impl Store {
    /// Runs `f` in a transaction shared with whatever other writes are queued; returns its
    /// result once that transaction is committed.
    pub(super) async fn grouped<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        self.writes
            .lock()
            .push_back(Box::new(move |c: &Connection| {
                let out = in_savepoint(c, f);
                Box::new(move |failed: Option<&str>| {
                    let out = match failed {
                        None => out,
                        Some(why) => Err(StoreError::GroupCommit(why.to_string())),
                    };
                    let _ = done.send(out);
                }) as Answer
            }));
        // This task runs whatever is queued when it gets the connection: this write, unless
        // an earlier task's group took it already (then that task answers).
        let writes = self.writes.clone();
        self.with(move |c| {
            let group = writes.take_group();
            if !group.is_empty() {
                run_group(c, group);
            }
            Ok(())
        })
        .await?;
        result
            .await
            .map_err(|_| StoreError::GroupCommit("the transaction could not start".into()))?
    }
}

/// Runs `f` inside a savepoint: kept if it succeeds, rolled back if it fails.
fn in_savepoint<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    c.execute_batch("SAVEPOINT grouped_write")?;
    let out = f(c);
    let end = match out {
        Ok(_) => "RELEASE grouped_write",
        Err(_) => "ROLLBACK TO grouped_write; RELEASE grouped_write",
    };
    c.execute_batch(end)?;
    out
}

/// Runs `group` in one transaction, then answers each write with the commit's outcome.
fn run_group(c: &mut Connection, group: Vec<Job>) {
    let mut answers = Vec::with_capacity(group.len());
    let failed = run_all(c, group, &mut answers).err().map(|e| e.to_string());
    if let Some(e) = &failed {
        tracing::error!(error = %e, writes = answers.len(), "a group of command-queue writes failed to commit");
    }
    for answer in answers {
        answer(failed.as_deref());
    }
}

/// Runs every job in one transaction, collecting their answers; the commit's outcome. (If
/// the transaction cannot start, the jobs are dropped unrun and their callers told so.)
fn run_all(
    c: &mut Connection,
    group: Vec<Job>,
    answers: &mut Vec<Answer>,
) -> Result<(), rusqlite::Error> {
    let tx = c.transaction()?;
    answers.extend(group.into_iter().map(|job| job(&tx)));
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_each_get_their_own_outcome_and_a_failure_stays_alone() {
        let s = Store::memory().unwrap();
        let setup = "CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t (k) VALUES ('taken')";
        s.with(move |c| Ok(c.execute_batch(setup)?)).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let s = s.clone();
            tasks.spawn(async move {
                // Every tenth write repeats a stored key and must fail, alone.
                let key = if i % 10 == 9 {
                    "taken".to_string()
                } else {
                    i.to_string()
                };
                let out = s
                    .grouped(move |c| Ok(c.execute("INSERT INTO t (k) VALUES (?1)", [key])?))
                    .await;
                (i, out.is_ok())
            });
        }
        let mut ok = 0;
        while let Some(done) = tasks.join_next().await {
            let (i, stored) = done.unwrap();
            assert_eq!(stored, i % 10 != 9, "write {i}");
            ok += usize::from(stored);
        }
        let rows: usize = s
            .with(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!((ok, rows), (180, 181));
    }
}
