//! The network sensor: every TCP connection made, accepted, listened for and closed (with bytes
//! both ways and duration), every UDP destination, and every DNS query with its answer, each
//! with the process behind it, from eBPF (see agent/bpf/network.bpf.c for the kernel hooks
//! this kernel allows). Without eBPF there is no network sensor: the agent says so in a
//! `sensor_degraded` notice and in its heartbeat, never silently.
//!
//! One thread reads the kernel's records and turns them into events (`track`): the process is
//! named from the process sensor's table, DNS answers are paired with their queries, and
//! connections get the host name their address was looked up by.

pub mod dns;
#[cfg(cordon_ebpf)]
mod ebpf;
pub mod record;
pub mod track;

use crate::sensors::process::ProcessTable;
use crate::telemetry::Emitter;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which network sensor to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// eBPF when it loads here; otherwise none, reported.
    Auto,
    Ebpf,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSensorConfig {
    pub mode: Mode,
    /// How long a DNS query waits for its answer before it is reported unanswered.
    pub dns_wait_ms: u64,
}

impl Default for NetworkSensorConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            dns_wait_ms: 2000,
        }
    }
}

/// Reports of malformed DNS traffic: at most one notice per this period.
const MALFORMED_EVERY: Duration = Duration::from_secs(10);

/// A running network sensor; dropping it stops the thread and detaches the programs.
pub struct NetworkSensor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// One line for heartbeats.
    pub status: String,
}

impl NetworkSensor {
    /// Starts the configured mode. None when off or when eBPF could not load (reported).
    pub fn start(
        cfg: &NetworkSensorConfig,
        table: Arc<ProcessTable>,
        emit: Emitter,
    ) -> (Option<Self>, String) {
        if cfg.mode == Mode::Off {
            return (None, "off".into());
        }
        let source = match open() {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(%why, "network sensor unavailable");
                emit.notice(
                    "sensor_degraded",
                    format!("network sensor unavailable: {why}; no network or DNS events"),
                );
                return (None, format!("unavailable ({why})"));
            }
        };
        let status = source.mode.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let wait = Duration::from_millis(cfg.dns_wait_ms);
        let thread = std::thread::Builder::new()
            .name("cordon-net".into())
            .spawn(move || run(source, track::Tracker::new(table, wait), &emit, &halt));
        match thread {
            Ok(t) => (
                Some(Self {
                    stop,
                    thread: Some(t),
                    status: status.clone(),
                }),
                status,
            ),
            Err(e) => (None, format!("unavailable (thread: {e})")),
        }
    }
}

impl Drop for NetworkSensor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(cordon_ebpf)]
use ebpf::{Delivery, NetworkEbpf as Source};

#[cfg(cordon_ebpf)]
fn open() -> Result<Source, String> {
    Source::open()
}

#[cfg(not(cordon_ebpf))]
fn open() -> Result<Source, String> {
    Err("this agent was built without eBPF (CORDON_NO_EBPF or a big-endian target)".into())
}

/// Without eBPF there is nothing to run (`open` always fails).
#[cfg(not(cordon_ebpf))]
struct Source {
    mode: String,
}

#[cfg(not(cordon_ebpf))]
enum Delivery {
    Record(record::RawNet),
    Lost { count: u64, why: String },
    Tick,
}

#[cfg(not(cordon_ebpf))]
impl Source {
    fn run(self, _out: &mut dyn FnMut(Delivery), _stop: &AtomicBool) {}
}

/// The sensor thread: records in, events out, DNS queries expired as time passes.
fn run(source: Source, mut tracker: track::Tracker, emit: &Emitter, stop: &AtomicBool) {
    let mut malformed = Malformed::default();
    let mut last_tick = Instant::now();
    source.run(
        &mut |d| {
            let now = Instant::now();
            let mut outs = match d {
                Delivery::Record(r) => tracker.handle(r, now),
                Delivery::Lost { count, why } => {
                    emit.lost(count, why);
                    Vec::new()
                }
                Delivery::Tick => Vec::new(),
            };
            if now.duration_since(last_tick) >= Duration::from_millis(20) {
                last_tick = now;
                outs.extend(tracker.tick(now));
            }
            for out in outs {
                match out {
                    track::Out::Event(body) => emit.emit(*body),
                    track::Out::Malformed(why) => malformed.count(why),
                }
            }
            malformed.report(emit, now);
        },
        stop,
    );
}

/// Malformed DNS messages, counted between notices.
#[derive(Default)]
struct Malformed {
    count: u64,
    last: String,
    reported: Option<Instant>,
}

impl Malformed {
    fn count(&mut self, why: String) {
        self.count += 1;
        self.last = why;
    }

    fn report(&mut self, emit: &Emitter, now: Instant) {
        if self.count == 0
            || self
                .reported
                .is_some_and(|t| now.duration_since(t) < MALFORMED_EVERY)
        {
            return;
        }
        emit.notice(
            "dns_malformed",
            format!(
                "{} DNS messages did not decode; the last: {}",
                self.count, self.last
            ),
        );
        self.count = 0;
        self.reported = Some(now);
    }
}
