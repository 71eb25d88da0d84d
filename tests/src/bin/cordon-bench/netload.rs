//! Network sensor load: two loops in the agent's namespace open TCP connections to a server in
//! `peer` at `--net-rate N` connections per second in all (default 5,000) for `--net-secs S`
//! seconds (default 10); each is reset at once (SO_LINGER 0, so no port waits in TIME_WAIT).
//! Prints the connections made, the share stored as CONNECT events with this process, and the
//! agent's CPU over the load; then the agent's CPU over `--idle-secs S` (default 30) with every
//! sensor on and nothing happening.

use anyhow::Context;
use cordon_proto::{event, network_event::Kind};
use cordon_tests::deploy::{Deployment, PEER_V4, event_line};
use cordon_tests::netns::in_netns;
use cordon_tests::procstat::{cost, tick_secs};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PORT: u16 = 7401;

pub struct Load {
    pub rate: usize,
    pub secs: u64,
    pub idle_secs: u64,
}

/// Accepts and drops connections in `ns` until `stop` (or ten minutes).
fn serve(ns: &str, addr: SocketAddr, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let listener = in_netns(ns, move || TcpListener::bind(addr)).context("bind in peer")?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(600);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => drop(s),
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    });
    Ok(())
}

/// One loop: `n` connection attempts paced over `secs`, from this thread, inside `ns`;
/// counts those that connected in `made`.
fn client(ns: &str, addr: SocketAddr, n: u64, secs: u64, made: &AtomicU64) {
    cordon_agent::sys::netns::enter(ns).expect("enter the agent's namespace");
    let started = Instant::now();
    let gap = Duration::from_secs(secs).as_secs_f64() / n as f64;
    for i in 0..n {
        let due = started + Duration::from_secs_f64(gap * i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            // Reset on close: no TIME_WAIT holding the port.
            let reset = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &reset);
            made.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// CONNECT events to the server stored for `agent` between `from_ms` and `to_ms`, and how
/// many name this process. Read in windows short enough for a listing's limit.
fn stored(d: &Deployment, agent: &str, from_ms: i64, to_ms: i64) -> (usize, usize) {
    const WINDOW_MS: i64 = 200;
    let contains = format!("--contains=-> {PEER_V4}:{PORT}");
    let me = std::process::id();
    let (mut connects, mut mine) = (0, 0);
    for since in (from_ms..to_ms).step_by(WINDOW_MS as usize) {
        // `--until` is inclusive.
        let (since, until) = (since.to_string(), (since + WINDOW_MS - 1).to_string());
        let out = d.ctl(&[
            "events", "query", "--agent", agent, "--kind", "network", &contains, "--since", &since,
            "--until", &until, "--limit", "10000", "--json",
        ]);
        for line in out.lines() {
            // (The text also matches the command lines of these very queries.)
            if let Some(event::Body::Network(n)) = event_line(line).event.and_then(|e| e.body)
                && n.kind() == Kind::Connect
                && n.destination_ip == PEER_V4
                && n.destination_port == u32::from(PORT)
            {
                connects += 1;
                mine += usize::from(n.process.is_some_and(|p| p.pid == me));
            }
        }
    }
    (connects, mine)
}

/// The CPU `pid` used while `during` ran, in percent of one core.
pub fn cpu_share(pid: u32, during: impl FnOnce()) -> anyhow::Result<f64> {
    let (before, _) = cost(pid)?;
    let started = Instant::now();
    during();
    let (after, _) = cost(pid)?;
    Ok((after - before) as f64 * tick_secs() / started.elapsed().as_secs_f64() * 100.0)
}

pub fn run(load: &Load) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("network load: SKIPPED (needs root for namespaces and eBPF)");
        return Ok(());
    }
    let d = Deployment::namespaces_with_peer("");
    let mut agent = d.enroll_agent("netload", &[]);
    // Test agents keep to their own events and beat every second; here every sensor is on
    // and heartbeats are as packaged.
    agent.configure(
        "heartbeat_interval_secs = 10\n[network]\nmode = \"auto\"\n[files]\nmode = \"auto\"\n",
    );
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let pid = agent.proc.as_ref().context("agent running")?.pid();
    let host = d.agent_ns.as_ref().context("agent namespace")?.name.clone();
    let peer = d.peer_ns.as_ref().context("peer namespace")?.name.clone();
    let addr: SocketAddr = format!("{PEER_V4}:{PORT}").parse()?;
    let stop = Arc::new(AtomicBool::new(false));
    serve(&peer, addr, stop.clone())?;
    let made = Arc::new(AtomicU64::new(0));
    let from_ms = cordon_proto::time::now_ms() - 1000;
    let per_loop = (load.rate as u64 * load.secs / 2).max(1);
    let started = Instant::now();
    let busy = cpu_share(pid, || {
        let loops: Vec<_> = (0..2)
            .map(|_| {
                let (host, made, secs) = (host.clone(), made.clone(), load.secs);
                std::thread::spawn(move || client(&host, addr, per_loop, secs, &made))
            })
            .collect();
        for l in loops {
            let _ = l.join();
        }
    })?;
    let took = started.elapsed().as_secs_f64();
    // Every attempt is a CONNECT event, those that failed (a full backlog) flagged so.
    let attempts = (per_loop * 2) as usize;
    let made = made.load(Ordering::Relaxed) as usize;
    // Until everything made is stored, or two minutes.
    let deadline = Instant::now() + Duration::from_secs(120);
    let count = || stored(&d, &agent.id, from_ms, cordon_proto::time::now_ms() + 1000);
    let (mut connects, mut mine) = count();
    while connects < attempts && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(5));
        (connects, mine) = count();
    }
    stop.store(true, Ordering::Relaxed);
    let share = |n: usize| 100.0 * n as f64 / attempts.max(1) as f64;
    println!(
        "network load: {attempts} connection attempts ({made} connected) in {took:.1} s ({:.0}/s \
         from two loops); stored {connects} CONNECT events ({:.2}%), {mine} with this process \
         ({:.2}%); agent CPU {busy:.1}% of one core",
        attempts as f64 / took,
        share(connects),
        share(mine),
    );
    let idle = cpu_share(pid, || {
        std::thread::sleep(Duration::from_secs(load.idle_secs))
    })?;
    println!(
        "idle agent (process, file and network sensors on): CPU {idle:.2}% of one core over {} s",
        load.idle_secs
    );
    Ok(())
}
