//! The agent's telemetry pipeline: sensors emit events into a bounded queue; one writer task
//! appends them to the spool in batches (one fsync per batch) and wakes the shipper. If the
//! queue is ever full, the events that did not fit are counted and reported as lost, never
//! dropped silently. A batch the spool cannot take (a full disk) is kept and tried again,
//! waiting longer each time; meanwhile the queue fills and its overflow is counted as above.

use crate::edge::Edge;
use crate::spool::{Spool, SpoolConfig, SpoolError};
use cordon_proto::time::now_ms;
use cordon_proto::{AgentNotice, EdgeAction, Event, event};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{Notify, mpsc};

/// Events waiting for the spool writer.
const QUEUE: usize = 65_536;
/// Most events per spool append (and fsync).
const BATCH: usize = 4096;
/// Appends (each one fsync, one batch on the wire, one acknowledgement) start at least this
/// far apart: under a stream of events the writer gathers them for up to this long.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// What the first event after a quiet spell waits, for the rest of its burst.
const GATHER_MIN: std::time::Duration = std::time::Duration::from_millis(2);

pub struct Telemetry {
    pub spool: Arc<Mutex<Spool>>,
    /// Signalled after every append.
    pub written: Arc<Notify>,
    emitter: Emitter,
    /// Appends that failed (and were retried) since start.
    append_failures: AtomicU64,
}

/// A cheap handle sensors use to emit events.
#[derive(Clone)]
pub struct Emitter {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
    dropped_total: Arc<AtomicU64>,
    /// The edge policies, set once at start: every event passes them before it is queued.
    edge: Arc<OnceLock<Arc<Edge>>>,
}

impl Emitter {
    fn new(tx: mpsc::Sender<Event>) -> Self {
        Self {
            tx,
            dropped: Arc::default(),
            dropped_total: Arc::default(),
            edge: Arc::default(),
        }
    }

    /// An emitter whose events go to the returned receiver (for sensor tests).
    #[cfg(test)]
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self::new(tx), rx)
    }

    /// Queues an event for the spool, after the edge policies have acted on it (on the
    /// sensor's own thread, so a kill is not held up behind the queue).
    pub fn emit(&self, body: event::Body) {
        let edge = self.judge(&body);
        self.emit_judged(body, edge);
    }

    /// Runs the edge policies over an event now; what they did goes with it when it is
    /// queued by [`Self::emit_judged`] (a sensor that holds events back to keep them in
    /// order acts on each the moment it has it, not when its turn comes).
    pub fn judge(&self, body: &event::Body) -> Vec<EdgeAction> {
        match self.edge.get() {
            Some(e) => e.evaluate(body),
            None => Vec::new(),
        }
    }

    pub fn emit_judged(&self, body: event::Body, edge: Vec<EdgeAction>) {
        let event = Event {
            seq: 0,
            time_ms: now_ms(),
            body: Some(body),
            edge,
        };
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports records a sensor lost before they became events (`count` 0: unknown number).
    pub fn lost(&self, count: u64, message: String) {
        self.lost_range(count, (0, 0), message);
    }

    /// Reports `count` events lost, with the sequence numbers (first, last) they had, if any.
    fn lost_range(&self, count: u64, (first_seq, last_seq): (u64, u64), message: String) {
        self.dropped_total.fetch_add(count, Ordering::Relaxed);
        tracing::warn!(count, first_seq, last_seq, "{message}");
        self.emit(event::Body::Notice(AgentNotice {
            kind: "events_lost".into(),
            message,
            count,
            first_seq,
            last_seq,
        }));
    }

    pub fn notice(&self, kind: &str, message: String) {
        self.emit(event::Body::Notice(AgentNotice {
            kind: kind.into(),
            message,
            ..Default::default()
        }));
    }
}

impl Telemetry {
    /// Opens the spool and starts the writer task (call inside the runtime).
    pub fn start(cfg: SpoolConfig) -> Result<Arc<Self>, SpoolError> {
        let (spool, report) = Spool::open(cfg)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let t = Arc::new(Self {
            spool: Arc::new(Mutex::new(spool)),
            written: Arc::new(Notify::new()),
            emitter: Emitter::new(tx),
            append_failures: AtomicU64::new(0),
        });
        if report.corrupt_regions > 0 {
            let (first_seq, last_seq) = report.skipped.unwrap_or_default();
            let skipped = match report.skipped {
                Some((a, b)) => format!("; sequence numbers {a} to {b} are skipped, not reused"),
                None => String::new(),
            };
            t.emitter.emit(event::Body::Notice(AgentNotice {
                kind: "spool_corrupt".into(),
                message: format!(
                    "{} corrupt or torn region(s), {} bytes, were cut from the spool at start{skipped}",
                    report.corrupt_regions, report.corrupt_bytes
                ),
                first_seq,
                last_seq,
                ..Default::default()
            }));
        }
        for &(first, last) in &report.cut {
            let count = last - first + 1;
            t.emitter.lost_range(
                count,
                (first, last),
                format!(
                    "spool damaged: {count} events (sequence numbers {first} to {last}) were cut before the controller stored them"
                ),
            );
        }
        tokio::spawn(writer(t.clone(), rx));
        Ok(t)
    }

    pub fn emitter(&self) -> Emitter {
        self.emitter.clone()
    }

    /// Puts the edge policies in front of the spool (once, before the sensors start).
    pub fn set_edge(&self, edge: Arc<Edge>) {
        let _ = self.emitter.edge.set(edge);
    }

    /// Events lost since start, before the spool (full queue) or in it (bound).
    pub fn lost_total(&self) -> u64 {
        self.emitter.dropped_total.load(Ordering::Relaxed) + self.lock().lost_total()
    }

    /// Appends that failed since start (each is kept and tried again).
    pub fn append_failures(&self) -> u64 {
        self.append_failures.load(Ordering::Relaxed)
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn writer(t: Arc<Telemetry>, mut rx: mpsc::Receiver<Event>) {
    let mut buf = Vec::with_capacity(BATCH);
    let mut last_append = tokio::time::Instant::now();
    let mut stall = Stall::default();
    loop {
        if buf.is_empty() && rx.recv_many(&mut buf, BATCH).await == 0 {
            return;
        }
        if buf.len() < BATCH {
            let wait = GATHER.saturating_sub(last_append.elapsed()).max(GATHER_MIN);
            tokio::time::sleep(wait).await;
            while buf.len() < BATCH {
                match rx.try_recv() {
                    Ok(item) => buf.push(item),
                    Err(_) => break,
                }
            }
        }
        let dropped = t.emitter.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            buf.push(queued(dropped_notice(dropped)));
        }
        last_append = tokio::time::Instant::now();
        match append(&t, std::mem::take(&mut buf)).await {
            Ok(()) => {
                // Straight into the next batch: the queue may still be full.
                if let Some(notice) = stall.recovered() {
                    buf.push(queued(notice));
                }
                t.written.notify_waiters();
            }
            // Kept, and tried again: while the disk is full the queue in front fills up, and
            // what does not fit there is counted and reported as lost once appends work.
            Err(items) => {
                buf = items;
                tokio::time::sleep(stall.failed()).await;
            }
        }
    }
}

/// An event of the agent's own, for the spool to number.
fn queued(body: event::Body) -> Event {
    Event {
        time_ms: now_ms(),
        body: Some(body),
        ..Default::default()
    }
}

fn dropped_notice(dropped: u64) -> event::Body {
    event::Body::Notice(AgentNotice {
        kind: "events_lost".into(),
        message: format!("telemetry queue full: {dropped} events dropped before the spool"),
        count: dropped,
        ..Default::default()
    })
}

/// Appends one batch on a blocking thread; a batch that did not reach the disk comes back.
async fn append(t: &Telemetry, batch: Vec<Event>) -> Result<(), Vec<Event>> {
    let spool = t.spool.clone();
    let res = tokio::task::spawn_blocking(move || {
        spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(batch)
    })
    .await;
    match res {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(failed)) => {
            t.append_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %failed, "writing to the spool failed; the events are kept and retried");
            Err(failed.items)
        }
        Err(e) => {
            tracing::error!(error = %e, "the spool writer panicked");
            Ok(())
        }
    }
}

/// A spell of failing appends: when it began and how long to wait before the next try.
#[derive(Default)]
struct Stall {
    since: Option<(std::time::Instant, u32)>,
}

impl Stall {
    const FIRST_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
    const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

    /// Records a failure; returns the wait before the next try (doubling up to a bound).
    fn failed(&mut self) -> std::time::Duration {
        let (_, tries) = self.since.get_or_insert((std::time::Instant::now(), 0));
        *tries += 1;
        (Self::FIRST_WAIT * 2u32.saturating_pow(*tries - 1)).min(Self::MAX_WAIT)
    }

    /// Ends a spell, if one was on: the notice that says so, for the controller.
    fn recovered(&mut self) -> Option<event::Body> {
        let (since, tries) = self.since.take()?;
        let secs = since.elapsed().as_secs_f64();
        tracing::info!(secs, tries, "the spool takes appends again");
        Some(event::Body::Notice(AgentNotice {
            kind: "spool_stalled".into(),
            message: format!(
                "appending to the spool failed for {secs:.1} s ({tries} tries, e.g. a full disk); \
                 the events were kept in memory and written once it worked again"
            ),
            count: u64::from(tries),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    /// A small tmpfs of the test's own, unmounted (lazily) when dropped.
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        fn mount(dir: &Path, size: &str) -> Self {
            let ok = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "cordon-test",
                ])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mounting a tmpfs on {}", dir.display());
            Tmpfs(dir.to_path_buf())
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }

    /// Writes `path` until the filesystem is full.
    fn fill(path: &Path) {
        use std::io::Write;
        let mut f = std::fs::File::create(path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_data()).is_ok() {}
    }

    fn test_event(i: u64) -> event::Body {
        event::Body::Notice(AgentNotice {
            kind: "test".into(),
            message: format!("burst event {i:08}"),
            count: i,
            ..Default::default()
        })
    }

    /// What the spool holds: the test events' numbers, the events reported lost, and the
    /// kinds of notice.
    fn spooled(t: &Telemetry) -> (Vec<u64>, u64, Vec<String>) {
        let events = t.lock().read_from(1, usize::MAX).unwrap();
        let (mut ids, mut lost, mut kinds) = (Vec::new(), 0, Vec::new());
        for e in &events {
            if let Some(event::Body::Notice(n)) = &e.body {
                match n.kind.as_str() {
                    "test" => ids.push(n.count),
                    "events_lost" => lost += n.count,
                    _ => {}
                }
                kinds.push(n.kind.clone());
            }
        }
        assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1), "gaps");
        (ids, lost, kinds)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_keeps_what_it_can_and_counts_exactly_what_it_cannot() {
        if !crate::sys::privileges::is_root() {
            assert!(
                !cordon_skips::in_ci(),
                "mounting a tmpfs needs root, and CI must run it"
            );
            return cordon_skips::skip("telemetry::a_full_disk_keeps...", "needs root (tmpfs)");
        }
        let dir = tempfile::tempdir().unwrap();
        let _fs = Tmpfs::mount(dir.path(), "16m");
        let cfg = SpoolConfig {
            dir: dir.path().join("spool"),
            max_bytes: 1 << 30,
            segment_bytes: 256 << 10,
        };
        let t = Telemetry::start(cfg).unwrap();
        let ballast = dir.path().join("ballast");
        fill(&ballast);
        // More than the queue holds: while the disk is full, the rest cannot be kept.
        const N: u64 = 80_000;
        let emitter = t.emitter();
        (0..N).for_each(|i| emitter.emit(test_event(i)));
        let failed = tokio::time::timeout(Duration::from_secs(20), async {
            while t.append_failures() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(failed.is_ok(), "the spool never hit the full disk");
        std::fs::remove_file(&ballast).unwrap();

        // Every event is either in the spool, once, or counted as lost; nothing else.
        let mut last = None;
        for _ in 0..300 {
            let (ids, lost, kinds) = spooled(&t);
            if ids.len() as u64 + lost >= N {
                last = Some((ids, lost, kinds));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (mut ids, lost, kinds) = last.expect("the burst reached the spool");
        assert_eq!(
            ids.len() as u64 + lost,
            N,
            "stored {} + lost {lost}",
            ids.len()
        );
        assert!(lost > 0 && lost < N - QUEUE as u64 + 1, "lost {lost}");
        let stored = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), stored, "an event stored twice");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order");
        assert!(kinds.iter().any(|k| k == "spool_stalled"), "{kinds:?}");
        // Reopened, the spool is whole: the failed appends left nothing torn behind.
        drop(t);
        let (_, report) = Spool::open(SpoolConfig {
            dir: dir.path().join("spool"),
            max_bytes: 1 << 30,
            segment_bytes: 256 << 10,
        })
        .unwrap();
        assert_eq!(report.corrupt_regions, 0, "{report:?}");
    }
}
