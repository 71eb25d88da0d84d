//! The controller's side of the audit log (`store/audit.rs`): recording each action with its
//! outcome, and the admin records for listing and verifying the chain.

use super::Controller;
use crate::store::{AuditEntry, AuditRecord, StoreError, Verification};
use cordon_proto::time::now_ms;
use tonic::{Code, Status};

/// Longest outcome text kept (a refusal's message).
const MAX_OUTCOME: usize = 1024;

impl Controller {
    /// Appends `entry` to the audit log. Admin handlers call it for every action, and the
    /// playbook engine calls it the same way with an actor such as `playbook:NAME`. A failure
    /// is logged with the whole entry (so it is never lost silently) and returned.
    pub async fn record(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let result = self.store.append_audit(entry.clone(), now_ms()).await;
        match &result {
            Ok(r) => {
                tracing::debug!(seq = r.seq, actor = %r.actor, action = %r.action, target = %r.target, outcome = %r.outcome, "audit entry recorded")
            }
            Err(e) => {
                tracing::error!(error = %e, actor = %entry.actor, action = %entry.action, target = %entry.target, detail = %entry.detail, outcome = %entry.outcome, "recording an audit entry failed")
            }
        }
        result
    }

    /// Records `entry` with the outcome of `result`, and passes `result` on. On success
    /// `fill` may add what only the result knows (an id, counts, a command's status).
    ///
    /// The action has already taken effect when this runs, so a failure to record it does not
    /// turn the answer into an error (the admin would lose, say, a token that exists); it is
    /// logged by [`Self::record`] instead.
    pub(crate) async fn audited<T>(
        &self,
        mut entry: AuditEntry,
        result: Result<T, Status>,
        fill: impl FnOnce(&T, &mut AuditEntry),
    ) -> Result<T, Status> {
        match &result {
            Ok(v) => fill(v, &mut entry),
            Err(s) => entry.outcome = refusal(s),
        }
        let _ = self.record(entry).await;
        result
    }
}

/// The outcome text of a refused or failed request.
fn refusal(s: &Status) -> String {
    let kind = match s.code() {
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => "error",
        _ => "refused",
    };
    let mut text = format!("{kind}: {}", s.message());
    if text.len() > MAX_OUTCOME {
        let mut cut = MAX_OUTCOME;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

pub fn audit_record(r: AuditRecord) -> cordon_proto::AuditRecord {
    cordon_proto::AuditRecord {
        seq: r.seq,
        time_ms: r.time_ms,
        actor: r.actor,
        action: r.action,
        target: r.target,
        detail: r.detail,
        outcome: r.outcome,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

pub fn verification(v: Verification) -> cordon_proto::VerifyAuditResponse {
    let ok = v.ok();
    let (first_bad_seq, problem) = v.first_bad.unwrap_or_default();
    cordon_proto::VerifyAuditResponse {
        ok,
        entries_checked: v.entries_checked,
        first_bad_seq,
        problem,
        last_seq: v.last_seq,
        last_hash: v.last_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_kind_and_stay_bounded() {
        assert_eq!(
            refusal(&Status::not_found("no agent \"x\"")),
            "refused: no agent \"x\""
        );
        assert_eq!(refusal(&Status::internal("disk")), "error: disk");
        let long = refusal(&Status::invalid_argument("é".repeat(2000)));
        assert!(long.len() <= MAX_OUTCOME && long.starts_with("refused: é"));
    }
}
