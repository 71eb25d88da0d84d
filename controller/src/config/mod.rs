//! Controller configuration: `controller.toml` in the data directory (written by `init`), or
//! a file given with `--config` (the packaged `/etc/cordon/controller.toml`).

use crate::notify::NotifyConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

mod sections;
#[cfg(test)]
mod tests;

pub use sections::*;

pub const CONFIG_FILE: &str = "controller.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Address the gRPC listener binds (agents, admins and enrolment share it).
    pub listen: SocketAddr,
    /// URL agents and admins use to reach this controller.
    pub url: String,
    /// The URLs of the other replicas on the same store, which agents fail over to: sent to
    /// every agent at enrolment with `url`, and shown in the enrolment command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_urls: Vec<String>,
    /// DNS names and IP addresses for the server certificate, used when the PKI is created.
    #[serde(default)]
    pub names: Vec<String>,
    /// Lifetime of agent client certificates; agents renew at two thirds of it.
    #[serde(default = "default_agent_cert_ttl")]
    pub agent_cert_ttl_secs: u64,
    /// Default lifetime of a command before it expires unexecuted.
    #[serde(default = "default_command_ttl")]
    pub command_ttl_secs: u64,
    /// Close an agent's stream after this long without any message from it.
    #[serde(default = "default_idle")]
    pub agent_idle_timeout_secs: u64,
    /// How long a host may report an isolation other than the desired one, with no isolate
    /// or release command of it open, before the controller orders the desired state again
    /// (0: never; the drift is only shown).
    #[serde(default = "default_reconcile")]
    pub isolation_reconcile_secs: u64,
    /// `[listener]`: deadlines and caps for connections.
    #[serde(default)]
    pub listener: ListenerConfig,
    /// `[enrolment]`: how often one source may try to enrol.
    #[serde(default)]
    pub enrolment: EnrolmentConfig,
    /// `[events]`: how much stored telemetry is kept.
    #[serde(default)]
    pub events: EventRetention,
    /// `[detection]`: rules loaded at start, and how alerts are grouped.
    #[serde(default)]
    pub detection: DetectionConfig,
    /// `[playbooks]`: automated response and its guards.
    #[serde(default)]
    pub playbooks: crate::playbook::PlaybookConfig,
    /// `[notify]`: webhooks that playbooks notify.
    #[serde(default, skip_serializing_if = "NotifyConfig::is_empty")]
    pub notify: NotifyConfig,
    /// `[people]`: credentials of people and service accounts.
    #[serde(default)]
    pub people: PeopleConfig,
    /// `[console]`: the web console.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// `[investigation]`: what fetches may bring.
    #[serde(default, skip_serializing_if = "InvestigationConfig::is_default")]
    pub investigation: InvestigationConfig,
    /// `[store]`: where state is kept (SQLite in the data directory unless a URL is given).
    #[serde(default, skip_serializing_if = "StoreConfig::is_default")]
    pub store: StoreConfig,
    /// Address of the plain-HTTP health endpoint (`GET /healthz`: 200 while the store
    /// answers, 503 when it does not), for load balancers; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_listen: Option<SocketAddr>,
}

fn default_agent_cert_ttl() -> u64 {
    24 * 3600
}
fn default_command_ttl() -> u64 {
    3600
}
fn default_idle() -> u64 {
    90
}
fn default_reconcile() -> u64 {
    30
}

pub use cordon_proto::config::ConfigError;

impl ControllerConfig {
    pub fn new(listen: SocketAddr, url: String) -> Self {
        Self {
            listen,
            url,
            replica_urls: Vec::new(),
            names: Vec::new(),
            agent_cert_ttl_secs: default_agent_cert_ttl(),
            command_ttl_secs: default_command_ttl(),
            agent_idle_timeout_secs: default_idle(),
            isolation_reconcile_secs: default_reconcile(),
            listener: ListenerConfig::default(),
            enrolment: EnrolmentConfig::default(),
            events: EventRetention::default(),
            detection: DetectionConfig::default(),
            playbooks: Default::default(),
            notify: NotifyConfig::default(),
            people: PeopleConfig::default(),
            console: ConsoleConfig::default(),
            store: StoreConfig::default(),
            investigation: InvestigationConfig::default(),
            health_listen: None,
        }
    }

    /// Every URL of this controller and its replicas, its own first: what agents fail over
    /// between.
    pub fn controller_urls(&self) -> Vec<String> {
        std::iter::once(&self.url)
            .chain(&self.replica_urls)
            .cloned()
            .collect()
    }

    /// Loads `DATA_DIR/controller.toml`.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        Self::load_file(&data_dir.join(CONFIG_FILE))
    }

    /// Loads `config` if given, else `DATA_DIR/controller.toml`.
    pub fn load_from(data_dir: &Path, config: Option<&Path>) -> Result<Self, ConfigError> {
        match config {
            Some(path) => Self::load_file(path),
            None => Self::load(data_dir),
        }
    }

    pub fn load_file(path: &Path) -> Result<Self, ConfigError> {
        cordon_proto::config::load(path, Self::validate)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.url.starts_with("https://") {
            return Err(format!("url {:?} must start with https://", self.url));
        }
        if !self.replica_urls.is_empty() {
            let urls = cordon_proto::channel::controller_urls(&self.replica_urls)
                .map_err(|e| format!("replica_urls: {e}"))?;
            let own = self.url.trim_end_matches('/');
            if urls.len() != self.replica_urls.len() || urls.iter().any(|u| u == own) {
                return Err("replica_urls: a URL is listed twice (or is url itself)".into());
            }
        }
        if self.agent_cert_ttl_secs < 10 {
            return Err("agent_cert_ttl_secs must be at least 10".into());
        }
        if self.command_ttl_secs == 0 {
            return Err("command_ttl_secs must be positive".into());
        }
        if self.agent_idle_timeout_secs < 5 {
            return Err("agent_idle_timeout_secs must be at least 5".into());
        }
        if (1..5).contains(&self.isolation_reconcile_secs) {
            return Err("isolation_reconcile_secs must be 0 (off) or at least 5".into());
        }
        self.listener.validate()?;
        self.enrolment.validate()?;
        self.events.validate()?;
        self.detection.validate()?;
        self.playbooks.validate()?;
        self.people.validate()?;
        self.console.validate()?;
        self.store.validate()?;
        if self.console.listen == Some(self.listen) {
            return Err("console.listen must be another address than listen".into());
        }
        self.notify.validate()
    }
}
