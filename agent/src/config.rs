//! Agent configuration (`--config FILE`, TOML). Every setting has a default, so the agent runs
//! without a file; unknown keys are errors so typos do not pass silently.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Controller URLs (a controller and its replicas) to use instead of those recorded at
    /// enrolment, tried in this order; the agent fails over between them.
    pub controllers: Vec<String>,
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
    /// Longest a command's action may run before it ends as failed.
    pub command_timeout_secs: u64,
    /// Containment settings.
    pub containment: ContainmentConfig,
    /// The file sensor.
    pub files: crate::sensors::file::FileSensorConfig,
    /// The process sensor.
    pub process: crate::sensors::process::ProcessSensorConfig,
    /// The network sensor (connections and DNS).
    pub network: crate::sensors::network::NetworkSensorConfig,
    /// Investigation: collections and file fetch.
    pub investigation: InvestigationConfig,
    /// Edge policies: what the agent does on its own when an event matches.
    pub edge: EdgeConfig,
    /// Exec prevention (block-listed files denied at exec).
    pub prevention: crate::prevent::PreventionConfig,
    /// Tamper protection of the agent's binary and state.
    pub tamper: crate::prevent::TamperConfig,
    /// The file this configuration was read from (the agent never quarantines it).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Most actions (kills, quarantines, blocks) the edge policies may take in any minute;
    /// past it they only report, and each event says so.
    pub max_actions_per_minute: u32,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            max_actions_per_minute: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainmentConfig {
    /// DNS resolvers that stay reachable while isolated (port 53, UDP and TCP).
    pub dns_resolvers: Vec<std::net::IpAddr>,
    /// Keep DHCP (v4 and v6) working while isolated.
    pub allow_dhcp: bool,
    /// Executables (absolute paths) whose processes are never killed, matched by the device
    /// and inode of what the process runs, never by its name.
    pub protected_processes: Vec<PathBuf>,
    /// Files never quarantined without `--force`, matched by device and inode (besides the
    /// agent's own files, the libraries it runs on and the nft it uses, always protected).
    pub protected_files: Vec<PathBuf>,
    /// How often the controller's addresses are re-resolved while isolated.
    pub controller_refresh_secs: u64,
    /// How long the post-isolation reachability check waits for the controller.
    pub verify_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvestigationConfig {
    /// The largest file a fetch copies (a command may ask for less, never more).
    pub max_fetch_bytes: u64,
}

impl Default for InvestigationConfig {
    fn default() -> Self {
        Self {
            max_fetch_bytes: crate::collect::fetch::DEFAULT_MAX_BYTES,
        }
    }
}

/// The host's files whose loss would lock people out or break the host or the agent.
const DEFAULT_PROTECTED_FILES: [&str; 16] = [
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/pam.d/common-auth",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/ld.so.cache",
    "/etc/fstab",
    "/usr/sbin/nft",
    "/usr/lib/systemd/systemd",
    "/usr/sbin/sshd",
    "/usr/bin/sh",
    "/usr/bin/bash",
];

impl ContainmentConfig {
    fn validate(&self) -> Result<(), String> {
        if self.controller_refresh_secs == 0 || self.verify_timeout_ms == 0 {
            return Err(
                "containment.controller_refresh_secs and verify_timeout_ms must be positive".into(),
            );
        }
        for p in &self.protected_processes {
            if !p.is_absolute() {
                return Err(format!(
                    "containment.protected_processes: {:?} is not an absolute path; protected processes are matched by the executable they run (give its path, such as \"/usr/sbin/sshd\"), never by a name, which any process can choose",
                    p.display().to_string()
                ));
            }
        }
        if let Some(p) = self.protected_files.iter().find(|p| !p.is_absolute()) {
            return Err(format!(
                "containment.protected_files: {:?} is not an absolute path",
                p.display().to_string()
            ));
        }
        Ok(())
    }
}

impl Default for ContainmentConfig {
    fn default() -> Self {
        Self {
            dns_resolvers: Vec::new(),
            allow_dhcp: false,
            protected_processes: ["/usr/lib/systemd/systemd", "/usr/sbin/sshd"]
                .map(PathBuf::from)
                .to_vec(),
            protected_files: DEFAULT_PROTECTED_FILES.map(PathBuf::from).to_vec(),
            controller_refresh_secs: 60,
            verify_timeout_ms: 3000,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            controllers: Vec::new(),
            heartbeat_interval_secs: 10,
            reconnect_min_ms: 500,
            reconnect_max_secs: 30,
            renew_at_fraction: 2.0 / 3.0,
            spool_max_bytes: 512 * 1024 * 1024,
            command_timeout_secs: 60,
            containment: ContainmentConfig::default(),
            files: Default::default(),
            process: Default::default(),
            network: Default::default(),
            investigation: Default::default(),
            edge: Default::default(),
            prevention: Default::default(),
            tamper: Default::default(),
            source: None,
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
        let mut cfg: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        cfg.source = Some(path.into());
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.controllers.is_empty() {
            let urls = cordon_proto::channel::controller_urls(&self.controllers)
                .map_err(|e| format!("controllers: {e}"))?;
            if urls.len() != self.controllers.len() {
                return Err("controllers: a URL is listed twice".into());
            }
        }
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
        if !(1..=3600).contains(&self.command_timeout_secs) {
            return Err("command_timeout_secs must be between 1 and 3600".into());
        }
        if self.investigation.max_fetch_bytes == 0 {
            return Err("investigation.max_fetch_bytes must be positive".into());
        }
        self.process.validate()?;
        self.prevention.validate()?;
        self.containment.validate()
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs)
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

    #[test]
    fn protected_processes_must_be_executables_not_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(&p, "[containment]\nprotected_processes = [\"sshd\"]\n").unwrap();
        let err = AgentConfig::load(Some(&p)).unwrap_err().to_string();
        assert!(
            err.contains("\"sshd\" is not an absolute path") && err.contains("never by a name"),
            "{err}"
        );
        std::fs::write(
            &p,
            "[containment]\nprotected_processes = [\"/usr/sbin/sshd\"]\n",
        )
        .unwrap();
        let cfg = AgentConfig::load(Some(&p)).unwrap();
        assert_eq!(cfg.source.as_deref(), Some(p.as_path()));
        AgentConfig::default().validate().unwrap();
    }

    #[test]
    fn controller_lists_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(
            &p,
            "controllers = [\"https://a:7443\", \"https://[fd00::2]:7443\"]\n",
        )
        .unwrap();
        let cfg = AgentConfig::load(Some(&p)).unwrap();
        assert_eq!(
            cfg.controllers,
            ["https://a:7443", "https://[fd00::2]:7443"]
        );
        for (bad, why) in [
            ("[\"http://a:1\"]", "https://HOST:PORT"),
            ("[\"https://a:1\", \"https://a:1\"]", "listed twice"),
        ] {
            std::fs::write(&p, format!("controllers = {bad}\n")).unwrap();
            let err = AgentConfig::load(Some(&p)).unwrap_err().to_string();
            assert!(
                err.contains("controllers") && err.contains(why),
                "{bad}: {err}"
            );
        }
    }
}
