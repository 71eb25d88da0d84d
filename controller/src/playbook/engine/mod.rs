//! Runs playbooks. A new alert starts a run of every enabled playbook it triggers (once per
//! playbook and alert); the run's steps execute in order, each recorded in the store and on
//! the incident's timeline before the next starts. Containment steps wait for the agent's
//! confirmed result. Guards stand before every step that touches a host: a dry run only says
//! what it would do; a protected host, or an isolation beyond the fleet-wide hourly budget,
//! waits for a person's approval instead. A restarted controller resumes unfinished runs (a
//! step whose command was already sent waits for that command rather than sending another).

mod actions;
mod approval;
mod budget;
mod edge;
mod run;

pub use actions::plan;
use run::execute;

use super::Playbooks;
use super::context::RunContext;
use super::deps::{Audit, Clock, CommandError, Commands};
use super::spec::{self, Action, FileTarget, OnFailure, Playbook, Step};
use crate::notify::{Notification, Notifier};
use crate::store::{
    Agents, AlertRow, AnyStore, ApprovalRow, ApprovalStatus, CommandStatus, IncidentStatus, RunRow,
    RunStatus, StepRow, StepStatus, StoreError, TimelineRow,
};
use crate::store::{Alerts, PlaybookStore};
use cordon_proto::{
    BlockIp, Collect, CollectInventory, Isolate, KillProcess, Quarantine, Release, action, event,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Everything the engine works with.
pub struct Engine {
    pub store: AnyStore,
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
    #[error("another controller held the isolation budget's lock for over {0} s")]
    BudgetBusy(u64),
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
pub(super) fn step_row(
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

pub(super) fn actor(pb: &Playbook) -> String {
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

/// Resumes every unfinished run this controller may execute and is not executing yet: at
/// start, and periodically on a shared store, where runs of a controller that died are
/// claimed (see `store::pg::replica`).
pub async fn resume(eng: &Arc<Engine>) -> Result<usize, EngineError> {
    let mut runs = eng.store.unfinished_runs().await?;
    runs.retain(|r| !eng.playbooks.running.contains(&r.id));
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

pub(super) async fn timeline(
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
