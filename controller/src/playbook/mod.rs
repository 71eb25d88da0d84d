//! Playbooks: automated response to alerts. `spec` is the file format, `context` what
//! conditions see, `engine` the durable runs with their guards and approvals, `deps` the
//! narrow interface the engine works through (commands, audit, clock), so nothing here
//! depends on the core or a transport.

pub mod context;
pub mod deps;
pub mod engine;
#[cfg(test)]
mod fakes;
pub mod running;
pub mod spec;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// `[playbooks]` in controller.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookConfig {
    /// Playbook files (*.yml, *.yaml) applied at every start. Empty: none.
    pub dir: String,
    /// Watch `dir` and apply a playbook file added, changed or removed while running
    /// (see `reload.rs`).
    pub reload: bool,
    /// Hosts with any of these labels (key=value) are never contained automatically: the
    /// step waits for approval instead.
    pub protected_labels: Vec<String>,
    /// Most automatic isolations per hour across the fleet; past it, isolation steps wait
    /// for approval.
    pub isolation_budget_per_hour: u32,
}

impl Default for PlaybookConfig {
    fn default() -> Self {
        Self {
            dir: String::new(),
            reload: true,
            protected_labels: vec!["cordon.protected=true".into()],
            isolation_budget_per_hour: 5,
        }
    }
}

impl PlaybookConfig {
    pub fn validate(&self) -> Result<(), String> {
        for l in &self.protected_labels {
            if !l.contains('=') {
                return Err(format!(
                    "playbooks.protected_labels: {l:?} is not key=value"
                ));
            }
        }
        if !self.dir.is_empty() && !std::path::Path::new(&self.dir).is_dir() {
            return Err(format!("playbooks.dir {:?} is not a directory", self.dir));
        }
        Ok(())
    }
}

/// The running configuration.
pub struct Settings {
    pub protected_labels: Vec<(String, String)>,
    pub isolation_budget_per_hour: u32,
}

/// The loaded playbooks and the approval wake-up channel.
pub struct Playbooks {
    loaded: RwLock<Vec<(spec::Playbook, String, bool)>>,
    pub config: Settings,
    /// Ids of approvals just decided.
    pub decided: broadcast::Sender<String>,
    /// Held while a host-touching step checks its guards and records itself.
    pub budget: Arc<tokio::sync::Mutex<()>>,
    /// The runs executing in this process.
    pub running: running::Running,
}

/// The id of the edge policy compiled from a playbook's `at: edge` steps.
pub fn edge_policy_id(playbook: &str) -> String {
    format!("playbook:{playbook}")
}

impl Playbooks {
    pub fn new(cfg: &PlaybookConfig) -> Self {
        Self {
            loaded: RwLock::new(Vec::new()),
            config: Settings {
                protected_labels: cfg
                    .protected_labels
                    .iter()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                isolation_budget_per_hour: cfg.isolation_budget_per_hour,
            },
            decided: broadcast::channel(256).0,
            budget: Arc::default(),
            running: running::Running::default(),
        }
    }

    /// Installs (or replaces) a parsed playbook with its YAML.
    pub fn install(&self, pb: spec::Playbook, source: String, enabled: bool) {
        let mut l = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        l.retain(|(p, _, _)| p.name != pb.name);
        l.push((pb, source, enabled));
        l.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) -> bool {
        let mut l = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        match l.iter_mut().find(|(p, _, _)| p.name == name) {
            Some(entry) => {
                entry.2 = enabled;
                true
            }
            None => false,
        }
    }

    /// Every installed playbook, enabled or not, by name.
    pub fn all(&self) -> Vec<(spec::Playbook, bool)> {
        self.loaded
            .read()
            .map(|l| l.iter().map(|(p, _, e)| (p.clone(), *e)).collect())
            .unwrap_or_default()
    }

    /// Whether a host with these labels is protected (no automated containment).
    pub fn is_protected(&self, labels: &std::collections::HashMap<String, String>) -> bool {
        self.config
            .protected_labels
            .iter()
            .any(|(k, v)| labels.get(k) == Some(v))
    }

    /// Enabled playbooks (with their YAML), by name.
    pub fn enabled(&self) -> Vec<(spec::Playbook, String)> {
        self.loaded
            .read()
            .map(|l| {
                l.iter()
                    .filter(|(_, _, e)| *e)
                    .map(|(p, s, _)| (p.clone(), s.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
