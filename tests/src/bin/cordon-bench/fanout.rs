//! Fan-out (`--only fanout`, `--fanout-agents N`, default 1,000): issue #14's benchmark 4.
//! One controller process (SQLite store) with `[people] four_eyes = true`; N simulated agents
//! carrying `bench=fanout`, a few more carrying it and the protected label
//! `cordon.protected=true`, and a few without it. One request isolates the labelled fleet
//! through the admin API as `cordonctl isolate --labels bench=fanout --max N
//! --skip-protected --wait 60` sends it.
//!
//! The rules apply as they do for a person: the request states its maximum (the default
//! `people.fanout_cap` of 10 would refuse it), protected hosts are left out (a fan-out never
//! isolates one: that is a single isolation, which four eyes holds for a second person; the
//! bench checks that it does), and the playbooks' hourly budget counts automatic isolations
//! only. So no approval stands between the request and the commands: the clock starts when
//! the request is sent, and also, per host, at the command's stored issue time.
//!
//! Confirmed means the command's result stored as succeeded, read back per command through
//! the admin API (`GetCommand`): its `completed_at_ms`, the controller's clock on this machine.
//! Afterwards every unlabelled and every protected agent must have no command at all.
//!
//! The simulated agents keep their command ledgers in memory (`SimOptions::ledger_in_memory`):
//! a real agent syncs its ledger to its own disk, in parallel with every other host, and a
//! thousand of those syncs queued on this one disk would measure the simulator.

use crate::scale::start_online;
use anyhow::bail;
use cordon_proto::time::now_ms;
use cordon_proto::{
    CommandRecord, CommandStatus, GetCommandRequest, Isolate, IsolateByLabelsRequest,
    IsolateByLabelsResponse, ListCommandsRequest, SubmitCommandRequest, action,
};
use cordon_tests::deploy::Deployment;
use cordon_tests::sim::{Batch, SimIdentity, batch_identities, raise_nofile};
use cordonctl::client::{AdminClient, AdminConfig, connect};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The label the fan-out selects.
const LABEL: (&str, &str) = ("bench", "fanout");
/// Agents without it, which must get nothing.
const BYSTANDERS: usize = 20;
/// Agents with it and a protected label, which the fan-out leaves out.
const PROTECTED: usize = 5;
/// How long the request waits for every result (the whole fan-out's bound).
const WAIT_SECS: u64 = 60;

/// The simulated fleet: the labelled agents, the bystanders, the protected ones.
struct Groups {
    labelled: Vec<Arc<SimIdentity>>,
    bystanders: Vec<Arc<SimIdentity>>,
    protected: Vec<Arc<SimIdentity>>,
}

impl Groups {
    fn all(&self) -> Vec<Arc<SimIdentity>> {
        [&self.labelled, &self.bystanders, &self.protected]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Enrols the three groups (consecutive index ranges, so their sources spread as one fleet).
async fn enrol(admin: &AdminConfig, d: &Deployment, n: usize) -> anyhow::Result<Groups> {
    let cache = d.dir.path().join("sim-cache");
    let batches = [
        (n, labels(&[LABEL])),
        (BYSTANDERS, labels(&[("bench", "bystander")])),
        (PROTECTED, labels(&[LABEL, ("cordon.protected", "true")])),
    ];
    let started = Instant::now();
    let mut first = 0;
    let mut groups = Vec::new();
    for (count, labels) in batches {
        let batch = Batch {
            first,
            n: count,
            labels,
        };
        groups.push(batch_identities(admin, &cache, &batch, 16).await?.0);
        first += count;
    }
    println!(
        "fanout: {first} simulated agents enrolled in {:.1} s (not measured below): {n} with {}={}, {BYSTANDERS} without, {PROTECTED} with it and cordon.protected=true",
        started.elapsed().as_secs_f64(),
        LABEL.0,
        LABEL.1
    );
    let mut groups = groups.into_iter();
    let mut next = || groups.next().unwrap_or_default();
    Ok(Groups {
        labelled: next(),
        bystanders: next(),
        protected: next(),
    })
}

/// A single isolation of a protected host must wait for a second person (four eyes in force).
async fn four_eyes_holds(client: &mut AdminClient, protected: &SimIdentity) -> anyhow::Result<()> {
    let req = SubmitCommandRequest {
        agent_id: protected.agent_id.clone(),
        ttl_secs: 60,
        wait_secs: 0,
        action: Some(action::Kind::Isolate(Isolate::default()).into()),
    };
    match client.submit_command(req).await {
        Err(s) if s.message().contains("second person") => Ok(()),
        Err(s) => bail!("isolating a protected host: {}", s.message()),
        Ok(r) => bail!(
            "four eyes is not in force: a protected host's isolation went out as {}",
            r.into_inner().command_id
        ),
    }
}

/// The fan-out request, as cordonctl sends it; returns the answer, when it was sent (epoch ms)
/// and how long it took.
async fn issue(
    client: &mut AdminClient,
    n: usize,
) -> anyhow::Result<(IsolateByLabelsResponse, i64, Duration)> {
    let req = IsolateByLabelsRequest {
        labels: labels(&[LABEL]),
        max_hosts: n as u32,
        dry_run: false,
        skip_protected: true,
        isolate: Some(Isolate {
            allow: vec![],
            reason: "cordon-bench fan-out".into(),
        }),
        ttl_secs: 0,
        wait_secs: WAIT_SECS,
    };
    let (sent_ms, started) = (now_ms(), Instant::now());
    let done = client
        .isolate_by_labels(req)
        .await
        .map_err(|s| anyhow::anyhow!("{}", cordon_proto::status::describe(&s)))?
        .into_inner();
    Ok((done, sent_ms, started.elapsed()))
}

/// Each issued command as stored now, read through the admin API.
async fn stored(
    client: &mut AdminClient,
    done: &IsolateByLabelsResponse,
) -> anyhow::Result<Vec<CommandRecord>> {
    let mut records = Vec::new();
    for c in done.hosts.iter().filter_map(|h| h.command.as_ref()) {
        let req = GetCommandRequest {
            command_id: c.command_id.clone(),
        };
        records.push(client.get_command(req).await?.into_inner());
    }
    Ok(records)
}

/// The agents of `group` that have any command stored.
async fn with_commands(
    client: &mut AdminClient,
    group: &[Arc<SimIdentity>],
) -> anyhow::Result<usize> {
    let mut count = 0;
    for a in group {
        let req = ListCommandsRequest {
            agent_id: a.agent_id.clone(),
            limit: 10,
        };
        let list = client.list_commands(req).await?.into_inner();
        count += usize::from(!list.commands.is_empty());
    }
    Ok(count)
}

/// The `p` quantile of sorted, non-empty `v`.
fn quantile(v: &[i64], p: f64) -> i64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Prints p50, p90, p99 and max of `ms`; returns the p99.
fn print_latencies(what: &str, mut ms: Vec<i64>) -> Option<i64> {
    if ms.is_empty() {
        println!("  {what}: nothing confirmed");
        return None;
    }
    ms.sort_unstable();
    println!(
        "  {what}: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        quantile(&ms, 0.50),
        quantile(&ms, 0.90),
        quantile(&ms, 0.99),
        quantile(&ms, 1.0)
    );
    Some(quantile(&ms, 0.99))
}

/// Prints the figures of one fan-out.
fn report(
    n: usize,
    done: &IsolateByLabelsResponse,
    records: &[CommandRecord],
    sent_ms: i64,
    took: Duration,
) {
    let confirmed: Vec<&CommandRecord> = records
        .iter()
        .filter(|r| r.status() == CommandStatus::Succeeded)
        .collect();
    let skipped = done.hosts.iter().filter(|h| h.skipped).count();
    println!(
        "4. fan-out isolation: {} matched, {} issued, {} confirmed, {skipped} left out (protected); the request answered after {:.2} s",
        done.matched,
        records.len(),
        confirmed.len(),
        took.as_secs_f64()
    );
    let spans = |span: &dyn Fn(&CommandRecord) -> i64| -> Vec<i64> {
        confirmed.iter().map(|r| span(r)).collect()
    };
    let p99 = print_latencies(
        "from the request to confirmed",
        spans(&|r| r.completed_at_ms - sent_ms),
    );
    print_latencies(
        "from the command's issue (created_at) to confirmed",
        spans(&|r| r.completed_at_ms - r.created_at_ms),
    );
    print_latencies(
        "from the request to the command's issue",
        spans(&|r| r.created_at_ms - sent_ms),
    );
    print_latencies(
        "from the command's issue to delivered on the stream",
        spans(&|r| r.delivered_at_ms - r.created_at_ms),
    );
    let met = confirmed.len() == n && p99.is_some_and(|p| p < 2000);
    println!(
        "  target: every host confirmed, p99 from the request under 2000 ms: {}",
        if met { "met" } else { "MISSED" }
    );
}

pub fn run(n: usize) -> anyhow::Result<()> {
    let nofile = raise_nofile();
    let d = Deployment::loopback("[people]\nfour_eyes = true\n");
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let groups = rt.block_on(enrol(&admin, &d, n))?;
    let everyone = groups.all();
    let fleet = start_online(&rt, &admin, &everyone, "fanout", nofile)?;
    rt.block_on(async {
        let mut client = connect(&admin).await?;
        four_eyes_holds(&mut client, &groups.protected[0]).await?;
        let (done, sent_ms, took) = issue(&mut client, n).await?;
        let records = stored(&mut client, &done).await?;
        report(n, &done, &records, sent_ms, took);
        let bystanders = with_commands(&mut client, &groups.bystanders).await?;
        let protected = with_commands(&mut client, &groups.protected).await?;
        println!(
            "  agents without the label given a command: {bystanders} of {BYSTANDERS}; protected agents given one: {protected} of {PROTECTED} (both must be 0)"
        );
        if bystanders + protected > 0 {
            bail!("the fan-out reached agents it must not");
        }
        anyhow::Ok(())
    })?;
    drop(fleet);
    Ok(())
}
