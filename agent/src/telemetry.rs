//! The agent's telemetry pipeline: sensors emit events into a bounded queue; one writer task
//! appends them to the spool in batches (one fsync per batch) and wakes the shipper. If the
//! queue is ever full, the events that did not fit are counted and reported as lost, never
//! dropped silently.

use crate::spool::{Spool, SpoolConfig, SpoolError};
use cordon_proto::time::now_ms;
use cordon_proto::{AgentNotice, event};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
}

/// A cheap handle sensors use to emit events.
#[derive(Clone)]
pub struct Emitter {
    tx: mpsc::Sender<(i64, event::Body)>,
    dropped: Arc<AtomicU64>,
    dropped_total: Arc<AtomicU64>,
}

impl Emitter {
    /// An emitter whose events go to the returned receiver (for sensor tests).
    #[cfg(test)]
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<(i64, event::Body)>) {
        let (tx, rx) = mpsc::channel(capacity);
        let e = Self {
            tx,
            dropped: Arc::default(),
            dropped_total: Arc::default(),
        };
        (e, rx)
    }

    pub fn emit(&self, body: event::Body) {
        if self.tx.try_send((now_ms(), body)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports records a sensor lost before they became events (`count` 0: unknown number).
    pub fn lost(&self, count: u64, message: String) {
        self.dropped_total.fetch_add(count, Ordering::Relaxed);
        tracing::warn!(count, "{message}");
        self.emit(event::Body::Notice(AgentNotice {
            kind: "events_lost".into(),
            message,
            count,
            ..Default::default()
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
            emitter: Emitter {
                tx,
                dropped: Arc::default(),
                dropped_total: Arc::default(),
            },
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
        tokio::spawn(writer(t.clone(), rx));
        Ok(t)
    }

    pub fn emitter(&self) -> Emitter {
        self.emitter.clone()
    }

    /// Events lost since start, before the spool (full queue) or in it (bound).
    pub fn lost_total(&self) -> u64 {
        self.emitter.dropped_total.load(Ordering::Relaxed) + self.lock().lost_total()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn writer(t: Arc<Telemetry>, mut rx: mpsc::Receiver<(i64, event::Body)>) {
    let mut buf = Vec::with_capacity(BATCH);
    let mut last_append = tokio::time::Instant::now();
    loop {
        if rx.recv_many(&mut buf, BATCH).await == 0 {
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
            let notice = AgentNotice {
                kind: "events_lost".into(),
                message: format!("telemetry queue full: {dropped} events dropped before the spool"),
                count: dropped,
                ..Default::default()
            };
            buf.push((now_ms(), event::Body::Notice(notice)));
        }
        let batch = std::mem::take(&mut buf);
        last_append = tokio::time::Instant::now();
        let spool = t.spool.clone();
        let res = tokio::task::spawn_blocking(move || {
            spool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(batch)
        })
        .await;
        match res {
            Ok(Ok(_)) => t.written.notify_waiters(),
            Ok(Err(e)) => tracing::error!(error = %e, "writing to the spool failed"),
            Err(e) => tracing::error!(error = %e, "the spool writer panicked"),
        }
    }
}
