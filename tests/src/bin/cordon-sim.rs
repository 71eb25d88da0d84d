//! cordon-sim: runs N simulated agents against a running controller from this one process,
//! each with a real key, token, certificate and mTLS stream (see `cordon_tests::sim`), for a
//! bounded time, printing what it sees every few seconds. Loopback controllers only.
//!
//! Run: `cordon-sim --admin ADMIN_TOML [--agents N] [--minutes M] [--rate EVENTS_PER_SEC]
//! [--events MAX_PER_AGENT] [--heartbeat SECS] [--cache DIR] [--per-source N]
//! [--enrol-parallel N] [--report-secs S]`. Identities are kept in the cache directory
//! (default `cordon-sim-cache`), one subdirectory per controller CA, so a rerun against the
//! same controller does not enrol again.

use anyhow::{Context, bail};
use cordon_tests::sim::{Fleet, SimOptions, fleet_identities, raise_nofile};
use cordonctl::client::AdminConfig;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The value after `--name`, parsed, or `default`.
fn flag<T: FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: not a valid value")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let admin: PathBuf = flag(
        "--admin",
        std::env::var("CORDON_ADMIN").unwrap_or_default().into(),
    )?;
    if admin.as_os_str().is_empty() {
        bail!("--admin ADMIN_TOML (or CORDON_ADMIN) is needed to create enrolment tokens");
    }
    let agents: usize = flag("--agents", 100usize)?.clamp(1, 50_000);
    let minutes: f64 = flag("--minutes", 1.0f64)?.clamp(0.05, 24.0 * 60.0);
    let opts = SimOptions {
        duration: Duration::from_secs_f64(minutes * 60.0),
        heartbeat: Duration::from_secs(flag("--heartbeat", 10u64)?.clamp(1, 3600)),
        events_per_sec: flag("--rate", 0.0f64)?.clamp(0.0, 10_000.0),
        events_per_agent: flag("--events", u64::MAX)?,
        per_source: flag("--per-source", 200usize)?.clamp(1, 512),
        ..SimOptions::default()
    };
    let cache: PathBuf = flag("--cache", PathBuf::from("cordon-sim-cache"))?;
    let parallel: usize = flag("--enrol-parallel", 8usize)?.clamp(1, 256);
    let every = Duration::from_secs(flag("--report-secs", 5u64)?.clamp(1, 3600));
    let nofile = raise_nofile();
    let admin = AdminConfig::load(&admin)?;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let (ids, enrolled) = fleet_identities(&admin, &cache, agents, parallel).await?;
        println!(
            "identities: {} from the cache, {} enrolled in {:.1} s ({:.0} per second); open-file limit {nofile}",
            enrolled.cached,
            enrolled.fresh,
            enrolled.took.as_secs_f64(),
            enrolled.rate()
        );
        let fleet = Fleet::start(&ids, opts.clone())?;
        let deadline = tokio::time::Instant::now() + opts.duration;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(every.min(deadline - tokio::time::Instant::now())).await;
            let t = fleet.totals();
            println!(
                "{:>7.1} s: online {} of {agents}, welcomes {}, failed attempts {}, events {} sent {} acknowledged, commands {}",
                fleet.started.elapsed().as_secs_f64(),
                t.online,
                t.welcomes,
                t.failures,
                t.generated,
                t.acked,
                t.commands
            );
        }
        fleet.finish().await;
        anyhow::Ok(())
    })
}
