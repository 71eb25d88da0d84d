//! Detection latency: from a command started on the agent's host to its alert stored and
//! visible to an administrator, through the real agent (eBPF sensor), spool, stream, ingest,
//! Sigma evaluation and store. Each run fires its own rule, so every run raises a new alert.

use anyhow::Context;
use cordon_proto::{ImportRulesRequest, ListAlertsRequest, RuleFile};
use cordon_tests::deploy::Deployment;
use cordonctl::client::{AdminConfig, connect};
use std::time::{Duration, Instant};

fn rule(i: usize) -> RuleFile {
    RuleFile {
        origin: format!("bench-{i}.yml"),
        yaml: format!(
            "title: Bench {i}\nid: 00000000-0000-4000-8000-{i:012}\nstatus: test\nauthor: bench\n\
             level: high\nlogsource:\n  category: process_creation\n  product: linux\n\
             detection:\n  selection:\n    CommandLine|contains: 'cordon-lat-{i}-'\n  condition: selection\n"
        ),
    }
}

pub fn latency(n: usize) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("detection latency: SKIPPED (needs root for the eBPF sensor)");
        return Ok(());
    }
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("bench", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut times = Vec::with_capacity(n);
    rt.block_on(async {
        let mut client = connect(&admin).await?;
        let files = (0..n).map(rule).collect();
        client.import_rules(ImportRulesRequest { files }).await?;
        let since = cordon_proto::time::now_ms() - 1000;
        for i in 0..n {
            let rule_id = format!("00000000-0000-4000-8000-{i:012}");
            let started = Instant::now();
            let status = tokio::process::Command::new("/bin/sh")
                .args(["-c", ":", &format!("cordon-lat-{i}-x")])
                .status()
                .await?;
            anyhow::ensure!(status.success(), "the command failed");
            loop {
                let alerts = client
                    .list_alerts(ListAlertsRequest {
                        since_ms: since,
                        agent_id: agent.id.clone(),
                        limit: 10_000,
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .alerts;
                if alerts.iter().any(|a| a.rule_id == rule_id) {
                    times.push(started.elapsed());
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(10),
                    "no alert for run {i} within 10 s"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        anyhow::Ok(())
    })
    .context("detection latency")?;
    super::report("exec on the host to alert stored (loopback)", &times);
    Ok(())
}
