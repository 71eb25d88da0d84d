//! Group commit on the SQLite connection, for every write on a hot path: telemetry batches
//! (`ingest.rs`), presence (`presence.rs`: hellos, heartbeats, streams ended) and the command
//! queue (`commands.rs`). A write joins one queue; a drainer on the blocking pool takes the
//! connection, then the queued writes up to a bound, runs each in a savepoint of its own
//! inside one transaction, commits, and only then answers each writer.
//!
//! With `synchronous = FULL` a commit costs a sync of the log, so writes that arrive while one
//! group is being committed share the next sync instead of each waiting for its own; a write
//! alone costs what it did. At most one drainer waits for the connection at a time, so ten
//! thousand writers cost two blocking threads, not ten thousand. Writes keep their order: the
//! queue is first in, first out, and a group runs in that order (an agent's heartbeat is never
//! stored after its stream's "offline").
//!
//! Fair between agents: one agent's telemetry takes at most `AGENT_SHARE` events of a group,
//! the rest of it waits for the next group, so a quiet agent's batch queued behind a flooding
//! agent's waits for one small group, not for everything the flood has queued.
//!
//! A write that fails rolls back to its savepoint and fails alone; if the commit itself fails,
//! every write of the group gets that error, and nothing of the group is stored.

use super::{Store, StoreError};
use rusqlite::Connection;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most weight one group holds (a telemetry batch weighs its events, other writes 1); a
/// heavier write goes alone.
const GROUP_WEIGHT: usize = 20_000;

/// Most weight of one agent's telemetry in one group (two of an agent's full batches).
const AGENT_SHARE: usize = 2_000;

/// Answers a write's caller once the group's commit is known (its error text, if it failed).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// A queued write: runs in the group's transaction and says how to answer its caller.
struct Write {
    weight: usize,
    /// The agent whose telemetry this is, for its share of a group.
    agent: Option<Arc<str>>,
    run: Box<dyn FnOnce(&Connection) -> Answer + Send>,
}

/// Writes waiting for the connection, oldest first.
#[derive(Default)]
pub(super) struct Queue {
    writes: Mutex<VecDeque<Write>>,
    /// A drainer is waiting for the connection and will take what is queued now.
    drainer_waiting: AtomicBool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Write>> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The oldest writes, up to `GROUP_WEIGHT` (at least one if any are queued) and up to
    /// `AGENT_SHARE` of one agent's telemetry; an agent's writes past its share stay queued,
    /// in order, for the next group.
    fn take_group(&self) -> Vec<Write> {
        let mut q = self.lock();
        let (mut group, mut left) = (Vec::new(), VecDeque::new());
        let mut shares: HashMap<Arc<str>, Option<usize>> = HashMap::new();
        let mut weight = 0;
        while let Some(next) = q.pop_front() {
            if !group.is_empty() && weight + next.weight > GROUP_WEIGHT {
                q.push_front(next);
                break;
            }
            if let Some(agent) = &next.agent {
                // `None`: the agent's share is spent, its later writes wait too.
                let share = shares.entry(agent.clone()).or_insert(Some(0));
                match share {
                    Some(w) if *w == 0 || *w + next.weight <= AGENT_SHARE => *w += next.weight,
                    _ => {
                        *share = None;
                        left.push_back(next);
                        continue;
                    }
                }
            }
            weight += next.weight;
            group.push(next);
        }
        while let Some(w) = left.pop_back() {
            q.push_front(w);
        }
        group
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
        self.grouped_by(None, 1, f).await
    }

    /// [`Self::grouped`] for a write that weighs `weight` (its rows) in a group's bound, of
    /// `agent`'s telemetry if it is.
    pub(super) async fn grouped_by<T, F>(
        &self,
        agent: Option<Arc<str>>,
        weight: usize,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let run = Box::new(move |c: &Connection| {
            let out = in_savepoint(c, f);
            Box::new(move |failed: Option<&str>| {
                let out = match failed {
                    None => out,
                    Some(why) => Err(StoreError::GroupCommit(why.to_string())),
                };
                let _ = done.send(out);
            }) as Answer
        });
        self.writes.lock().push_back(Write { weight, agent, run });
        self.start_drainer();
        result
            .await
            .map_err(|_| StoreError::GroupCommit("the transaction could not start".into()))?
    }

    /// Starts a drainer unless one is already waiting for the connection (it will take
    /// what was just queued too).
    fn start_drainer(&self) {
        if self.writes.drainer_waiting.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.drain());
    }

    /// Takes the connection, then one group of what is queued (writes queued from now on
    /// start the next drainer), and runs it. Whatever did not fit goes to the next drainer,
    /// so other users of the connection get their turn between groups.
    fn drain(&self) {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.writes.drainer_waiting.store(false, Ordering::Release);
        let group = self.writes.take_group();
        if group.is_empty() {
            return;
        }
        run_group(&mut conn, group);
        drop(conn);
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.poke();
        }
        if !self.writes.lock().is_empty() {
            self.start_drainer();
        }
    }
}

/// The connection held by another thread until dropped, so that writes queue (tests).
#[cfg(test)]
pub(super) struct Held(
    Option<std::sync::mpsc::Sender<()>>,
    Option<std::thread::JoinHandle<()>>,
);

#[cfg(test)]
impl Store {
    /// Holds the connection (returns once it is held) until the result is dropped.
    pub(super) fn hold_connection(&self) -> Held {
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let conn = self.conn.clone();
        let thread = std::thread::spawn(move || {
            let _guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            let _ = held_tx.send(());
            let _ = released.recv();
        });
        held.recv().expect("the connection is held");
        Held(Some(release), Some(thread))
    }

    /// Waits (boundedly) until `n` writes are queued; how many are.
    pub(super) async fn until_queued(&self, n: usize) -> usize {
        for _ in 0..10_000 {
            if self.writes.lock().len() >= n {
                break;
            }
            tokio::task::yield_now().await;
        }
        self.writes.lock().len()
    }
}

#[cfg(test)]
impl Drop for Held {
    fn drop(&mut self) {
        drop(self.0.take());
        if let Some(thread) = self.1.take() {
            let _ = thread.join();
        }
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
fn run_group(c: &mut Connection, group: Vec<Write>) {
    let mut answers = Vec::with_capacity(group.len());
    let failed = run_all(c, group, &mut answers).err().map(|e| e.to_string());
    if let Some(e) = &failed {
        tracing::error!(error = %e, writes = answers.len(), "a group of writes failed to commit");
    }
    for answer in answers {
        answer(failed.as_deref());
    }
}

/// Runs every write in one transaction, collecting their answers; the commit's outcome. (If
/// the transaction cannot start, the writes are dropped unrun and their callers told so.)
fn run_all(
    c: &mut Connection,
    group: Vec<Write>,
    answers: &mut Vec<Answer>,
) -> Result<(), rusqlite::Error> {
    let tx = c.transaction()?;
    answers.extend(group.into_iter().map(|w| (w.run)(&tx)));
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

    fn queued(q: &Queue, agent: Option<&str>, weight: usize) {
        let run = Box::new(|_: &Connection| Box::new(|_: Option<&str>| {}) as Answer);
        let agent = agent.map(Arc::from);
        q.lock().push_back(Write { weight, agent, run });
    }

    fn described(group: &[Write]) -> Vec<(Option<&str>, usize)> {
        group
            .iter()
            .map(|w| (w.agent.as_deref(), w.weight))
            .collect()
    }

    #[test]
    fn a_flooding_agent_takes_its_share_of_a_group_and_the_rest_waits_in_order() {
        let q = Queue::default();
        for w in [1000, 999, 998, 997] {
            queued(&q, Some("loud"), w);
        }
        queued(&q, Some("quiet"), 1);
        queued(&q, None, 1);
        let first = q.take_group();
        assert_eq!(
            described(&first),
            [
                (Some("loud"), 1000),
                (Some("loud"), 999),
                (Some("quiet"), 1),
                (None, 1)
            ]
        );
        let second = q.take_group();
        assert_eq!(
            described(&second),
            [(Some("loud"), 998), (Some("loud"), 997)]
        );
        assert!(q.take_group().is_empty());
        // A write heavier than a share still goes, alone of its agent's.
        queued(&q, Some("loud"), 5000);
        queued(&q, Some("loud"), 1);
        assert_eq!(described(&q.take_group()), [(Some("loud"), 5000)]);
        assert_eq!(described(&q.take_group()), [(Some("loud"), 1)]);
    }
}
