//! Edge policies (root only): how fast a process an edge policy matches is killed on the host,
//! from its exec (`spawn` returns once the exec has succeeded) to its death (`waitpid`), with
//! no controller in the path; and the agent's CPU while the host runs `--edge-rate N` execs a
//! second (default 1,000) for `--edge-secs S` (default 10), first with no edge policy, then
//! with one holding 100 rules (none of which the load matches: every exec is checked against
//! all of them).

use anyhow::{Context, bail};
use cordon_proto::{ApplyPlaybookRequest, ImportRulesRequest, RuleFile};
use cordon_tests::deploy::Deployment;
use cordonctl::client::connect;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RULES: usize = 100;

pub struct Load {
    pub kills: usize,
    pub rate: u64,
    pub secs: u64,
}

fn rule(i: usize) -> RuleFile {
    RuleFile {
        origin: format!("bench-edge-{i}.yml"),
        yaml: format!(
            "title: Bench edge {i}\nid: 00000000-0000-4000-a000-{i:012}\nstatus: test\n\
             author: bench\nlevel: high\nlogsource:\n  category: process_creation\n  product: linux\n\
             detection:\n  selection:\n    CommandLine|contains: 'cordon-edge-bench-{i}-'\n  condition: selection\n"
        ),
    }
}

fn playbook() -> String {
    let ids: Vec<String> = (0..RULES)
        .map(|i| format!("00000000-0000-4000-a000-{i:012}"))
        .collect();
    format!(
        "name: bench-edge\ntrigger:\n  rules: [{}]\nsteps:\n  - name: kill\n    action: kill_process\n    at: edge\n",
        ids.join(", ")
    )
}

/// Imports the rules and applies the playbook, from inside the controller's namespace.
fn install(d: &Deployment) -> anyhow::Result<()> {
    super::in_controller_ns(d, |admin| async move {
        let mut client = connect(&admin).await?;
        let files = (0..RULES).map(rule).collect();
        client.import_rules(ImportRulesRequest { files }).await?;
        let yaml = playbook();
        let origin = "bench-edge.yml".into();
        client
            .apply_playbook(ApplyPlaybookRequest { origin, yaml })
            .await?;
        Ok(())
    })
}

pub fn run(load: &Load) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("edge policies: SKIPPED (needs root for namespaces and the eBPF sensor)");
        return Ok(());
    }
    let d = Deployment::namespaces("");
    let mut agent = d.enroll_agent("edge-bench", &[]);
    agent.configure("[edge]\nmax_actions_per_minute = 1000000\n");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let pid = agent.proc.as_ref().context("agent running")?.pid();

    let idle = super::netload::cpu_share(pid, || exec_load(load.rate, load.secs))?;
    println!(
        "edge: agent CPU at {} execs/s for {} s, no edge policy: {idle:.1}% of one core",
        load.rate, load.secs
    );
    install(&d)?;
    let held = cordon_tests::poll(Duration::from_secs(30), || {
        let rec = d.agent_record(&agent.id);
        let policies = rec["metrics"]["edge_policies"].as_array()?.clone();
        policies
            .iter()
            .find(|p| p["id"] == "playbook:bench-edge" && p["rules"] == RULES)
            .cloned()
    });
    held.context("the agent never reported the bench's edge policy")?;
    let busy = super::netload::cpu_share(pid, || exec_load(load.rate, load.secs))?;
    println!(
        "edge: agent CPU at {} execs/s for {} s, one edge policy of {RULES} rules: {busy:.1}% of one core",
        load.rate, load.secs
    );
    let times = kills(load.kills)?;
    super::report("edge: exec to killed on the host by an edge policy", &times);
    Ok(())
}

/// `n` processes the policy matches, one after the other: each one's time from exec to death.
fn kills(n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        // sh runs `sleep 5` (bounding a miss) and carries rule i's marker in its command line.
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 5"])
            .arg(format!("cordon-edge-bench-{}-x", i % RULES))
            .stdin(Stdio::null())
            .spawn()?;
        let started = Instant::now();
        let status = child.wait()?;
        let took = started.elapsed();
        if status.signal() != Some(9) {
            bail!("run {i}: the process was not killed ({status:?})");
        }
        times.push(took);
    }
    Ok(times)
}

/// `rate` execs of /bin/true a second for `secs`, from two paced loops.
fn exec_load(rate: u64, secs: u64) {
    let per_loop = (rate * secs / 2).max(1);
    let loops: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let gap = secs as f64 / per_loop as f64;
                for i in 0..per_loop {
                    let due = started + Duration::from_secs_f64(gap * i as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let _ = Command::new("/bin/true").status();
                }
            })
        })
        .collect();
    for l in loops {
        let _ = l.join();
    }
}
