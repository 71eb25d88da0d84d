//! The controller's side of the audit log (`store/audit.rs`): recording each action with its
//! outcome, listing entries and verifying the chain.

use super::{Admin, Controller, CoreError};
use crate::policy::audit::{AuditEntry, AuditRecord, Verification};
use crate::store::{AuditFilter, AuditLog, StoreError};
use cordon_proto::time::now_ms;

impl Controller {
    /// Appends `entry` to the audit log. Administrators' actions come here through
    /// [`Self::audited`], and the playbook engine calls it the same way with an actor such as
    /// `playbook:NAME`. A failure is logged with the whole entry (so it is never lost
    /// silently) and returned.
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
        result: Result<T, CoreError>,
        fill: impl FnOnce(&T, &mut AuditEntry),
    ) -> Result<T, CoreError> {
        match &result {
            Ok(v) => fill(v, &mut entry),
            Err(e) => entry.outcome = e.outcome(),
        }
        let _ = self.record(entry).await;
        result
    }

    /// Audit entries from `since_ms`, oldest first.
    pub async fn audit_log(
        &self,
        since_ms: i64,
        limit: u32,
        actor: &str,
    ) -> Result<Vec<AuditRecord>, CoreError> {
        let limit = super::agents::list_limit(limit)?;
        let actor = (!actor.is_empty()).then(|| actor.to_string());
        Ok(self.store.audit(since_ms, limit, actor).await?)
    }

    /// A page of entries that pass `f`, newest first.
    pub async fn audit_page(&self, mut f: AuditFilter) -> Result<Vec<AuditRecord>, CoreError> {
        f.limit = super::agents::list_limit(f.limit)?;
        f.actor = f.actor.filter(|a| !a.is_empty());
        f.action = f.action.filter(|a| !a.is_empty());
        Ok(self.store.audit_page(f).await?)
    }

    /// Walks the whole chain; a break is logged as well as returned.
    pub async fn verify_audit(&self, by: &Admin) -> Result<Verification, CoreError> {
        let v = self.store.verify_audit().await?;
        if let Some((seq, problem)) = &v.first_bad {
            tracing::error!(by = %by.name, seq, problem = %problem, "the audit log failed verification");
        }
        Ok(v)
    }
}
