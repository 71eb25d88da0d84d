//! A run's steps in order: each recorded (step row, timeline, audit log) before the next; a
//! host action sent once, behind the guards, and its confirmed result awaited.

use super::actions::{command, describe, guard, notify};
use super::approval::approval;
use super::budget;
use super::*;
use crate::store::{Alerts, PlaybookStore};

/// Runs the steps from `run.step` to the end.
pub(super) async fn execute(eng: Arc<Engine>, mut run: RunRow, pb: Playbook) {
    let Some(_executing) = eng.playbooks.running.start(&run.id) else {
        return; // already executing here
    };
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
    if let Some(done) = super::edge::outcome(cx, pb, step) {
        return Ok(done);
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
        let mut budget = Some(budget::lock(eng).await?);
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
            Outcome::new(StepStatus::Succeeded, with_result(what, &r))
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

/// A succeeded step's words, with what its command returned when that is worth saying.
fn with_result(what: String, r: &crate::playbook::deps::CommandState) -> String {
    match r.result.as_str() {
        "" => what,
        result => format!("{what}: {result}"),
    }
}
