//! Controller configuration: `controller.toml` in the data directory (written by `init`), or
//! a file given with `--config` (the packaged `/etc/cordon/controller.toml`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

pub const CONFIG_FILE: &str = "controller.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Address the gRPC listener binds (agents, admins and enrolment share it).
    pub listen: SocketAddr,
    /// URL agents and admins use to reach this controller.
    pub url: String,
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

pub use cordon_proto::config::ConfigError;

impl ControllerConfig {
    pub fn new(listen: SocketAddr, url: String) -> Self {
        Self {
            listen,
            url,
            names: Vec::new(),
            agent_cert_ttl_secs: default_agent_cert_ttl(),
            command_ttl_secs: default_command_ttl(),
            agent_idle_timeout_secs: default_idle(),
        }
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
        if self.agent_cert_ttl_secs < 10 {
            return Err("agent_cert_ttl_secs must be at least 10".into());
        }
        if self.command_ttl_secs == 0 {
            return Err("command_ttl_secs must be positive".into());
        }
        if self.agent_idle_timeout_secs < 5 {
            return Err("agent_idle_timeout_secs must be at least 5".into());
        }
        Ok(())
    }
}
