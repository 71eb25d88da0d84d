//! Automatic response latency: from a malicious command started on the agent's host to the
//! host's isolation confirmed by the agent, across the veth between namespaces, through the
//! real agent (eBPF sensor), ingest, Sigma evaluation, a playbook run and the signed isolate
//! command. Each run fires its own rule (a new alert, so a new run of the one playbook that
//! triggers on all of them); the bench releases the host before the next run.

use anyhow::{Context, bail};
use cordon_proto::{
    ApplyPlaybookRequest, CommandStatus, ImportRulesRequest, ListCommandsRequest, Release,
    RuleFile, SubmitCommandRequest, action,
};
use cordon_tests::deploy::Deployment;
use cordonctl::client::{AdminConfig, connect};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn rule_id(i: usize) -> String {
    format!("00000000-0000-4000-9000-{i:012}")
}

fn rule(i: usize) -> RuleFile {
    RuleFile {
        origin: format!("bench-pb-{i}.yml"),
        yaml: format!(
            "title: Bench playbook {i}\nid: {}\nstatus: test\nauthor: bench\n\
             level: high\nlogsource:\n  category: process_creation\n  product: linux\n\
             detection:\n  selection:\n    CommandLine|contains: 'cordon-pb-{i}-'\n  condition: selection\n",
            rule_id(i)
        ),
    }
}

fn playbook(n: usize) -> String {
    let ids: Vec<String> = (0..n).map(rule_id).collect();
    format!(
        "name: bench-isolate\ntrigger:\n  rules: [{}]\nsteps:\n  - action: isolate_host\n    timeout_secs: 30\n",
        ids.join(", ")
    )
}

pub fn latency(n: usize) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("playbook response: SKIPPED (needs root for namespaces and the eBPF sensor)");
        return Ok(());
    }
    // Every run isolates automatically: lift the fleet-wide budget for the bench.
    let d = Deployment::namespaces("[playbooks]\nisolation_budget_per_hour = 1000000\n");
    let mut agent = d.enroll_agent("bench", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let agent_ns = d.agent_ns.as_ref().context("agent namespace")?.name.clone();
    let agent_id = agent.id.clone();
    let (polled, stamped) = super::in_controller_ns(&d, move |admin| async move {
        runs(&admin, &agent_id, &agent_ns, n).await
    })
    .context("playbook response")?;
    super::report(
        "exec on the host to isolation confirmed by a playbook, veth (seen by polling)",
        &polled,
    );
    super::report(
        "exec on the host to isolation confirmed by a playbook, veth (controller's completion time)",
        &stamped,
    );
    Ok(())
}

/// The `n` runs: for each, the time until the admin saw the isolation succeeded, and the
/// time until the controller stored its result.
async fn runs(
    admin: &AdminConfig,
    agent_id: &str,
    agent_ns: &str,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut client = connect(admin).await?;
    let files = (0..n).map(rule).collect();
    client.import_rules(ImportRulesRequest { files }).await?;
    client
        .apply_playbook(ApplyPlaybookRequest {
            origin: "bench-isolate.yml".into(),
            yaml: playbook(n),
        })
        .await?;
    let mut seen = HashSet::new();
    let (mut polled, mut stamped) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let wall = cordon_proto::time::now_ms();
        let started = Instant::now();
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", agent_ns, "/bin/sh", "-c", ":"])
            .arg(format!("cordon-pb-{i}-x"))
            .spawn()?;
        let isolated = loop {
            let commands = client
                .list_commands(ListCommandsRequest {
                    agent_id: agent_id.into(),
                    limit: 4,
                })
                .await?
                .into_inner()
                .commands;
            let new = commands.into_iter().find(|c| {
                c.kind == "isolate"
                    && c.created_by.starts_with("playbook:")
                    && !seen.contains(&c.command_id)
            });
            match new {
                Some(c) if c.status() == CommandStatus::Succeeded => break c,
                Some(c) if matches!(c.status(), CommandStatus::Failed | CommandStatus::Expired) => {
                    bail!(
                        "run {i}: isolate {} ended {:?}: {}",
                        c.command_id,
                        c.status(),
                        c.error
                    )
                }
                _ => {}
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("run {i}: no isolation confirmed within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        polled.push(started.elapsed());
        stamped.push(Duration::from_millis(
            (isolated.completed_at_ms - wall).max(0) as u64,
        ));
        seen.insert(isolated.command_id);
        let _ = child.wait();
        let rec = client
            .submit_command(SubmitCommandRequest {
                agent_id: agent_id.into(),
                ttl_secs: 60,
                wait_secs: 10,
                action: Some(action::Kind::Release(Release {}).into()),
            })
            .await?
            .into_inner();
        if rec.status() != CommandStatus::Succeeded {
            bail!("run {i}: release ended {:?}: {}", rec.status(), rec.error);
        }
    }
    Ok((polled, stamped))
}
