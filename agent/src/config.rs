//! Agent configuration (`--config FILE`, TOML). Every setting has a default, so the agent runs
//! without a file; unknown keys are errors so typos do not pass silently.

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Seconds between heartbeats on the stream.
    pub heartbeat_interval_secs: u64,
    /// First reconnect delay after a failure, in milliseconds.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, in seconds.
    pub reconnect_max_secs: u64,
    /// Renew the client certificate once this fraction of its lifetime has passed.
    pub renew_at_fraction: f64,
    /// Most bytes the telemetry spool keeps on disk while the controller is unreachable;
    /// past it the oldest events are dropped and counted.
    pub spool_max_bytes: u64,
    /// Containment settings.
    pub containment: ContainmentConfig,
    /// The file sensor.
    pub files: crate::sensors::file::FileSensorConfig,
    /// The process sensor.
    pub process: crate::sensors::process::ProcessSensorConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainmentConfig {
    /// DNS resolvers that stay reachable while isolated (port 53, UDP and TCP).
    pub dns_resolvers: Vec<std::net::IpAddr>,
    /// Keep DHCP (v4 and v6) working while isolated.
    pub allow_dhcp: bool,
    /// Process names (comm) or executable paths that are never killed.
    pub protected_processes: Vec<String>,
    /// How often the controller's addresses are re-resolved while isolated.
    pub controller_refresh_secs: u64,
    /// How long the post-isolation reachability check waits for the controller.
    pub verify_timeout_ms: u64,
}

impl Default for ContainmentConfig {
    fn default() -> Self {
        Self {
            dns_resolvers: Vec::new(),
            allow_dhcp: false,
            protected_processes: vec!["systemd".into(), "sshd".into(), "cordon-agent".into()],
            controller_refresh_secs: 60,
            verify_timeout_ms: 3000,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_secs: 10,
            reconnect_min_ms: 500,
            reconnect_max_secs: 30,
            renew_at_fraction: 2.0 / 3.0,
            spool_max_bytes: 512 * 1024 * 1024,
            containment: ContainmentConfig::default(),
            files: Default::default(),
            process: Default::default(),
        }
    }
}

pub use cordon_proto::config::ConfigError;

impl AgentConfig {
    /// Loads `path`, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let cfg: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.heartbeat_interval_secs) {
            return Err("heartbeat_interval_secs must be between 1 and 3600".into());
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_secs * 1000 {
            return Err("reconnect_min_ms must be positive and at most reconnect_max_secs".into());
        }
        if !(0.1..=0.95).contains(&self.renew_at_fraction) {
            return Err("renew_at_fraction must be between 0.1 and 0.95".into());
        }
        if self.spool_max_bytes < 1024 * 1024 {
            return Err("spool_max_bytes must be at least 1 MiB".into());
        }
        self.process.validate()?;
        let c = &self.containment;
        if c.controller_refresh_secs == 0 || c.verify_timeout_ms == 0 {
            return Err(
                "containment.controller_refresh_secs and verify_timeout_ms must be positive".into(),
            );
        }
        Ok(())
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(&p, "heartbeat_interval_secs = 5\nbogus = 1\n").unwrap();
        let err = AgentConfig::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("bogus") && err.contains("agent.toml"), "{err}");
        std::fs::write(&p, "heartbeat_interval_secs = 0\n").unwrap();
        assert!(
            AgentConfig::load(Some(&p))
                .unwrap_err()
                .to_string()
                .contains("heartbeat")
        );
        std::fs::write(&p, "heartbeat_interval_secs = 2\n").unwrap();
        assert_eq!(
            AgentConfig::load(Some(&p)).unwrap().heartbeat_interval_secs,
            2
        );
    }
}
