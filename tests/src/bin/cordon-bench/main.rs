//! cordon-bench: measures the command round trip (`ping`: admin -> controller -> signed
//! command on the agent's stream -> verified and run on the agent -> result stored -> admin)
//! on loopback and across a veth pair between two network namespaces, and enrolments per
//! second. Prints the figures; asserts nothing.
//!
//! With root it also measures, across the veth, isolate and kill from command issued to
//! result confirmed, and the time the agent takes to apply the isolation ruleset.
//!
//! Telemetry (`telemetry.rs`): events per second one agent ships to the controller, and the
//! controller's ingest into SQLite beside a plain batched insert.
//!
//! PostgreSQL ingest (`pg_ingest.rs`; skipped visibly without PostgreSQL installed): two
//! replicas' stores on one database of a private cluster, `--pg-agents N` simulated agents
//! per replica each sending `--pg-batches N` batches of `--pg-batch N` events through
//! `Events::ingest`, beside a plain binary COPY of the same rows.
//!
//! Detection (`detection.rs`): from a command on the agent's host to its alert stored.
//!
//! Playbook (`playbook.rs`): from a malicious command on the agent's host to the host's
//! isolation, ordered by a playbook, confirmed by the agent, across the veth.
//!
//! Console (`console.rs`, data from `seed.rs` and `fleet.rs`): the web console's speed on a seeded store
//! (by default 1,000 agents, 1,000,000 events over the last day, 10,000 alerts in 1,000
//! incidents): p50 and p95 of the core calls behind its pages, in-process, and of the pages
//! themselves from the real controller over HTTPS (the server's time, from `Server-Timing`,
//! and the client's). Scaled down with `--console-agents N`, `--console-events N`,
//! `--console-alerts N`, `--console-incidents N`; `--console-requests N` measurements each.
//!
//! Scale (`scale.rs`, with the simulator of `cordon_tests::sim`): 10,000 simulated agents
//! (`--scale-agents N`) on one controller: the cold-start handshake storm, the idle cost
//! (`--scale-idle-secs S` window) and reconnection after a kill -9 with its rate curve.
//!
//! Fan-out (`fanout.rs`, with the same simulator): one request isolating `--fanout-agents N`
//! (default 1,000) labelled agents under four eyes and the fan-out's limits, from the request
//! to each result stored; agents without the label, and protected ones, get nothing.
//!
//! Collections (`collect.rs`): the agent's `processes` collector with `--collect-procs N`
//! extra processes and its `files` collector over `--collect-files N` files.
//!
//! Hunt (`hunt.rs`, with the simulator): one hunt across `--hunt-agents N` (default 1,000)
//! simulated agents, from the request to every agent answered and its rows stored.
//!
//! Network (`netload.rs`): `--net-rate N` connections per second (default 5,000) from two loops
//! for `--net-secs S`: the share stored with the right process and the agent's CPU; then the
//! idle agent's CPU over `--idle-secs S` with every sensor on.
//!
//! File writes (`fswrites.rs`, root only): `--fswrites-rate N` (default 10,000) file writes a
//! second for `--fswrites-secs S` (default 10) on three filesystems, the agent's fanotify file
//! sensor beside its inotify one: the share stored with the right process, and agent CPU.
//!
//! Edge policies (`edge.rs`, root only): `--edge-kills N` (default 200) processes killed by an
//! edge policy, exec to death, p50 and p99; the agent's CPU at `--edge-rate N` execs a second
//! (default 1,000) for `--edge-secs S` (default 10), without and with a 100-rule policy.
//!
//! Exec check (`execcheck.rs`, root only): µs per exec of /bin/true with prevention's exec
//! check off and on (a block list of 100 digests), `--execcheck-execs N` (default 5,000).
//!
//! Chaos (`chaos.rs`, root only): `--minutes N` (default 10) of random faults on three agents
//! in namespaces under load (`cordon_tests::chaos`), then its checks: nothing accepted lost
//! unreported, every command ended, isolation as desired, memory bounded. `--chaos-seed N`.
//!
//! Run: `cargo run --release -p cordon-tests --bin cordon-bench -- [--pings N] [--enrolments N]
//! [--containment N] [--shipping N] [--ingest N] [--detections N] [--playbook-runs N]
//! [--console-... N] [--only SECTION,...]`, where the sections are `ping`, `enrolments`,
//! `containment`, `shipping`, `ingest`, `detection`, `playbook`, `console`, `scale`,
//! `fanout`, `pg-ingest`, `collect`, `hunt`, `netload`, `fswrites`, `edge`, `execcheck` and
//! `chaos` (default: all).

mod chaos;
mod collect;
mod console;
mod detection;
mod edge;
mod execcheck;
mod fanout;
mod fleet;
mod fswrites;
mod hunt;
mod netload;
mod pg_ingest;
mod playbook;
mod scale;
mod seed;
mod telemetry;

use anyhow::{Context, bail};
use cordon_agent::state::StateDir;
use cordon_agent::uplink::enroll::{EnrollOptions, enroll};
use cordon_proto::{
    CommandRecord, CreateTokenRequest, Isolate, KillProcess, Ping, Release, SubmitCommandRequest,
    action, command_result,
};
use cordon_tests::deploy::Deployment;
use cordonctl::client::{AdminConfig, connect};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context("missing value")?
            .parse()
            .context(name.to_string()),
        None => Ok(default),
    }
}

const SECTIONS: &[&str] = &[
    "ping",
    "enrolments",
    "containment",
    "shipping",
    "ingest",
    "detection",
    "playbook",
    "console",
    "scale",
    "fanout",
    "pg-ingest",
    "collect",
    "hunt",
    "netload",
    "fswrites",
    "edge",
    "execcheck",
    "chaos",
];

/// The sections `--only` names (all without it).
fn sections() -> anyhow::Result<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--only") else {
        return Ok(SECTIONS.iter().map(|s| s.to_string()).collect());
    };
    let list = args.get(i + 1).context("--only needs a list of sections")?;
    let chosen: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
    if let Some(bad) = chosen.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        bail!(
            "unknown section {bad:?}; the sections are {}",
            SECTIONS.join(", ")
        );
    }
    Ok(chosen)
}

fn main() -> anyhow::Result<()> {
    let pings = arg("--pings", 1000)?.clamp(1, 100_000);
    let enrolments = arg("--enrolments", 200)?.clamp(1, 10_000);
    let containment = arg("--containment", 200)?.clamp(1, 10_000);
    let shipping = arg("--shipping", 200_000)?.clamp(1, 10_000_000) as u64;
    let ingest = arg("--ingest", 200_000)?.clamp(1, 10_000_000) as u64;
    let detections = arg("--detections", 200)?.clamp(1, 10_000);
    let playbook_runs = arg("--playbook-runs", 50)?.clamp(1, 10_000);
    let console_size = seed::Size {
        agents: arg("--console-agents", 1000)?.clamp(1, 100_000),
        events: arg("--console-events", 1_000_000)?.clamp(1, 20_000_000),
        alerts: arg("--console-alerts", 10_000)?.clamp(1, 1_000_000),
        incidents: arg("--console-incidents", 1000)?.clamp(1, 100_000),
    };
    let console_requests = arg("--console-requests", 200)?.clamp(1, 10_000);
    let scale_agents = arg("--scale-agents", 10_000)?.clamp(1, 50_000);
    let scale_idle_secs = arg("--scale-idle-secs", 60)?.clamp(5, 3600) as u64;
    let fanout_agents = arg("--fanout-agents", 1000)?.clamp(1, 10_000);
    let hunt_agents = arg("--hunt-agents", 1000)?.clamp(1, 10_000);
    let pg_load = pg_ingest::Load {
        agents_per_replica: arg("--pg-agents", 50)?.clamp(1, 1000),
        batches_per_agent: arg("--pg-batches", 20)?.clamp(1, 10_000),
        batch_events: arg("--pg-batch", 200)?.clamp(1, 1000),
    };
    let collect_procs = arg("--collect-procs", 2000)?.clamp(0, 20_000);
    let collect_files = arg("--collect-files", 100_000)?.clamp(1, 2_000_000);
    let net_load = netload::Load {
        rate: arg("--net-rate", 5000)?.clamp(1, 100_000),
        secs: arg("--net-secs", 10)?.clamp(1, 600) as u64,
        idle_secs: arg("--idle-secs", 30)?.clamp(1, 3600) as u64,
    };
    let fswrites_rate = arg("--fswrites-rate", 10_000)?.clamp(1, 1_000_000) as u64;
    let fswrites_secs = arg("--fswrites-secs", 10)?.clamp(1, 600) as u64;
    let execcheck_execs = arg("--execcheck-execs", 5000)?.clamp(10, 100_000);
    let edge_load = edge::Load {
        kills: arg("--edge-kills", 200)?.clamp(1, 10_000),
        rate: arg("--edge-rate", 1000)?.clamp(1, 100_000) as u64,
        secs: arg("--edge-secs", 10)?.clamp(1, 600) as u64,
    };
    let chaos_minutes = arg("--minutes", 10)?.clamp(1, 600) as u64;
    let chaos_seed = arg("--chaos-seed", 1)? as u64;
    let only = sections()?;
    let run = |s: &str| only.iter().any(|o| o == s);
    println!(
        "cordon-bench: {} ({pings} pings per path, {enrolments} enrolments, {containment} containment rounds, {shipping} events shipped, {ingest} ingested)",
        only.join(", ")
    );

    if run("shipping") {
        telemetry::shipping(shipping)?;
    }
    if run("ingest") {
        telemetry::ingest(ingest)?;
    }
    if run("detection") {
        detection::latency(detections)?;
    }
    if run("playbook") {
        playbook::latency(playbook_runs)?;
    }
    if run("console") {
        console::run(console_size, console_requests)?;
    }
    if run("scale") {
        scale::run(scale_agents, scale_idle_secs)?;
    }
    if run("fanout") {
        fanout::run(fanout_agents)?;
    }
    if run("hunt") {
        hunt::run(hunt_agents)?;
    }
    if run("netload") {
        netload::run(&net_load)?;
    }
    if run("collect") {
        collect::run(collect_procs, collect_files)?;
    }
    if run("edge") {
        edge::run(&edge_load)?;
    }
    if run("fswrites") {
        fswrites::run(fswrites_rate, fswrites_secs)?;
    }
    if run("execcheck") {
        execcheck::run(execcheck_execs)?;
    }
    if run("chaos") {
        chaos::run(chaos_minutes, chaos_seed)?;
    }
    if run("pg-ingest") {
        pg_ingest::run(pg_load)?;
    }
    if run("ping") || run("enrolments") {
        loopback_figures(pings, enrolments, run("ping"), run("enrolments"))?;
    }
    if run("ping") || run("containment") {
        namespace_figures(pings, containment, run("ping"), run("containment"))?;
    }
    Ok(())
}

/// Ping over loopback and enrolment rates, against the real binaries.
fn loopback_figures(
    pings: usize,
    enrolments: usize,
    ping: bool,
    enrol: bool,
) -> anyhow::Result<()> {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("bench", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    if ping {
        report(
            "ping, loopback",
            &ping_rtts(&admin, &agent.id, pings, None)?,
        );
    }
    if enrol {
        enrol_rate(&admin, enrolments, 1)?;
        enrol_rate(&admin, enrolments, 8)?;
    }
    Ok(())
}

/// Ping, isolation and kill across a veth pair between two network namespaces (root only).
fn namespace_figures(
    pings: usize,
    containment: usize,
    ping: bool,
    contain: bool,
) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!(
            "veth between namespaces (ping, containment): SKIPPED (needs root for network namespaces)"
        );
        return Ok(());
    }
    let d = Deployment::namespaces("");
    let mut agent = d.enroll_agent("bench", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let ns = d.ctl_ns.as_ref().map(|n| n.name.clone());
    if ping {
        report(
            "ping, veth between namespaces",
            &ping_rtts(&admin, &agent.id, pings, ns.clone())?,
        );
    }
    if contain {
        isolation_figures(&admin, &agent.id, containment, ns.clone())?;
        kill_figures(&admin, &agent.id, containment, ns)?;
    }
    Ok(())
}

/// Runs `n` commands one after another from a thread (in `netns`, if given, so the admin
/// connection reaches a controller inside it); `next(i)` makes the i-th action (and may do
/// set-up work that is not timed). Returns each round trip and each record.
fn command_rtts(
    admin: &AdminConfig,
    agent_id: &str,
    n: usize,
    netns: Option<String>,
    next: impl Fn(usize) -> action::Kind + Send + 'static,
) -> anyhow::Result<(Vec<Duration>, Vec<CommandRecord>)> {
    let admin = admin.clone();
    let agent_id = agent_id.to_string();
    std::thread::spawn(
        move || -> anyhow::Result<(Vec<Duration>, Vec<CommandRecord>)> {
            if let Some(ns) = netns {
                cordon_agent::sys::netns::enter(&ns)?;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut client = connect(&admin).await?;
                let mut rtts = Vec::with_capacity(n);
                let mut records = Vec::with_capacity(n);
                let deadline = Instant::now() + Duration::from_secs(600);
                for i in 0..n {
                    if Instant::now() > deadline {
                        bail!("benchmark ran over 10 minutes");
                    }
                    let req = SubmitCommandRequest {
                        agent_id: agent_id.clone(),
                        ttl_secs: 60,
                        wait_secs: 10,
                        action: Some(next(i).into()),
                    };
                    let started = Instant::now();
                    let rec = client.submit_command(req).await?.into_inner();
                    rtts.push(started.elapsed());
                    if rec.status() != cordon_proto::CommandStatus::Succeeded {
                        bail!(
                            "command {} ended {:?}: {}",
                            rec.command_id,
                            rec.status(),
                            rec.error
                        );
                    }
                    records.push(rec);
                }
                Ok((rtts, records))
            })
        },
    )
    .join()
    .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?
}

fn ping_rtts(
    admin: &AdminConfig,
    agent_id: &str,
    n: usize,
    netns: Option<String>,
) -> anyhow::Result<Vec<Duration>> {
    Ok(command_rtts(admin, agent_id, n, netns, |_| action::Kind::Ping(Ping {}))?.0)
}

/// Isolate then release, `n` times each: the confirmed round trips, and the ruleset apply
/// times the agent measured.
fn isolation_figures(
    admin: &AdminConfig,
    agent_id: &str,
    n: usize,
    netns: Option<String>,
) -> anyhow::Result<()> {
    let (rtts, records) = command_rtts(admin, agent_id, 2 * n, netns, |i| {
        if i % 2 == 0 {
            action::Kind::Isolate(Isolate {
                allow: vec![],
                reason: "bench".into(),
            })
        } else {
            action::Kind::Release(Release {})
        }
    })?;
    let isolate_rtts: Vec<Duration> = rtts.iter().step_by(2).copied().collect();
    report("isolate, issued to confirmed, veth", &isolate_rtts);
    let applies: Vec<Duration> = records
        .iter()
        .step_by(2)
        .filter_map(
            |r| match r.result.as_ref().and_then(|r| r.output.as_ref()) {
                Some(command_result::Output::Isolation(i)) => {
                    Some(Duration::from_micros(i.apply_micros))
                }
                _ => None,
            },
        )
        .collect();
    report("isolation ruleset apply (nft transaction)", &applies);
    Ok(())
}

/// Kills `n` freshly started `sleep` processes one by one (pid and start time given).
fn kill_figures(
    admin: &AdminConfig,
    agent_id: &str,
    n: usize,
    netns: Option<String>,
) -> anyhow::Result<()> {
    let (rtts, _) = command_rtts(admin, agent_id, n, netns, |_| {
        let child = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        // Reaped by a thread so the killed process does not linger as a zombie.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let start_time =
            cordon_agent::respond::kill::parse_stat(pid, &stat).map_or(0, |p| p.start_time);
        action::Kind::Kill(KillProcess {
            pid,
            start_time,
            tree: false,
        })
    })?;
    report("kill, issued to confirmed, veth", &rtts);
    Ok(())
}

fn report(what: &str, rtts: &[Duration]) {
    let mut v: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{what}: n={} p50={:.2} ms p99={:.2} ms mean={:.2} ms max={:.2} ms",
        v.len(),
        pct(0.50),
        pct(0.99),
        mean,
        v[v.len() - 1]
    );
}

/// Enrols `n` agents through the full path (key pair, CA pin check, CSR, token, certificate,
/// state written to disk) with `parallel` enrolments in flight; prints the rate.
fn enrol_rate(admin: &AdminConfig, n: usize, parallel: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = connect(admin).await?;
        let token = client
            .create_token(CreateTokenRequest {
                ttl_secs: 3600,
                uses: n as u32,
                labels: HashMap::new(),
            })
            .await?
            .into_inner();
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let mut handles = Vec::new();
        for worker in 0..parallel {
            let token = token.clone();
            let base = dir.path().to_path_buf();
            let count = n / parallel + usize::from(worker < n % parallel);
            handles.push(tokio::spawn(async move {
                for i in 0..count {
                    let state = StateDir::new(base.join(format!("{worker}-{i}")));
                    let opts = EnrollOptions {
                        controllers: vec![token.controller_url.clone()],
                        token: token.token.clone(),
                        ca_fingerprint: token.ca_fingerprint.clone(),
                        labels: HashMap::new(),
                        force: false,
                    };
                    enroll(&state, opts).await?;
                }
                anyhow::Ok(())
            }));
        }
        for h in handles {
            h.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "enrolments, {parallel} in flight: n={n} in {secs:.2} s = {:.1} per second",
            n as f64 / secs
        );
        anyhow::Ok(())
    })
}

/// Runs `work` with the deployment's admin settings from inside the controller's namespace (the
/// admin connection reaches the controller there), on a thread with its own runtime.
fn in_controller_ns<T, F>(
    d: &Deployment,
    work: impl FnOnce(AdminConfig) -> F + Send + 'static,
) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let (admin, ctl_ns) = d.admin_in_ctl_ns()?;
    std::thread::spawn(move || {
        cordon_agent::sys::netns::enter(&ctl_ns)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(work(admin))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))?
}
