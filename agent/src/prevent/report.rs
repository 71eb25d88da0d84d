//! What the permission thread reports, handed to a thread of its own. Emitting an event runs
//! the edge policies over it, and an edge action may exec (nft for a block) or open files:
//! were the permission thread to do that itself, it would wait on a permission event only it
//! can answer, and every exec on the host would hang. So it only queues (bounded, never
//! waiting); past the bound reports are counted and the count is reported as lost.

use crate::telemetry::Emitter;
use cordon_proto::{AgentNotice, event};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Reports waiting for the reporting thread.
const QUEUE: usize = 4096;

pub struct Reporter {
    tx: SyncSender<event::Body>,
    dropped: Arc<AtomicU64>,
}

impl Reporter {
    pub fn start(emit: Emitter) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("prevent-report".into())
            .spawn(move || run(rx, &emit, &counted))?;
        Ok(Self { tx, dropped })
    }

    /// Queues an event; never waits.
    pub fn emit(&self, body: event::Body) {
        if self.tx.try_send(body).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn notice(&self, kind: &str, message: String) {
        self.emit(event::Body::Notice(AgentNotice {
            kind: kind.into(),
            message,
            ..Default::default()
        }));
    }
}

fn run(rx: Receiver<event::Body>, emit: &Emitter, dropped: &AtomicU64) {
    for body in rx {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            emit.lost(
                lost,
                format!("{lost} prevention reports (denials or notices) did not fit the queue"),
            );
        }
        emit.emit(body);
    }
}
