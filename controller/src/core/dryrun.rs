//! A playbook's dry run turned on or off by an administrator, and the newest playbook runs.
//! `dry_run` lives in the playbook's YAML (the engine reads it from the installed playbook),
//! so turning it on or off rewrites that one top-level line of the stored text, keeping
//! everything else as written, checks that the result parses with the setting asked for, and
//! stores and installs it with the playbook's enabled state unchanged. A playbook applied
//! from the playbook directory takes its file's setting again when the file changes.

use super::{Admin, Controller, CoreError, PlaybookInfo, RunDetail};
use crate::store::PlaybookStore;
use serde_json::json;

impl Controller {
    /// Turns `name`'s dry run on or off; audited as `playbook.dry_run`.
    pub async fn set_playbook_dry_run(
        &self,
        admin: &Admin,
        name: &str,
        dry_run: bool,
    ) -> Result<PlaybookInfo, CoreError> {
        let entry = admin
            .entry("playbook.dry_run", format!("playbook:{name}"))
            .detail(json!({ "dry_run": dry_run }));
        let result = self.rewrite_dry_run(name, dry_run).await;
        self.audited(entry, result, |_, _| {}).await
    }

    async fn rewrite_dry_run(&self, name: &str, dry_run: bool) -> Result<PlaybookInfo, CoreError> {
        let rows = self.store.playbooks().await?;
        let row = rows
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| CoreError::NoPlaybook(name.into()))?;
        let yaml = with_dry_run(&row.source, dry_run);
        let parsed = super::playbooks::parse(&row.origin, &yaml)?;
        if parsed.name != name || parsed.dry_run != dry_run {
            return Err(CoreError::DryRunNotSet(name.into()));
        }
        self.put_playbook(&row.origin, &yaml, Some(row.enabled))
            .await
    }

    /// The newest `limit` playbook runs, newest first, with their steps.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<RunDetail>, CoreError> {
        let limit = super::agents::list_limit(limit)?;
        Ok(self.store.recent_runs(limit).await?)
    }
}

/// `yaml` with its top-level `dry_run:` line saying `on`: replaced where it is, or else added
/// after the top-level `name:` line (or at the end).
pub fn with_dry_run(yaml: &str, on: bool) -> String {
    let line = format!("dry_run: {on}");
    let mut lines: Vec<&str> = yaml.lines().collect();
    if let Some(i) = lines.iter().position(|l| l.starts_with("dry_run:")) {
        lines[i] = &line;
    } else if let Some(i) = lines.iter().position(|l| l.starts_with("name:")) {
        lines.insert(i + 1, &line);
    } else {
        lines.push(&line);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_line_is_replaced_or_added_and_nothing_else_changes() {
        let set = "name: p\ndry_run: false # for now\nsteps:\n  - dry_run: x\n";
        assert_eq!(
            with_dry_run(set, true),
            "name: p\ndry_run: true\nsteps:\n  - dry_run: x\n"
        );
        let unset = "# top\nname: p\nsteps: []\n";
        assert_eq!(
            with_dry_run(unset, true),
            "# top\nname: p\ndry_run: true\nsteps: []\n"
        );
        assert_eq!(
            with_dry_run("steps: []", false),
            "steps: []\ndry_run: false\n"
        );
    }
}
