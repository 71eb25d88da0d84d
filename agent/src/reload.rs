//! Reloading the agent's configuration on SIGHUP (`systemctl reload cordon-agent`). The file is
//! read and validated again, as at start; a file that fails (unreadable, not TOML, an unknown
//! key, a failed check) is refused with its error, and nothing changes. Of a valid file, the
//! settings that are safe to change in a running agent are put in force at once: the
//! protected processes and files (resolved again to device and inode), the isolation settings
//! (from the next isolation), the command timeout, the controller refresh period, and the
//! heartbeat interval (from the next connection, whose hello tells the controller). The
//! others (the controller list, sensors, spool, reconnect and renewal timing) are logged as
//! needing a restart and stay as they are. Every reload, applied or refused, is also reported
//! to the controller as an agent notice.

use crate::config::{AgentConfig, ConfigError};
use crate::uplink::Uplink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Copies one setting from a new configuration into the one in force.
type Take = fn(&mut AgentConfig, &AgentConfig);

/// One setting of the agent's configuration.
struct Key {
    name: &'static str,
    show: fn(&AgentConfig) -> String,
    /// How a reload puts it in force; None: only a restart does.
    take: Option<Take>,
}

/// `key!(live a.b)`: the setting `a.b`, put in force by a reload; `key!(restart a.b)`: only
/// by a restart.
macro_rules! key {
    (live $($f:ident).+) => {
        key!(@ Some(|to, from| to.$($f).+ = from.$($f).+.clone()), $($f).+)
    };
    (restart $($f:ident).+) => {
        key!(@ None, $($f).+)
    };
    (@ $take:expr, $($f:ident).+) => {
        Key {
            name: stringify!($($f).+),
            show: |c| format!("{:?}", c.$($f).+),
            take: $take,
        }
    };
}

/// The table of settings: `keys!(live: a, b.c; restart: d)`.
macro_rules! keys {
    (live: $($($l:ident).+),+; restart: $($($r:ident).+),+ $(;)?) => {
        &[$(key!(live $($l).+),)+ $(key!(restart $($r).+),)+]
    };
}

/// Every setting of [`AgentConfig`], and whether a reload may change it.
const KEYS: &[Key] = keys!(
    live:
        heartbeat_interval_secs, command_timeout_secs,
        containment.dns_resolvers, containment.allow_dhcp,
        containment.protected_processes, containment.protected_files,
        containment.controller_refresh_secs, containment.verify_timeout_ms;
    restart:
        controllers, reconnect_min_ms, reconnect_max_secs, renew_at_fraction, spool_max_bytes,
        files.mode, files.watch, files.recursive, files.exclude, files.hash_max_bytes,
        process.mode, process.argv_max_bytes, process.hash_max_bytes, process.poll_interval_ms,
        network.mode, network.dns_wait_ms, investigation.max_fetch_bytes,
        edge.max_actions_per_minute, prevention.mode, prevention.hash_max_bytes,
        prevention.cache_entries, tamper.protect;
);

/// A setting a new file changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.from, self.to)
    }
}

/// What a valid new file does to the configuration in force.
#[derive(Debug)]
pub struct Plan {
    /// The configuration to put in force: the current one with the live settings of the new.
    pub in_force: AgentConfig,
    /// Changes put in force now.
    pub applied: Vec<Change>,
    /// Changes that wait for a restart.
    pub need_restart: Vec<Change>,
}

/// Compares `new` with `current` setting by setting.
pub fn plan(current: &AgentConfig, new: &AgentConfig) -> Plan {
    let mut plan = Plan {
        in_force: current.clone(),
        applied: Vec::new(),
        need_restart: Vec::new(),
    };
    for key in KEYS {
        let (from, to) = ((key.show)(current), (key.show)(new));
        if from == to {
            continue;
        }
        let change = Change {
            key: key.name,
            from,
            to,
        };
        match key.take {
            Some(take) => {
                take(&mut plan.in_force, new);
                plan.applied.push(change);
            }
            None => plan.need_restart.push(change),
        }
    }
    plan
}

/// What a reload acts on: the running agent, or a fake in tests.
pub trait Target {
    /// The configuration in force.
    fn in_force(&self) -> Arc<AgentConfig>;
    fn put_in_force(&self, config: AgentConfig);
    /// Reports to the controller.
    fn notice(&self, kind: &str, message: String);
}

impl Target for Uplink {
    fn in_force(&self) -> Arc<AgentConfig> {
        self.config.load()
    }
    fn put_in_force(&self, config: AgentConfig) {
        Uplink::put_in_force(self, config);
    }
    fn notice(&self, kind: &str, message: String) {
        self.telemetry.emitter().notice(kind, message);
    }
}

/// Reads `path` again and puts what it may change in force; a file that fails leaves
/// everything as it was. Returns the plan it applied.
pub fn reload(target: &impl Target, path: &Path) -> Result<Plan, ConfigError> {
    let file = path.display().to_string();
    let new = match AgentConfig::load(Some(path)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%file, error = %e, "configuration refused; the settings in force stay");
            target.notice("config_refused", format!("configuration refused: {e}"));
            return Err(e);
        }
    };
    let plan = plan(&target.in_force(), &new);
    for c in &plan.need_restart {
        tracing::warn!(key = c.key, from = %c.from, to = %c.to, "{} needs a restart to apply", c.key);
    }
    target.put_in_force(plan.in_force.clone());
    let changed = summary(&plan.applied);
    tracing::info!(%changed, "configuration reloaded from {file}");
    let mut message = format!("configuration reloaded from {file}; changed: {changed}");
    if !plan.need_restart.is_empty() {
        let keys: Vec<&str> = plan.need_restart.iter().map(|c| c.key).collect();
        message.push_str(&format!("; needs a restart to apply: {}", keys.join(", ")));
    }
    target.notice("config_reloaded", message);
    Ok(plan)
}

fn summary(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "nothing".into();
    }
    let shown: Vec<String> = changes.iter().map(Change::to_string).collect();
    shown.join("; ")
}

/// The agent's SIGHUP handler, installed before the agent starts its work so a reload asked
/// for early does not end the process (SIGHUP's default action).
pub struct Hangups(Signal);

impl Hangups {
    /// Starts catching SIGHUP (call inside the runtime).
    pub fn catch() -> std::io::Result<Self> {
        signal(SignalKind::hangup()).map(Self)
    }

    /// Reloads `path` into `up` at every SIGHUP, for as long as the agent runs.
    pub async fn reload_into(mut self, up: Arc<Uplink>, path: Option<PathBuf>) {
        while self.0.recv().await.is_some() {
            let Some(path) = path.clone() else {
                tracing::info!(
                    "SIGHUP: the agent runs on its defaults (no --config); nothing to reload"
                );
                continue;
            };
            let up = up.clone();
            let _ = tokio::task::spawn_blocking(move || reload(up.as_ref(), &path)).await;
        }
    }
}

#[cfg(test)]
mod tests;
