//! cordon-bench: measures the command round trip (`ping`: admin -> controller -> signed
//! command on the agent's stream -> verified and run on the agent -> result stored -> admin)
//! on loopback and across a veth pair between two network namespaces, and enrolments per
//! second. Prints the figures; asserts nothing.
//!
//! Run: `cargo run --release -p cordon-tests --bin cordon-bench -- [--pings N] [--enrolments N]`

use anyhow::{Context, bail};
use cordon_agent::state::StateDir;
use cordon_agent::uplink::enroll::{EnrollOptions, enroll};
use cordon_controller::client::AdminConfig;
use cordon_proto::{CreateTokenRequest, Ping, SubmitCommandRequest, action};
use cordon_tests::deploy::Deployment;
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

fn main() -> anyhow::Result<()> {
    let pings = arg("--pings", 1000)?.clamp(1, 100_000);
    let enrolments = arg("--enrolments", 200)?.clamp(1, 10_000);
    println!("cordon-bench: {pings} pings per path, {enrolments} enrolments");

    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("bench", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    report(
        "ping, loopback",
        &ping_rtts(&admin, &agent.id, pings, None)?,
    );
    enrol_rate(&admin, enrolments, 1)?;
    enrol_rate(&admin, enrolments, 8)?;
    drop(agent);
    drop(d);

    if !cordon_tests::is_root() {
        println!("ping, veth between namespaces: SKIPPED (needs root for network namespaces)");
        return Ok(());
    }
    let d = Deployment::namespaces("");
    let mut agent = d.enroll_agent("bench", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let ns = d.ctl_ns.as_ref().map(|n| n.name.clone());
    report(
        "ping, veth between namespaces",
        &ping_rtts(&admin, &agent.id, pings, ns)?,
    );
    Ok(())
}

/// Sends `n` pings one after another from a thread (in `netns`, if given, so the admin
/// connection reaches a controller inside it); returns each round trip.
fn ping_rtts(
    admin: &AdminConfig,
    agent_id: &str,
    n: usize,
    netns: Option<String>,
) -> anyhow::Result<Vec<Duration>> {
    let admin = admin.clone();
    let agent_id = agent_id.to_string();
    std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
        if let Some(ns) = netns {
            cordon_agent::sys::netns::enter(&ns)?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut client = admin.connect().await?;
            let mut rtts = Vec::with_capacity(n);
            let deadline = Instant::now() + Duration::from_secs(600);
            for _ in 0..n {
                if Instant::now() > deadline {
                    bail!("ping benchmark ran over 10 minutes");
                }
                let req = SubmitCommandRequest {
                    agent_id: agent_id.clone(),
                    ttl_secs: 60,
                    wait_secs: 10,
                    action: Some(action::Kind::Ping(Ping {}).into()),
                };
                let started = Instant::now();
                let rec = client.submit_command(req).await?.into_inner();
                rtts.push(started.elapsed());
                if rec.status() != cordon_proto::CommandStatus::Succeeded {
                    bail!(
                        "ping {} ended {:?}: {}",
                        rec.command_id,
                        rec.status(),
                        rec.error
                    );
                }
            }
            Ok(rtts)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("ping thread panicked"))?
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
        let mut client = admin.connect().await?;
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
                        controller: token.controller_url.clone(),
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
