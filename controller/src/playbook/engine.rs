//! Runs playbooks. A new alert starts a run of every enabled playbook it triggers (once per
//! playbook and alert); the run's steps execute in order, each recorded in the store and on
//! the incident's timeline before the next starts. Containment steps wait for the agent's
//! confirmed result. Guards stand before every step that touches a host: a dry run only says
//! what it would do; a protected host, or an isolation beyond the fleet-wide hourly budget,
//! waits for a person's approval instead. A restarted controller resumes unfinished runs (a
//! step whose command was already sent waits for that command rather than sending another).

use super::Playbooks;
use super::context::RunContext;
use super::deps::{Audit, Clock, CommandError, Commands};
use super::spec::{self, Action, FileTarget, OnFailure, Playbook, Step};
use crate::notify::{Notification, Notifier};
use crate::store::{
    AlertRow, ApprovalRow, ApprovalStatus, CommandStatus, IncidentStatus, RunRow, RunStatus,
    StepRow, StepStatus, Store, StoreError, TimelineRow,
};
use cordon_proto::{
    BlockIp, CollectInventory, Isolate, KillProcess, Quarantine, Release, action, event,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Everything the engine works with.
pub struct Engine {
    pub store: Store,
    pub commands: Arc<dyn Commands>,
    pub audit: Arc<dyn Audit>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// The playbooks in force, the guards' settings and the approval wake-ups.
    pub playbooks: Arc<Playbooks>,
}

/// Why a run, or starting runs, failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the agent command failed: {0}")]
    Command(#[source] CommandError),
    #[error("alert {0} is gone")]
    AlertGone(String),
    #[error("approval {0} vanished")]
    ApprovalVanished(String),
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: StepStatus,
    pub detail: String,
    pub command_id: String,
}

impl Outcome {
    fn new(status: StepStatus, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            command_id: String::new(),
        }
    }

    fn ok(&self) -> bool {
        self.status.ok()
    }
}

/// A step's stored state.
fn step_row(
    idx: usize,
    step: &Step,
    status: StepStatus,
    detail: &str,
    command_id: &str,
    started_at_ms: i64,
    finished_at_ms: i64,
) -> StepRow {
    StepRow {
        idx,
        name: step.name.clone(),
        action: step.action.name().into(),
        status,
        detail: detail.into(),
        command_id: command_id.into(),
        started_at_ms,
        finished_at_ms,
    }
}

fn actor(pb: &Playbook) -> String {
    format!("playbook:{}", pb.name)
}

/// Starts runs for each new alert id that arrives (sent once its batch committed), until
/// every sender is gone.
pub async fn listen(eng: Arc<Engine>, mut alerts: mpsc::UnboundedReceiver<String>) {
    while let Some(alert_id) = alerts.recv().await {
        let eng = eng.clone();
        tokio::spawn(async move {
            if let Err(e) = start_runs(&eng, &alert_id).await {
                tracing::error!(alert = %alert_id, error = %e, "starting playbooks failed");
            }
        });
    }
}

/// Creates and runs a run of each enabled playbook the alert triggers.
pub async fn start_runs(eng: &Arc<Engine>, alert_id: &str) -> Result<(), EngineError> {
    let Some(alert) = eng.store.alert(alert_id.to_string()).await? else {
        return Ok(());
    };
    start_matching(eng, alert, |_| true).await?;
    Ok(())
}

/// How far back a starting controller looks for alerts whose runs never started.
const CATCH_UP: i64 = 60 * 60 * 1000;

/// At start: an alert is committed before its runs are created, so a controller that stopped
/// in between left the alert without them. Each alert of the last hour gets a run of every
/// enabled playbook that triggers on it and was already in force when it was raised (a
/// playbook enabled later does not act on older alerts); a run that exists, in any state, is
/// never made twice. Returns the runs started.
pub async fn catch_up(eng: &Arc<Engine>) -> Result<usize, EngineError> {
    let in_force: HashMap<String, i64> = eng
        .store
        .playbooks()
        .await?
        .into_iter()
        .map(|p| (p.name, p.updated_at_ms))
        .collect();
    let alerts = eng
        .store
        .alerts(eng.clock.now_ms() - CATCH_UP, 0, None, 100_000)
        .await?;
    let mut started = 0;
    for alert in alerts {
        let raised = alert.first_at_ms;
        started += start_matching(eng, alert, |pb| {
            in_force.get(&pb.name).is_some_and(|since| *since <= raised)
        })
        .await?;
    }
    Ok(started)
}

/// Creates and runs a run of each enabled playbook that `eligible` admits and the alert
/// triggers, unless it already has one; returns how many were started.
async fn start_matching(
    eng: &Arc<Engine>,
    alert: AlertRow,
    eligible: impl Fn(&Playbook) -> bool,
) -> Result<usize, EngineError> {
    let agent = eng.store.agent(alert.agent_id.clone()).await?;
    let cx = RunContext::new(alert, agent);
    let mut started = 0;
    for (pb, source) in eng.playbooks.enabled() {
        if !eligible(&pb) || !cx.triggers(&pb) {
            continue;
        }
        let now = eng.clock.now_ms();
        let run = RunRow {
            id: format!("run-{}", hex::encode(rand::random::<[u8; 8]>())),
            playbook: pb.name.clone(),
            source,
            alert_id: cx.alert.id.clone(),
            incident_id: cx.alert.incident_id.clone(),
            agent_id: cx.alert.agent_id.clone(),
            dry_run: pb.dry_run,
            status: RunStatus::Running,
            step: 0,
            started_at_ms: now,
            updated_at_ms: now,
        };
        if !eng.store.create_run(run.clone()).await? {
            continue; // already running for this alert
        }
        let dry = if pb.dry_run { " (dry run)" } else { "" };
        timeline(
            eng,
            &run,
            &pb,
            "playbook",
            format!(
                "playbook {} started{dry} for alert {}",
                pb.name, cx.alert.rule.title
            ),
            &run.id,
        )
        .await;
        let eng = eng.clone();
        tokio::spawn(async move { execute(eng, run, pb).await });
        started += 1;
    }
    Ok(started)
}

/// Resumes every unfinished run (at controller start).
pub async fn resume(eng: &Arc<Engine>) -> Result<usize, EngineError> {
    let runs = eng.store.unfinished_runs().await?;
    let n = runs.len();
    for run in runs {
        match spec::parse(&run.source, &run.playbook) {
            Ok(pb) => {
                tracing::info!(run = %run.id, playbook = %pb.name, step = run.step, "resuming playbook run");
                let eng = eng.clone();
                tokio::spawn(async move { execute(eng, run, pb).await });
            }
            Err(e) => {
                tracing::error!(run = %run.id, error = %e, "cannot resume a run: its playbook no longer parses");
                eng.store
                    .set_run(
                        run.id.clone(),
                        RunStatus::Failed,
                        run.step,
                        eng.clock.now_ms(),
                    )
                    .await?;
            }
        }
    }
    Ok(n)
}

async fn timeline(
    eng: &Engine,
    run: &RunRow,
    pb: &Playbook,
    kind: &str,
    text: String,
    reference: &str,
) {
    let entry = TimelineRow {
        at_ms: eng.clock.now_ms(),
        kind: kind.into(),
        actor: actor(pb),
        text,
        reference: reference.into(),
    };
    if let Err(e) = eng.store.add_timeline(run.incident_id.clone(), entry).await {
        tracing::error!(error = %e, "timeline write failed");
    }
}

/// Runs the steps from `run.step` to the end.
async fn execute(eng: Arc<Engine>, mut run: RunRow, pb: Playbook) {
    let result = async {
        let Some(alert) = eng.store.alert(run.alert_id.clone()).await? else {
            return Err(EngineError::AlertGone(run.alert_id.clone()));
        };
        let agent = eng.store.agent(run.agent_id.clone()).await?;
        let mut cx = RunContext::new(alert, agent);
        // Outcomes of steps done before a restart.
        for i in 0..run.step.min(pb.steps.len()) {
            if let Some(s) = eng.store.step(run.id.clone(), i).await? {
                cx.outcomes.insert(s.name, s.status.to_string());
            }
        }
        while run.step < pb.steps.len() {
            let idx = run.step;
            let step = &pb.steps[idx];
            let started = eng.clock.now_ms();
            let previous = eng.store.step(run.id.clone(), idx).await?;
            let outcome = run_step(&eng, &run, &pb, &cx, idx, step, previous).await?;
            let row = step_row(
                idx,
                step,
                outcome.status,
                &outcome.detail,
                &outcome.command_id,
                started,
                eng.clock.now_ms(),
            );
            eng.store.put_step(run.id.clone(), row).await?;
            timeline(
                &eng,
                &run,
                &pb,
                "step",
                format!(
                    "step {} {} ({}): {}{}",
                    idx + 1,
                    step.name,
                    step.action.name(),
                    outcome.status,
                    if outcome.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" - {}", outcome.detail)
                    }
                ),
                &outcome.command_id,
            )
            .await;
            // Every automatic action is on the audit log, like an administrator's.
            let mut entry = crate::policy::audit::AuditEntry::new(
                actor(&pb),
                format!("playbook.{}", step.action.name()),
                format!("agent:{}", run.agent_id),
            )
            .detail(serde_json::json!({
                "run": run.id, "step": step.name, "incident": run.incident_id,
                "detail": outcome.detail, "command_id": outcome.command_id, "dry_run": run.dry_run,
            }));
            entry.outcome = outcome.status.to_string();
            eng.audit.record(entry).await;
            cx.outcomes
                .insert(step.name.clone(), outcome.status.to_string());
            run.step = idx + 1;
            if !outcome.ok() && step.on_failure == OnFailure::Abort {
                let status = match outcome.status {
                    StepStatus::Denied | StepStatus::Expired => RunStatus::Aborted,
                    _ => RunStatus::Failed,
                };
                let text = format!("playbook {} {status} at step {}", pb.name, step.name);
                return end_run(&eng, &run, &pb, status, text).await;
            }
            eng.store
                .set_run(
                    run.id.clone(),
                    RunStatus::Running,
                    run.step,
                    eng.clock.now_ms(),
                )
                .await?;
        }
        let text = format!("playbook {} finished", pb.name);
        end_run(&eng, &run, &pb, RunStatus::Succeeded, text).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(run = %run.id, error = %e, "playbook run failed");
        let _ = eng
            .store
            .set_run(
                run.id.clone(),
                RunStatus::Failed,
                run.step,
                eng.clock.now_ms(),
            )
            .await;
    }
}

/// Records how a run ended, on the run and on its incident's timeline.
async fn end_run(
    eng: &Engine,
    run: &RunRow,
    pb: &Playbook,
    status: RunStatus,
    text: String,
) -> Result<(), EngineError> {
    eng.store
        .set_run(run.id.clone(), status, run.step, eng.clock.now_ms())
        .await?;
    timeline(eng, run, pb, "playbook", text, &run.id).await;
    Ok(())
}

/// What a containment step would do, in words (for dry runs and approvals).
fn describe(step: &Step, cmd: &Result<action::Kind, String>) -> String {
    match cmd {
        Ok(action::Kind::Kill(k)) => format!(
            "kill pid {}{}",
            k.pid,
            if k.tree { " and its descendants" } else { "" }
        ),
        Ok(action::Kind::Isolate(i)) => format!("isolate the host (allowing {:?})", i.allow),
        Ok(action::Kind::Quarantine(q)) => format!("quarantine {}", q.path),
        Ok(action::Kind::BlockIp(b)) => format!("block {}", b.cidr),
        Ok(_) => step.action.name().to_string(),
        Err(why) => format!("{} (cannot: {why})", step.action.name()),
    }
}

/// The agent command a step sends, from the alert's event.
fn command(step: &Step, cx: &RunContext, pb: &Playbook) -> Result<action::Kind, String> {
    let process = match cx.event.as_ref().and_then(|e| e.body.as_ref()) {
        Some(event::Body::Process(p)) => Some(p),
        _ => None,
    };
    match &step.action {
        Action::KillProcess { tree } => {
            let p = process.ok_or("the alert's event is not a process")?;
            Ok(action::Kind::Kill(KillProcess {
                pid: p.pid,
                start_time: p.start_ticks,
                tree: *tree,
            }))
        }
        Action::IsolateHost { allow } => Ok(action::Kind::Isolate(Isolate {
            allow: allow.clone(),
            reason: format!("playbook {}: {}", pb.name, cx.alert.rule.title),
        })),
        Action::ReleaseHost => Ok(action::Kind::Release(Release {})),
        Action::QuarantineFile { target } => {
            let path = match (target, cx.event.as_ref().and_then(|e| e.body.as_ref())) {
                (FileTarget::File, Some(event::Body::File(f))) => f.path.clone(),
                (FileTarget::Exe, Some(event::Body::Process(p))) => p.exe.clone(),
                (FileTarget::File, _) => return Err("the alert's event is not a file event".into()),
                (FileTarget::Exe, _) => return Err("the alert's event is not a process".into()),
            };
            // Automation never overrides the agent's protection of critical files.
            Ok(action::Kind::Quarantine(Quarantine { path, force: false }))
        }
        Action::BlockIp { cidr, ttl_secs } => {
            let cidr = if cidr == "ioc" {
                cx.alert
                    .detail
                    .strip_prefix("ip ")
                    .and_then(|r| r.split_whitespace().next())
                    .ok_or("the alert is not an IP indicator match")?
                    .to_string()
            } else {
                cidr.clone()
            };
            Ok(action::Kind::BlockIp(BlockIp {
                cidr,
                ttl_secs: *ttl_secs,
            }))
        }
        Action::CollectInventory => Ok(action::Kind::CollectInventory(CollectInventory {})),
        _ => Err("not an agent command".into()),
    }
}

/// Why this step needs a person's approval before it may run, if it does.
async fn guard(eng: &Engine, step: &Step, cx: &RunContext) -> Result<Option<String>, EngineError> {
    if !step.action.contains_host() {
        return Ok(None);
    }
    if let Some(agent) = &cx.agent {
        for (k, v) in &eng.playbooks.config.protected_labels {
            if agent.labels.get(k) == Some(v) {
                return Ok(Some(format!("the host is protected ({k}={v})")));
            }
        }
    }
    if matches!(step.action, Action::IsolateHost { .. }) {
        let budget = eng.playbooks.config.isolation_budget_per_hour;
        let used = eng
            .store
            .isolations_since(eng.clock.now_ms() - 3_600_000)
            .await?;
        if used >= u64::from(budget) {
            return Ok(Some(format!(
                "the fleet-wide budget of {budget} automatic isolations per hour is spent"
            )));
        }
    }
    Ok(None)
}

#[allow(clippy::too_many_arguments)]
async fn run_step(
    eng: &Arc<Engine>,
    run: &RunRow,
    pb: &Playbook,
    cx: &RunContext,
    idx: usize,
    step: &Step,
    previous: Option<StepRow>,
) -> Result<Outcome, EngineError> {
    if !cx.all_hold(&step.when) {
        return Ok(Outcome::new(
            StepStatus::Skipped,
            "its condition does not hold",
        ));
    }
    let timeout = Duration::from_secs(step.timeout_secs);
    match &step.action {
        Action::Notify { webhook, text } => return notify(eng, run, pb, cx, webhook, text).await,
        Action::WaitForApproval { proceed_on_timeout } => {
            if run.dry_run {
                return Ok(Outcome::new(StepStatus::DryRun, "would wait for approval"));
            }
            let reason = format!("playbook {} asks before going on", pb.name);
            return approval(
                eng,
                run,
                pb,
                idx,
                "continue the playbook",
                &reason,
                timeout,
                *proceed_on_timeout,
            )
            .await;
        }
        Action::SetIncident { status, severity } => {
            if run.dry_run {
                return Ok(Outcome::new(
                    StepStatus::DryRun,
                    format!(
                        "would set status {:?} severity {severity:?}",
                        status.map(IncidentStatus::as_str)
                    ),
                ));
            }
            if let Some(s) = status {
                eng.store
                    .set_incident_status(run.incident_id.clone(), *s, actor(pb), eng.clock.now_ms())
                    .await?;
            }
            if let Some(s) = severity {
                eng.store
                    .set_incident_severity(run.incident_id.clone(), s.clone())
                    .await?;
            }
            return Ok(Outcome::new(
                StepStatus::Succeeded,
                format!(
                    "status {} severity {}",
                    status.map_or("unchanged", IncidentStatus::as_str),
                    severity.as_deref().unwrap_or("unchanged")
                ),
            ));
        }
        _ => {}
    }
    let cmd = command(step, cx, pb);
    let what = describe(step, &cmd);
    if run.dry_run {
        return Ok(Outcome::new(StepStatus::DryRun, format!("would {what}")));
    }
    let cmd = match cmd {
        Ok(c) => c,
        Err(why) => return Ok(Outcome::new(StepStatus::Failed, why)),
    };
    // A command sent before a restart: wait for it instead of sending another.
    let mut command_id = previous
        .filter(|s| s.status == StepStatus::Running && !s.command_id.is_empty())
        .map(|s| s.command_id)
        .unwrap_or_default();
    if command_id.is_empty() {
        // Checking the budget and recording an isolation happen under one lock, so runs
        // started together cannot all slip under it.
        let mut budget = Some(eng.playbooks.budget.lock().await);
        if let Some(reason) = guard(eng, step, cx).await? {
            budget = None;
            let decided = approval(
                eng,
                run,
                pb,
                idx,
                &what,
                &reason,
                Duration::from_secs(3600),
                false,
            )
            .await?;
            if decided.status != StepStatus::Succeeded {
                return Ok(decided);
            }
        }
        command_id = eng
            .commands
            .submit(run.agent_id.clone(), cmd, timeout, actor(pb))
            .await
            .map_err(EngineError::Command)?;
        let row = step_row(
            idx,
            step,
            StepStatus::Running,
            &what,
            &command_id,
            eng.clock.now_ms(),
            0,
        );
        eng.store.put_step(run.id.clone(), row).await?;
        drop(budget);
    }
    let done = eng
        .commands
        .wait(command_id.clone(), timeout)
        .await
        .map_err(EngineError::Command)?;
    let mut out = match done {
        Some(r) if r.status == CommandStatus::Succeeded => {
            Outcome::new(StepStatus::Succeeded, what)
        }
        Some(r) if r.status.is_final() => Outcome::new(
            StepStatus::Failed,
            format!("{what}: {} {}", r.status.as_str(), r.error),
        ),
        _ => Outcome::new(
            StepStatus::Failed,
            format!("{what}: no confirmed result within {}s", step.timeout_secs),
        ),
    };
    out.command_id = command_id;
    Ok(out)
}

async fn notify(
    eng: &Arc<Engine>,
    run: &RunRow,
    pb: &Playbook,
    cx: &RunContext,
    webhook: &str,
    text: &str,
) -> Result<Outcome, EngineError> {
    if run.dry_run {
        return Ok(Outcome::new(
            StepStatus::DryRun,
            format!("would notify {webhook}"),
        ));
    }
    let n = Notification {
        kind: "playbook".into(),
        incident_id: Some(run.incident_id.clone()),
        agent_id: Some(run.agent_id.clone()),
        hostname: cx.agent.as_ref().map(|a| a.host.hostname.clone()),
        title: cx.alert.rule.title.clone(),
        level: cx.alert.rule.level.clone(),
        text: if text.is_empty() {
            cx.alert.rule.title.clone()
        } else {
            text.to_string()
        },
        at_ms: eng.clock.now_ms(),
        playbook: Some(pb.name.clone()),
        details: serde_json::json!({
            "alert_id": cx.alert.id,
            "rule_id": cx.alert.rule.rule_id,
            "run_id": run.id,
            "steps": cx.outcomes,
        }),
    };
    Ok(match eng.notifier.send(webhook, &n).await {
        Ok(d) => Outcome::new(
            StepStatus::Succeeded,
            format!("delivered to {webhook} in {} attempt(s)", d.attempts),
        ),
        Err(e) => Outcome::new(StepStatus::Failed, e.to_string()),
    })
}

/// Asks for approval (once per run and step) and waits for the decision or the timeout.
#[allow(clippy::too_many_arguments)]
async fn approval(
    eng: &Arc<Engine>,
    run: &RunRow,
    pb: &Playbook,
    idx: usize,
    what: &str,
    reason: &str,
    timeout: Duration,
    proceed_on_timeout: bool,
) -> Result<Outcome, EngineError> {
    let now = eng.clock.now_ms();
    let mut decided = eng.playbooks.decided.subscribe();
    let a = eng
        .store
        .request_approval(ApprovalRow {
            id: format!("apr-{}", hex::encode(rand::random::<[u8; 6]>())),
            run_id: run.id.clone(),
            idx,
            incident_id: run.incident_id.clone(),
            agent_id: run.agent_id.clone(),
            what: what.into(),
            reason: reason.into(),
            status: ApprovalStatus::Pending,
            requested_at_ms: now,
            expires_at_ms: now + timeout.as_millis() as i64,
            decided_by: String::new(),
            decided_at_ms: 0,
            note: String::new(),
        })
        .await?;
    if a.requested_at_ms == now && a.status == ApprovalStatus::Pending {
        timeline(
            eng,
            run,
            pb,
            "approval",
            format!("approval {} requested: {what} ({reason})", a.id),
            &a.id,
        )
        .await;
        eng.store
            .set_run(
                run.id.clone(),
                RunStatus::WaitingApproval,
                idx,
                eng.clock.now_ms(),
            )
            .await?;
    }
    loop {
        let Some(cur) = eng.store.approval(a.id.clone()).await? else {
            return Err(EngineError::ApprovalVanished(a.id.clone()));
        };
        match cur.status {
            ApprovalStatus::Approved => {
                eng.store
                    .set_run(run.id.clone(), RunStatus::Running, idx, eng.clock.now_ms())
                    .await?;
                return Ok(Outcome::new(
                    StepStatus::Succeeded,
                    format!("approved by {} ({})", cur.decided_by, cur.note),
                ));
            }
            ApprovalStatus::Denied => {
                return Ok(Outcome::new(
                    StepStatus::Denied,
                    format!("denied by {}: {}", cur.decided_by, cur.note),
                ));
            }
            ApprovalStatus::Expired if proceed_on_timeout => {
                return Ok(Outcome::new(
                    StepStatus::Succeeded,
                    "no decision in time; going on as configured",
                ));
            }
            ApprovalStatus::Expired => {
                return Ok(Outcome::new(StepStatus::Expired, "no decision in time"));
            }
            ApprovalStatus::Pending => {}
        }
        let left = cur.expires_at_ms - eng.clock.now_ms();
        if left <= 0 {
            eng.store
                .decide_approval(
                    a.id.clone(),
                    ApprovalStatus::Expired,
                    "timeout".into(),
                    String::new(),
                    eng.clock.now_ms(),
                )
                .await?;
            continue;
        }
        let wait = Duration::from_millis(left as u64).min(Duration::from_secs(5));
        tokio::select! {
            _ = eng.clock.sleep(wait) => {}
            _ = decided.recv() => {}
        }
    }
}

/// A dry run of every step against an alert: what each would do, and which guard would hold
/// it (earlier steps are taken to succeed). Nothing is sent or stored.
pub async fn plan(
    eng: &Engine,
    pb: &Playbook,
    cx: &mut RunContext,
) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    for (i, step) in pb.steps.iter().enumerate() {
        let line = if !cx.all_hold(&step.when) {
            "skipped: its condition does not hold".to_string()
        } else {
            let what = match &step.action {
                Action::Notify { webhook, .. } => format!("notify {webhook}"),
                Action::WaitForApproval { .. } => "wait for approval".into(),
                Action::SetIncident { status, severity } => format!(
                    "set the incident's status to {} and severity to {}",
                    status.map_or("(unchanged)", IncidentStatus::as_str),
                    severity.as_deref().unwrap_or("(unchanged)")
                ),
                _ => describe(step, &command(step, cx, pb)),
            };
            let held = guard(eng, step, cx)
                .await?
                .map(|g| format!(" after approval, because {g}"))
                .unwrap_or_default();
            format!("would {what}{held}")
        };
        out.push(format!(
            "{}. {} ({}): {line}",
            i + 1,
            step.name,
            step.action.name()
        ));
        let assumed = StepStatus::Succeeded;
        cx.outcomes.insert(step.name.clone(), assumed.to_string());
    }
    Ok(out)
}
