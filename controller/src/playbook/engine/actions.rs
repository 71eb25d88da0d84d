//! What each step does: the agent command a host action sends, how it reads in words, the
//! guards that hold it for a person, the notify step, and the dry run of a whole playbook.

use super::*;
use crate::store::PlaybookStore;

/// The window of the fleet-wide budget of automatic isolations.
const BUDGET_WINDOW_MS: i64 = 3_600_000;

/// An automatic isolation counts against the budget while it runs and once it succeeded; a
/// failed, denied, expired or dry-run one does not.
const BUDGETED: [StepStatus; 2] = [StepStatus::Running, StepStatus::Succeeded];

/// What a containment step would do, in words (for dry runs and approvals).
pub(super) fn describe(step: &Step, cmd: &Result<action::Kind, String>) -> String {
    match cmd {
        Ok(action::Kind::Kill(k)) => format!(
            "kill pid {}{}",
            k.pid,
            if k.tree { " and its descendants" } else { "" }
        ),
        Ok(action::Kind::Isolate(i)) => format!("isolate the host (allowing {:?})", i.allow),
        Ok(action::Kind::Quarantine(q)) => format!("quarantine {}", q.path),
        Ok(action::Kind::BlockIp(b)) => format!("block {}", b.cidr),
        Ok(action::Kind::Collect(c)) => format!("collect {} on the host", c.collector),
        Ok(_) => step.action.name().to_string(),
        Err(why) => format!("{} (cannot: {why})", step.action.name()),
    }
}

/// The agent command a step sends, from the alert's event.
pub(super) fn command(step: &Step, cx: &RunContext, pb: &Playbook) -> Result<action::Kind, String> {
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
            let cidr = match cidr.as_str() {
                "ioc" => cx
                    .alert
                    .detail
                    .strip_prefix("ip ")
                    .and_then(|r| r.split_whitespace().next())
                    .ok_or("the alert is not an IP indicator match")?
                    .to_string(),
                "destination" => match cx.event.as_ref().and_then(|e| e.body.as_ref()) {
                    Some(event::Body::Network(n)) => n.destination_ip.clone(),
                    _ => return Err("the alert's event is not a connection".into()),
                },
                _ => cidr.clone(),
            };
            Ok(action::Kind::BlockIp(BlockIp {
                cidr,
                ttl_secs: *ttl_secs,
            }))
        }
        Action::CollectInventory => Ok(action::Kind::CollectInventory(CollectInventory {})),
        Action::Collect { collector, args } => Ok(action::Kind::Collect(Collect {
            collector: collector.clone(),
            args: args.clone(),
            ..Default::default()
        })),
        _ => Err("not an agent command".into()),
    }
}

/// Why this step needs a person's approval before it may run, if it does.
pub(super) async fn guard(
    eng: &Engine,
    step: &Step,
    cx: &RunContext,
) -> Result<Option<String>, EngineError> {
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
        let since = eng.clock.now_ms() - BUDGET_WINDOW_MS;
        let used = eng
            .store
            .count_steps(step.action.name().into(), BUDGETED.into(), since)
            .await?;
        if used >= u64::from(budget) {
            return Ok(Some(format!(
                "the fleet-wide budget of {budget} automatic isolations per hour is spent"
            )));
        }
    }
    Ok(None)
}

pub(super) async fn notify(
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
