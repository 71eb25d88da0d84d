//! The agent simulator behind `cordon-sim` and the scale benchmarks: N agents with real keys
//! and certificates (see [`enrol`]), each keeping its own mTLS stream to the controller from
//! one process (see [`agent`]), spread over loopback source addresses so that the
//! controller's per-source connection cap is not what limits them. Bounded by a deadline.

pub mod agent;
pub mod enrol;
pub mod exec;

pub use enrol::{Batch, Enrolled, SimIdentity, batch_identities, fleet_identities};
pub use exec::SIM_ROWS;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the simulated agents behave.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// How long the fleet runs.
    pub duration: Duration,
    /// Heartbeat interval, announced in the hello (the agent's default is 10 s).
    pub heartbeat: Duration,
    /// Telemetry events per second per agent (0: heartbeats only).
    pub events_per_sec: f64,
    /// Most events one agent sends in the whole run.
    pub events_per_agent: u64,
    /// The agent's reconnect backoff (defaults: 500 ms to 30 s).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Agents that share one loopback source address.
    pub per_source: usize,
    /// Keep each agent's command ledger in memory instead of its state directory. A real
    /// agent syncs its ledger to its own disk twice per command; a thousand simulated agents
    /// doing so on this one disk, from this one process, measure the simulator's disk rather
    /// than the controller. Replays are still refused within the run.
    pub ledger_in_memory: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            events_per_sec: 0.0,
            events_per_agent: u64::MAX,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            per_source: 200,
            ledger_in_memory: false,
        }
    }
}

/// Telemetry goes out at most this often per agent; faster rates send bigger batches.
const MIN_TELEMETRY_TICK: Duration = Duration::from_millis(100);

impl SimOptions {
    /// How often an agent sends a telemetry batch, if at all.
    pub fn telemetry_every(&self) -> Option<Duration> {
        (self.events_per_sec > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / self.events_per_sec).max(MIN_TELEMETRY_TICK))
    }

    /// Events in each batch.
    pub fn events_per_tick(&self) -> u64 {
        self.telemetry_every().map_or(0, |every| {
            (self.events_per_sec * every.as_secs_f64()).round().max(1.0) as u64
        })
    }
}

/// The source address of the `i`-th agent: 127.1.x.y, `per_source` agents to each.
pub fn source_address(i: usize, per_source: usize) -> IpAddr {
    let group = i / per_source.max(1);
    IpAddr::V4(Ipv4Addr::new(
        127,
        1,
        (group / 250 % 256) as u8,
        (group % 250 + 1) as u8,
    ))
}

/// One simulated agent's counters, as the simulator sees them.
#[derive(Debug, Default)]
pub struct Counters {
    pub online: AtomicBool,
    /// Streams the controller welcomed.
    pub welcomes: AtomicU64,
    /// Connection attempts that failed before a welcome.
    pub failures: AtomicU64,
    /// Events generated, and acknowledged as stored.
    pub generated: AtomicU64,
    pub acked: AtomicU64,
    /// Commands answered.
    pub commands: AtomicU64,
}

impl Counters {
    fn welcomed(&self) {
        self.welcomes.fetch_add(1, Ordering::Relaxed);
        self.online.store(true, Ordering::Relaxed);
    }
}

/// When the controller welcomed a stream, every time it did (for connection-rate curves).
#[derive(Debug, Default)]
pub struct WelcomeLog(Mutex<Vec<std::time::Instant>>);

impl WelcomeLog {
    fn record(&self) {
        self.lock().push(std::time::Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<std::time::Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Welcomes per second from `from` for `secs` seconds.
    pub fn per_second(&self, from: std::time::Instant, secs: usize) -> Vec<u64> {
        let mut buckets = vec![0; secs];
        for t in self.lock().iter().filter(|t| **t >= from) {
            if let Some(b) = buckets.get_mut((*t - from).as_secs() as usize) {
                *b += 1;
            }
        }
        buckets
    }
}

/// A running fleet of simulated agents; its tasks stop at the deadline, or on drop.
pub struct Fleet {
    pub agents: Vec<(String, Arc<Counters>)>,
    pub welcomes: Arc<WelcomeLog>,
    tasks: Vec<JoinHandle<()>>,
    pub started: Instant,
}

/// The fleet's counters summed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub online: u64,
    pub welcomes: u64,
    pub failures: u64,
    pub generated: u64,
    pub acked: u64,
    pub commands: u64,
}

impl Fleet {
    /// Starts one task per identity (on the current tokio runtime). Each agent's sequence
    /// numbers start from the current time in microseconds, so a rerun with the same
    /// identities never reuses one.
    pub fn start(ids: &[Arc<SimIdentity>], opts: SimOptions) -> anyhow::Result<Self> {
        let opts = Arc::new(opts);
        let started = Instant::now();
        let deadline = started + opts.duration;
        let first_seq = cordon_proto::time::now_ms().max(1) as u64 * 1000;
        let mut agents = Vec::with_capacity(ids.len());
        let mut tasks = Vec::with_capacity(ids.len());
        let welcomes = Arc::new(WelcomeLog::default());
        for id in ids {
            let source = source_address(id.index, opts.per_source);
            let a = agent::SimAgent::new(id.clone(), source, opts.clone(), first_seq)?
                .logging_welcomes(welcomes.clone());
            agents.push((id.agent_id.clone(), a.counters.clone()));
            tasks.push(tokio::spawn(a.run(deadline)));
        }
        Ok(Self {
            agents,
            welcomes,
            tasks,
            started,
        })
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for (_, c) in &self.agents {
            t.online += u64::from(c.online.load(Ordering::Relaxed));
            t.welcomes += c.welcomes.load(Ordering::Relaxed);
            t.failures += c.failures.load(Ordering::Relaxed);
            t.generated += c.generated.load(Ordering::Relaxed);
            t.acked += c.acked.load(Ordering::Relaxed);
            t.commands += c.commands.load(Ordering::Relaxed);
        }
        t
    }

    /// Waits until every agent has reached the deadline.
    pub async fn finish(mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Raises this process's open-file limit to its hard limit (children started afterwards,
/// such as a controller, inherit it); returns the limit now in force.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}
