//! Waiting for a person: an approval requested once per run and step, then the decision,
//! or the timeout by the engine's clock.

use super::*;
use crate::store::PlaybookStore;

/// Asks for approval (once per run and step) and waits for the decision or the timeout.
#[allow(clippy::too_many_arguments)]
pub(super) async fn approval(
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
            run_id: run.id.clone(),
            idx,
            incident_id: run.incident_id.clone(),
            ..ApprovalRow::pending(
                format!("playbook:{}", run.playbook),
                run.agent_id.clone(),
                what.into(),
                reason.into(),
                now,
                timeout,
            )
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
