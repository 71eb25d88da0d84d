//! The chaos soak: three real agents, each in a network namespace of its own with its spool on
//! a small tmpfs, under an exec and file load, while a driver injects faults at random (the
//! controller and agents killed with SIGKILL and restarted, a link cut and restored, a spool's
//! file system filled and freed, a spool segment corrupted) and isolates and releases hosts
//! throughout. Then it checks what a security team relies on: every event an agent accepted is
//! stored exactly once or reported lost with its count and range, every command ended, every
//! host's observed isolation is its desired one, and no process's memory grew without bound.
//! `cordon-bench --only chaos --minutes N` prints the report; the `chaos` test runs two
//! minutes and asserts it. Root only (namespaces, nftables, tmpfs).

mod checks;
mod commander;
mod driver;
mod hosts;
mod load;
mod rss;

pub use checks::Account;
pub use rss::Growth;

use crate::deploy::Deployment;
use commander::Commander;
use cordon_controller::store::DB_FILE;
use driver::Driver;
use hosts::Host;
use load::Load;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

pub struct Options {
    /// How long faults are injected (the settling and checks come after).
    pub length: Duration,
    pub agents: usize,
    /// Seeds the choice of faults, so a run can be repeated.
    pub seed: u64,
}

/// What a soak did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub length: Duration,
    pub seed: u64,
    pub faults: BTreeMap<&'static str, usize>,
    pub files_made: u64,
    pub commands: usize,
    /// Of those, the orders the controller gave itself to bring a host to its desired isolation.
    pub reconciled: usize,
    pub orders_refused: usize,
    /// Commands not ended ("id: status").
    pub open_commands: Vec<String>,
    /// (host, desired, observed) isolation at the end.
    pub isolation: Vec<(String, bool, bool)>,
    pub caught_up: bool,
    pub accounts: Vec<Account>,
    pub memory: Vec<Growth>,
    /// The last warnings and errors of each process's log (shown when a check failed).
    pub log_tails: Vec<(String, Vec<String>)>,
}

/// The last `n` WARN and ERROR lines of a log.
fn warnings(log: &std::path::Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .map(str::to_string)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

impl Report {
    /// Every check that failed, in words (empty: the soak held).
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .open_commands
            .iter()
            .map(|c| format!("command not ended: {c}"))
            .collect();
        out.extend(
            self.isolation
                .iter()
                .filter(|(_, d, o)| d != o)
                .map(|(h, d, o)| format!("{h}: desired isolation {d}, observed {o}")),
        );
        if !self.caught_up {
            out.push("an agent never caught up (its spool backlog stayed above 100 events)".into());
        }
        out.extend(self.accounts.iter().filter(|a| !a.holds()).map(|a| {
            format!(
                "{}: unexplained missing events {:?}, {} duplicates",
                a.host, a.unexplained, a.duplicates
            )
        }));
        out.extend(self.memory.iter().filter(|g| !g.bounded()).map(|g| {
            format!(
                "{}: memory grew from {} KiB to {} KiB",
                g.role, g.first_third_kib, g.last_third_kib
            )
        }));
        out
    }
}

/// Runs the soak.
pub fn run(o: &Options) -> anyhow::Result<Report> {
    let mut d = Deployment::namespaces("");
    let mut hosts = (0..o.agents)
        .map(|i| Host::start(&d, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settle = Duration::from_secs(300);
    let load = Load::start(
        hosts.iter().map(|h| h.watch.clone()).collect(),
        Instant::now() + o.length + settle,
    );
    let commander = Commander::start(&d)?;
    let mut rss = rss::Sampler::default();
    let mut report = Report {
        length: o.length,
        seed: o.seed,
        ..Default::default()
    };
    let mut driver = Driver::new(&mut d, &mut hosts, &commander, &mut rss, o.seed);
    let driven = driver.run(o.length);
    report.faults = std::mem::take(&mut driver.faults);
    driven?;
    report.files_made = load.stop();
    let tally = commander.finish();
    report.orders_refused = tally.refused;
    settle_and_check(&mut d, &mut hosts, &mut report)?;
    report.memory = rss.growth();
    Ok(report)
}

/// After the faults: waits for the commands, the isolation and the spools to settle, stops
/// the agents and the controller, and accounts for every event.
fn settle_and_check(d: &mut Deployment, hosts: &mut [Host], r: &mut Report) -> anyhow::Result<()> {
    let ids: Vec<&str> = hosts.iter().map(|h| h.agent.id.as_str()).collect();
    r.open_commands = checks::commands_open(d, &ids, Duration::from_secs(150));
    (r.commands, r.reconciled) = checks::commands_total(d, &ids);
    r.isolation = checks::isolation(d, hosts, Duration::from_secs(120));
    r.caught_up = checks::caught_up(d, hosts, Duration::from_secs(120));
    let mut spools = Vec::new();
    for h in hosts.iter_mut() {
        if let Some(p) = h.agent.proc.as_mut() {
            p.terminate();
        }
        spools.push(h.agent.spool_snapshot());
    }
    d.stop_controller();
    r.log_tails = hosts
        .iter()
        .map(|h| (h.name.clone(), warnings(&h.agent.log, 25)))
        .collect();
    r.log_tails
        .push(("controller".into(), warnings(&d.controller_log(), 25)));
    let db = d.data_dir.join(DB_FILE);
    for (h, spool) in hosts.iter().zip(&spools) {
        r.accounts.push(checks::account(&db, h, spool)?);
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos soak: {:?} of faults, seed {}",
            self.length, self.seed
        )?;
        for (fault, n) in &self.faults {
            writeln!(f, "  fault {fault}: {n}")?;
        }
        writeln!(
            f,
            "  load: {} files made; {} commands (isolate/release; {} ordered by the controller to reconcile), {} orders refused while the controller was down, {} not ended",
            self.files_made,
            self.commands,
            self.reconciled,
            self.orders_refused,
            self.open_commands.len()
        )?;
        for (h, d, o) in &self.isolation {
            writeln!(f, "  {h}: isolation desired {d}, observed {o}")?;
        }
        for a in &self.accounts {
            writeln!(
                f,
                "  {}: {} events accepted, {} stored, {} waiting in the spool, {} reported lost, {} unexplained, {} duplicates; {} load files stored",
                a.host,
                a.accepted,
                a.stored,
                a.waiting,
                a.reported_lost,
                a.unexplained.iter().map(|(x, y)| y - x + 1).sum::<u64>(),
                a.duplicates,
                a.files_stored
            )?;
        }
        for g in &self.memory {
            writeln!(
                f,
                "  RSS {}: first third {} KiB, last third {} KiB, max {} KiB ({} samples){}",
                g.role,
                g.first_third_kib,
                g.last_third_kib,
                g.max_kib,
                g.samples,
                if g.bounded() { "" } else { "  GREW" }
            )?;
        }
        let failures = self.failures();
        if !failures.is_empty() {
            for (who, lines) in &self.log_tails {
                writeln!(f, "  last warnings of {who}:")?;
                lines.iter().try_for_each(|l| writeln!(f, "    {l}"))?;
            }
        }
        writeln!(
            f,
            "  verdict: {}",
            if failures.is_empty() {
                "held".to_string()
            } else {
                failures.join("; ")
            }
        )
    }
}
