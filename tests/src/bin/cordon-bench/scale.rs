//! Scale (`--only scale`, `--scale-agents N`, default 10,000; `--scale-idle-secs S`): the
//! simulated fleet of `cordon_tests::sim` against one controller process (SQLite store).
//!
//! 1. From cold until every agent is online as the controller lists them (a handshake storm).
//! 2. The same fleet idle, heartbeats only: the controller's CPU (share of one core, from
//!    /proc/PID/stat over the window) and RSS.
//! 3. The controller killed with SIGKILL and started again: until every agent is back online,
//!    with the agents' jittered backoff; the connection-rate curve (welcomes per second as the
//!    simulator saw them, and agents online as the controller listed them).
//!
//! Enrolment is not what these measure; its rate is printed on its own.

use cordon_proto::ListAgentsRequest;
use cordon_tests::deploy::Deployment;
use cordon_tests::procstat::{cost, tick_secs};
use cordon_tests::sim::{Fleet, SimOptions, fleet_identities, raise_nofile};
use cordonctl::client::{AdminConfig, connect};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// How long an agent count may take to come online before the benchmark gives up.
const ONLINE_LIMIT: Duration = Duration::from_secs(180);

/// Agents the controller lists as online now, or why it did not answer.
async fn controller_online(admin: &AdminConfig) -> Result<usize, String> {
    let mut client = connect(admin).await.map_err(|e| e.to_string())?;
    let list = client
        .list_agents(ListAgentsRequest {})
        .await
        .map_err(|s| cordon_proto::status::describe(&s))?;
    Ok(list.into_inner().agents.iter().filter(|a| a.online).count())
}

/// Agents online as the controller listed them, seconds after the start.
pub struct Listed {
    at: f64,
    online: Option<usize>,
}

/// Asks the controller every second until it lists `n` agents online or the limit passes;
/// returns when that was (from `since`) and what each answer said.
pub fn until_all_online(
    rt: &Runtime,
    admin: &AdminConfig,
    n: usize,
    since: Instant,
) -> (Option<Duration>, Vec<Listed>) {
    let mut listed = Vec::new();
    let mut next = since;
    while since.elapsed() < ONLINE_LIMIT {
        next += Duration::from_secs(1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let online = rt.block_on(controller_online(admin));
        if let Err(e) = &online {
            println!(
                "  (at {:.1} s the controller did not list: {e})",
                since.elapsed().as_secs_f64()
            );
        }
        let online = online.ok();
        listed.push(Listed {
            at: since.elapsed().as_secs_f64(),
            online,
        });
        if online == Some(n) {
            return (Some(since.elapsed()), listed);
        }
    }
    (None, listed)
}

fn print_outcome(what: &str, n: usize, took: Option<Duration>, target: Duration) {
    match took {
        Some(t) => println!(
            "{what}: all {n} agents online in {:.1} s (target under {} s: {})",
            t.as_secs_f64(),
            target.as_secs(),
            if t < target { "met" } else { "MISSED" }
        ),
        None => println!(
            "{what}: NOT all {n} agents online within {} s",
            ONLINE_LIMIT.as_secs()
        ),
    }
}

/// The connection-rate curve from `since`: streams welcomed in each second (as the simulator
/// saw them), and the last count of online agents the controller listed by that second's end.
fn print_curve(fleet: &Fleet, since: Instant, listed: &[Listed]) {
    let secs = listed.last().map_or(1, |l| l.at.ceil() as usize).max(1);
    let per_second = fleet.welcomes.per_second(since, secs);
    println!("  second  welcomes  online (controller)");
    for (s, w) in per_second.iter().enumerate() {
        let online = listed
            .iter()
            .rev()
            .find(|l| l.at <= (s + 1) as f64)
            .and_then(|l| l.online)
            .map_or("-".to_string(), |o| o.to_string());
        println!("  {:>6}  {w:>8}  {online:>19}", s + 1);
    }
    let peak = per_second.iter().max().copied().unwrap_or(0);
    let total: u64 = per_second.iter().sum();
    println!(
        "  peak {peak} welcomes in one second, mean {:.0} per second over {secs} s",
        total as f64 / secs as f64
    );
}

/// The controller's share of one core over `window`, and its RSS (MiB) at the end.
fn idle_cost(pid: u32, window: Duration) -> anyhow::Result<(f64, f64)> {
    let (t0, _) = cost(pid)?;
    let started = Instant::now();
    std::thread::sleep(window);
    let (t1, rss_kib) = cost(pid)?;
    let cpu = (t1 - t0) as f64 * tick_secs() / started.elapsed().as_secs_f64() * 100.0;
    Ok((cpu, rss_kib as f64 / 1024.0))
}

pub fn run(n: usize, idle_secs: u64) -> anyhow::Result<()> {
    let nofile = raise_nofile();
    // The controller started below inherits the raised limit.
    let mut d = Deployment::loopback("");
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cache = d.dir.path().join("sim-cache");
    let (ids, enrolled) = rt.block_on(fleet_identities(&admin, &cache, n, 16))?;
    println!(
        "scale: {n} simulated agents (open-file limit {nofile}); enrolment (not measured below): {} in {:.1} s = {:.0} per second, 16 in flight",
        enrolled.fresh,
        enrolled.took.as_secs_f64(),
        enrolled.rate()
    );
    let opts = SimOptions {
        duration: ONLINE_LIMIT * 3 + Duration::from_secs(idle_secs + 60),
        ..SimOptions::default()
    };
    let started = Instant::now();
    let fleet = {
        let _in_runtime = rt.enter();
        Fleet::start(&ids, opts)?
    };
    let (took, listed) = until_all_online(&rt, &admin, n, started);
    print_outcome(
        "1. cold start (handshake storm)",
        n,
        took,
        Duration::from_secs(60),
    );
    print_curve(&fleet, started, &listed);

    let pid = d.controller_pid().unwrap_or(0);
    // Let the storm's after-effects settle: a full heartbeat round first.
    std::thread::sleep(Duration::from_secs(10));
    let (cpu, rss) = idle_cost(pid, Duration::from_secs(idle_secs))?;
    println!(
        "2. idle, heartbeats every 10 s: controller CPU {cpu:.1}% of one core over {idle_secs} s, RSS {rss:.0} MiB (targets under 20% and under 1024 MiB); {} of {n} online as the simulator sees it",
        fleet.totals().online
    );

    d.kill9_controller();
    let killed = Instant::now();
    d.start_controller();
    println!(
        "3. controller killed (SIGKILL) and started again: answering after {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    let (took, listed) = until_all_online(&rt, &admin, n, killed);
    print_outcome(
        "3. reconnection after a restart (from the kill)",
        n,
        took,
        Duration::from_secs(60),
    );
    print_curve(&fleet, killed, &listed);
    let t = fleet.totals();
    println!(
        "  simulator: {} welcomes, {} failed connection attempts in all",
        t.welcomes, t.failures
    );
    drop(fleet);
    Ok(())
}

/// Starts `agents` as simulated agents (command ledgers in memory: a real agent syncs its own
/// disk, in parallel with every other host, and a thousand syncs queued on this one disk
/// would measure the simulator) and waits until every one is online; says how long that took.
pub fn start_online(
    rt: &Runtime,
    admin: &AdminConfig,
    agents: &[std::sync::Arc<cordon_tests::sim::SimIdentity>],
    bench: &str,
    nofile: u64,
) -> anyhow::Result<Fleet> {
    let opts = SimOptions {
        duration: Duration::from_secs(600),
        ledger_in_memory: true,
        ..Default::default()
    };
    let started = Instant::now();
    let fleet = {
        let _in_runtime = rt.enter();
        Fleet::start(agents, opts)?
    };
    let (took, _) = until_all_online(rt, admin, agents.len(), started);
    let took = anyhow::Context::context(took, "the simulated agents did not all come online")?;
    println!(
        "{bench}: all {} simulated agents online after {:.1} s (open-file limit {nofile})",
        agents.len(),
        took.as_secs_f64()
    );
    Ok(fleet)
}
