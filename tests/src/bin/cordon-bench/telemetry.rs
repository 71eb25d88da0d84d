//! Telemetry throughput: one agent shipping a full spool to the controller over the real
//! mTLS stream, and the controller's ingest path into SQLite next to a plain batched insert
//! of the same rows. Both run in-process (`cordon_tests::inproc`) on loopback.

use anyhow::{Context, bail};
use cordon_agent::spool::{Spool, SpoolConfig};
use cordon_agent::uplink::BATCH_EVENTS;
use cordon_controller::api::{PIPELINE_DEPTH, Pipeline};
use cordon_controller::store::Events;
use cordon_proto::{Event, FileEvent, TelemetryBatch, event, file_event};
use cordon_tests::inproc::TestController;
use std::time::{Duration, Instant};

/// A file event like the file sensor's: a path, a size and a SHA-256.
pub(crate) fn sample(i: u64) -> event::Body {
    event::Body::File(FileEvent {
        kind: file_event::Kind::Modify.into(),
        path: format!("/var/lib/app/data/{:04}/file-{i}.log", i % 1000),
        size: 4096 + i % 65_536,
        sha256: format!("{:064x}", u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        ..Default::default()
    })
}

/// CPU seconds this process has used (user and system, in the kernel's 1/100 s ticks), so
/// a rate can be given per CPU second too: on a shared, loaded machine the wall clock says
/// more about the neighbours than about the code.
pub(crate) fn cpu_secs() -> f64 {
    cpu_secs_of(0)
}

/// [`cpu_secs`] of process `pid` (0: this one).
pub(crate) fn cpu_secs_of(pid: u32) -> f64 {
    let path = match pid {
        0 => "/proc/self/stat".to_string(),
        pid => format!("/proc/{pid}/stat"),
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// A rate over wall-clock time and over CPU time.
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

impl Rate {
    /// Runs `f`, which handles `n` events, and rates it.
    fn measure<T>(n: u64, f: impl FnOnce() -> T) -> (T, Self) {
        let (started, cpu) = (Instant::now(), cpu_secs());
        let out = f();
        let rate = Self {
            wall: n as f64 / started.elapsed().as_secs_f64(),
            cpu: n as f64 / (cpu_secs() - cpu).max(0.01),
        };
        (out, rate)
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Fills an enrolled agent's spool with `n` events, starts the real agent runtime, and
/// measures until the controller has acknowledged (so stored) all of them. Then checks that
/// each sequence number was stored exactly once.
pub fn shipping(n: u64) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let ctl = TestController::start().await;
        let agent = ctl.enroll().await;
        let cfg = SpoolConfig {
            dir: agent.state.dir.join("spool"),
            max_bytes: cordon_agent::config::AgentConfig::default().spool_max_bytes,
            segment_bytes: 8 * 1024 * 1024,
        };
        let (mut spool, _) = Spool::open(cfg)?;
        let now = cordon_proto::time::now_ms();
        for chunk in (0..n).collect::<Vec<_>>().chunks(4096) {
            let events = chunk.iter().map(|&i| cordon_proto::Event {
                time_ms: now,
                body: Some(sample(i)),
                ..Default::default()
            });
            spool.append(events.collect())?;
        }
        let bytes = spool.bytes();
        drop(spool);

        let (started, cpu) = (Instant::now(), cpu_secs());
        let running = agent.run();
        let t = running.uplink.telemetry.clone();
        let deadline = started + Duration::from_secs(600);
        while t.lock().acked() < n {
            if Instant::now() > deadline {
                bail!("shipping {n} events took over 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = (cpu_secs() - cpu).max(0.01);
        // The agent's own start notice follows the spooled events; wait for it too.
        while t.lock().depth() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last = t.lock().last_seq();
        let stored = ctl.ctl.store.event_count(agent.id.clone()).await?;
        if stored != last {
            bail!("the controller stored {stored} events, the agent sent 1..={last}");
        }
        println!(
            "shipping, one agent over mTLS (loopback, in-process): n={n} ({:.1} MiB spooled) in {secs:.2} s = {:.0} events/s ({:.0} per CPU second, agent and controller together)",
            bytes as f64 / (1024.0 * 1024.0),
            n as f64 / secs,
            n as f64 / cpu
        );
        anyhow::Ok(())
    })
}

/// `n` events in the agent's wire batches, from sequence number 1.
fn batches(n: u64) -> Vec<TelemetryBatch> {
    let now = cordon_proto::time::now_ms();
    (1..=n)
        .collect::<Vec<_>>()
        .chunks(BATCH_EVENTS)
        .map(|seqs| TelemetryBatch {
            events: seqs
                .iter()
                .map(|&seq| Event {
                    seq,
                    time_ms: now,
                    body: Some(sample(seq)),
                    ..Default::default()
                })
                .collect(),
        })
        .collect()
}

/// Stores `n` events through the controller's ingest as an agent's stream delivers them: in
/// the agent's batches, through the same pipeline as a session (judge, describe, encode,
/// insert once per sequence number; up to `PIPELINE_DEPTH` batches in flight, committed in
/// groups, acknowledged in order). Then inserts the same rows with a prepared INSERT, one
/// transaction per batch, into a fresh database with the same schema and settings; prints
/// both rates and their ratio.
pub fn ingest(n: u64) -> anyhow::Result<()> {
    let mut real = Vec::new();
    let mut plain = Vec::new();
    // Alternating rounds, so a burst of load on a shared machine hits both sides alike.
    for _ in 0..ROUNDS {
        let (r, p) = ingest_round(n)?;
        real.push(r);
        plain.push(p);
    }
    let best = |v: &[Rate], f: fn(&Rate) -> f64| v.iter().map(f).fold(0.0, f64::max);
    let (real_wall, plain_wall) = (best(&real, |r| r.wall), best(&plain, |r| r.wall));
    let (real_cpu, plain_cpu) = (best(&real, |r| r.cpu), best(&plain, |r| r.cpu));
    println!(
        "ingest, controller path into SQLite: n={n} in batches of {BATCH_EVENTS}, up to {PIPELINE_DEPTH} in flight, best of {ROUNDS}: {real_wall:.0} events/s ({real_cpu:.0} per CPU second); plain batched INSERT of the same rows, a transaction per batch: {plain_wall:.0} events/s ({plain_cpu:.0} per CPU second); controller/plain = {:.2} (CPU {:.2})",
        real_wall / plain_wall,
        real_cpu / plain_cpu
    );
    Ok(())
}

/// Rounds of the ingest comparison.
const ROUNDS: usize = 3;

/// One round of the ingest comparison: the controller's rate, then the plain insert's.
fn ingest_round(n: u64) -> anyhow::Result<(Rate, Rate)> {
    let rt = runtime()?;
    let ctl = rt.block_on(TestController::start());
    let agent = "0123456789abcdef0123456789abcdef";
    let input = batches(n);
    let (acked, real) = Rate::measure(n, || {
        rt.block_on(async {
            let mut pipeline = Pipeline::new(ctl.ctl.clone(), agent);
            let mut acked = 0;
            let mut ack = |stored: Result<Option<u64>, tonic::Status>| {
                acked = stored?.context("an empty batch")?;
                anyhow::Ok(())
            };
            for batch in input {
                if pipeline.is_full() {
                    ack(pipeline.next().await.context("nothing pending")?)?;
                }
                pipeline.start(batch);
            }
            while let Some(stored) = pipeline.next().await {
                ack(stored)?;
            }
            anyhow::Ok(acked)
        })
    });
    if acked? != n {
        bail!("the last acknowledgement was not for seq {n}");
    }
    let rows = read_rows(&ctl.dir.path().join(cordon_controller::store::DB_FILE))?;
    if rows.len() as u64 != n {
        bail!("ingest stored {} of {n} events", rows.len());
    }
    let (done, plain) = Rate::measure(n, || plain_insert(&rows));
    done?;
    Ok((real, plain))
}

type Row = (String, i64, i64, String, Vec<u8>, i64, String);

fn read_rows(db: &std::path::Path) -> anyhow::Result<Vec<Row>> {
    let c = rusqlite::Connection::open(db)?;
    let mut stmt = c.prepare(
        "SELECT agent_id, seq, time_ms, kind, body, received_at, summary FROM events ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A prepared INSERT of `rows`, one transaction per batch, into a new store's database (same
/// migrations, same connection settings).
fn plain_insert(rows: &[Row]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    drop(cordon_controller::store::Store::open(dir.path())?);
    let mut c = rusqlite::Connection::open(dir.path().join(cordon_controller::store::DB_FILE))?;
    cordon_controller::store::configure(&c).context("database settings")?;
    for batch in rows.chunks(BATCH_EVENTS) {
        let tx = c.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO events (agent_id, seq, time_ms, kind, body, received_at, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (agent, seq, time, kind, body, received, summary) in batch {
                stmt.execute(rusqlite::params![
                    agent, seq, time, kind, body, received, summary
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}
