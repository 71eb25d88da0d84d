//! Rule and playbook files that changed under the configured directories while the
//! controller runs (the watcher is `crate::reload`). A written file is applied as
//! `cordonctl rules import` or `playbooks apply` would, with the same validation and audit
//! action, by the actor [`RELOAD_ACTOR`]. A file that does not load is refused, audited and
//! logged with its reason, and the previous version stays in force. A file that is gone
//! disables what it held (rules and playbooks stay stored: alerts and runs name them).

use super::{Admin, Controller, CoreError, RuleFile};
use crate::policy::audit::AuditEntry;
use crate::store::{PlaybookStore, Rules};
use serde_json::json;

/// Who the audit log names for what a directory change did.
pub const RELOAD_ACTOR: &str = "reload";

fn reloader() -> Admin {
    Admin::new(RELOAD_ACTOR)
}

/// Whether `origin` is `gone` or a file under it (a directory that was removed).
fn held_by(origin: &str, gone: &str) -> bool {
    origin == gone
        || origin
            .strip_prefix(gone)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Controller {
    /// A rule file was written (`written`) or found at start: imported and put in force
    /// (enabled), unless it is unchanged. An unchanged file found at start leaves its rule as
    /// it is (an administrator may have disabled it); one written again is put back in force.
    /// Rules the file held before under other ids are disabled.
    pub async fn reload_rule_file(
        &self,
        origin: &str,
        yaml: &str,
        written: bool,
    ) -> Result<(), CoreError> {
        let stored = self.store.rules().await?;
        if stored
            .iter()
            .any(|r| r.origin == origin && r.source == yaml && (r.enabled || !written))
        {
            return Ok(());
        }
        let mut entry = AuditEntry::new(RELOAD_ACTOR, "rules.import", "")
            .detail(json!({ "files": 1, "origin": origin }));
        let file = RuleFile {
            origin: origin.into(),
            yaml: yaml.into(),
        };
        let outcome = match self.compile_rules(vec![file]).await {
            Ok(mut outcomes) => outcomes.pop(),
            Err(e) => {
                entry.outcome = e.outcome();
                let _ = self.record(entry).await;
                tracing::warn!(
                    file = origin,
                    "rule file refused, the previous version stays in force: {}",
                    e.public_message()
                );
                return Err(e);
            }
        };
        let Some(outcome) = outcome.clone().filter(|o| o.outcome == "loaded") else {
            let reason = outcome.map(|o| format!("{}: {}", o.outcome, o.reason));
            let reason = reason.unwrap_or_else(|| "refused: nothing loaded".into());
            tracing::warn!(
                file = origin,
                "rule file not loaded, the previous version stays in force: {reason}"
            );
            entry.outcome = reason;
            let _ = self.record(entry).await;
            return Ok(());
        };
        let id = outcome.rule_id;
        entry.target = format!("rule:{id}");
        entry.detail["loaded"] = json!(1);
        entry.detail["rule_ids"] = json!([id]);
        let _ = self.record(entry).await;
        tracing::info!(file = origin, rule = %id, "rule file reloaded");
        if stored.iter().any(|r| r.id == id && !r.enabled) {
            self.set_rule_enabled(&reloader(), &id, true).await?;
        }
        for old in stored
            .iter()
            .filter(|r| r.origin == origin && r.id != id && r.enabled)
        {
            self.set_rule_enabled(&reloader(), &old.id, false).await?;
        }
        Ok(())
    }

    /// A rule file (or a directory of them) is gone: the rules it held are disabled.
    pub async fn rule_file_removed(&self, origin: &str) -> Result<(), CoreError> {
        for r in self.store.rules().await? {
            if r.enabled && held_by(&r.origin, origin) {
                self.set_rule_enabled(&reloader(), &r.id, false).await?;
                tracing::info!(file = origin, rule = %r.id, "rule file removed: rule disabled");
            }
        }
        Ok(())
    }

    /// A playbook file was written: applied as `playbooks apply` would, unless unchanged.
    /// A playbook the file held before under another name is disabled.
    pub async fn reload_playbook_file(&self, origin: &str, yaml: &str) -> Result<(), CoreError> {
        let stored = self.store.playbooks().await?;
        if stored
            .iter()
            .any(|p| p.origin == origin && p.source == yaml)
        {
            return Ok(());
        }
        let info = match self.apply_playbook_as(&reloader(), origin, yaml).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(
                    file = origin,
                    "playbook file refused, the previous version stays in force: {}",
                    e.public_message()
                );
                return Err(e);
            }
        };
        tracing::info!(file = origin, playbook = %info.name, "playbook file reloaded");
        for old in stored
            .iter()
            .filter(|p| p.origin == origin && p.name != info.name && p.enabled)
        {
            self.set_playbook_enabled(&reloader(), &old.name, false)
                .await?;
        }
        Ok(())
    }

    /// A playbook file is gone: its playbook is disabled.
    pub async fn playbook_file_removed(&self, origin: &str) -> Result<(), CoreError> {
        for p in self.store.playbooks().await? {
            if p.enabled && held_by(&p.origin, origin) {
                self.set_playbook_enabled(&reloader(), &p.name, false)
                    .await?;
                tracing::info!(file = origin, playbook = %p.name, "playbook file removed: playbook disabled");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::held_by;

    #[test]
    fn a_removed_directory_holds_the_files_under_it_only() {
        assert!(held_by("/r/a.yml", "/r/a.yml"));
        assert!(held_by("/r/sub/a.yml", "/r/sub"));
        assert!(!held_by("/r/subway/a.yml", "/r/sub"));
        assert!(!held_by("/r/a.yml", "/r/b.yml"));
    }
}
