//! A step marked `at: edge` has usually been done already, on the host, by the agent's edge
//! policy, before the event left it: the event says so, and the step takes that outcome
//! rather than sending the command again. When the event carries no word of it (the host had
//! no policy yet), the step runs from the controller as any other.

use super::Outcome;
use crate::playbook::context::RunContext;
use crate::playbook::edge_policy_id;
use crate::playbook::spec::{Playbook, Step};
use crate::store::StepStatus;

/// The step's outcome as the host's edge policy reported it, if it did.
pub(super) fn outcome(cx: &RunContext, pb: &Playbook, step: &Step) -> Option<Outcome> {
    if !step.at_edge {
        return None;
    }
    let id = edge_policy_id(&pb.name);
    let a = cx
        .event
        .as_ref()?
        .edge
        .iter()
        .find(|a| a.policy_id == id && a.step == step.name)?;
    let policy = format!("edge policy {id} v{}", a.version);
    let done = match a.action.as_str() {
        "kill_process" => "killed",
        "quarantine_file" => "quarantined",
        "block_ip" => "blocked",
        _ => "done",
    };
    let (status, detail) = match a.outcome.as_str() {
        "done" => (
            StepStatus::Succeeded,
            format!("{done} on the host by {policy}: {}", a.detail),
        ),
        "dry_run" => (
            StepStatus::DryRun,
            format!("{policy} (dry run) on the host: {}", a.detail),
        ),
        "rate_limited" => (
            StepStatus::Skipped,
            format!("not done on the host: {policy}: {}", a.detail),
        ),
        "refused" => (
            StepStatus::Failed,
            format!("refused on the host by {policy}: {}", a.detail),
        ),
        _ => (
            StepStatus::Failed,
            format!("failed on the host ({policy}): {}", a.detail),
        ),
    };
    Some(Outcome::new(status, detail))
}
