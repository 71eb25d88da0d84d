//! A collection as a signed command runs it: the limits the command asks for, within the
//! time the command has; the rows kept in the outbox (sent in chunks before the result); the
//! result saying how many, their hash, and whether a limit ended it early.

use super::{Args, Host, Limits, Truncated, throttle};
use crate::commands::Job;
use crate::outbox::Outbox;
use cordon_proto::{Collect, CollectionResult};
use std::time::{Duration, Instant};

/// Time left between a collection's end and its command's deadline, to write and send.
const MARGIN: Duration = Duration::from_secs(2);
/// The most bytes of rows a command may ask for.
pub const MAX_BYTES: u64 = 256 << 20;

/// The limits `c` asks for, bounded by the agent's defaults and the command's deadline.
pub fn limits(c: &Collect, deadline: Instant) -> Limits {
    let default = Limits::default();
    let asked = match c.max_secs {
        0 => default.time,
        n => Duration::from_secs(n),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    Limits {
        time: asked.min(left.saturating_sub(MARGIN)),
        bytes: match c.max_bytes {
            0 => default.bytes,
            n => n.min(MAX_BYTES) as usize,
        },
        cpu: f64::from(c.cpu_percent) / 100.0,
    }
}

/// Runs collection `c` for `job` (blocking: call it on a blocking task) and keeps its rows in
/// `outbox`.
pub fn run(c: &Collect, job: &Job, outbox: &Outbox) -> Result<CollectionResult, String> {
    let pairs = c
        .args
        .iter()
        .map(|a| super::args::pair(a))
        .collect::<Result<Vec<_>, _>>()?;
    let limits = limits(c, job.deadline);
    let name = c.collector.clone();
    let done = throttle::run_low(name, Args::new(pairs), Host::default(), limits)
        .join()
        .map_err(|_| "the collection panicked".to_string())?
        .map_err(|e| e.to_string())?;
    let written = outbox
        .write_rows(&job.command_id, &done.rows)
        .map_err(|e| e.to_string())?;
    tracing::info!(command_id = %job.command_id, collector = %c.collector, rows = written.rows,
        truncated = done.truncated.map_or("no", Truncated::as_str), "collection done");
    Ok(CollectionResult {
        collector: c.collector.clone(),
        rows: written.rows,
        bytes: written.bytes,
        sha256: written.sha256,
        chunks: written.chunks,
        truncated: done
            .truncated
            .map_or(String::new(), |t| t.as_str().to_string()),
        errors: done.errors,
    })
}
