//! The console benchmark's data: agents, a day of process and file events spread across them,
//! alerts grouped into incidents (with status changes, notes, playbook runs and a few pending
//! approvals), written through the controller's store and its traits, as the controller
//! writes them: events and their alerts in the batched ingest (`Events::ingest`), one
//! transaction per 20,000 events.

use crate::fleet::{Rng, agent_id, attack, everyday, finding, stored};
use anyhow::{Context, bail};
use cordon_controller::policy::grouping::Grouping;
use cordon_controller::store::{
    Agents, Alerts, AnyStore, ApprovalRow, ApprovalStatus, Enrolment, Events, IncidentStatus,
    PlaybookStore, RunRow, RunStatus, StepRow, StepStatus, TimelineRow, Tokens,
};
use cordon_proto::HostFacts;
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

/// Seeds `store` with `size`; prints how long it took.
pub async fn seed(store: &AnyStore, size: Size) -> anyhow::Result<Seeded> {
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
async fn agents(store: &AnyStore, n: usize, now: i64) -> anyhow::Result<()> {
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
        if i.is_multiple_of(50) {
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
    store: &AnyStore,
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
                Some(&rule) => (attack(&mut rng, rule), vec![finding(rule)]),
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
    store: &AnyStore,
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
        if j.is_multiple_of(5) {
            let note = TimelineRow {
                at_ms: now - 60_000,
                kind: "note".into(),
                actor: "alice".into(),
                text: "Looked at the process tree; the parent is the web server.".into(),
                reference: String::new(),
            };
            store.add_timeline(incident.clone(), note).await?;
        }
        if j.is_multiple_of(10) {
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
    store: &AnyStore,
    j: usize,
    alert: &str,
    incident: &str,
    agent: &str,
    now: i64,
) -> anyhow::Result<()> {
    let waiting = j.is_multiple_of(50);
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
