//! The agent's state directory: its private key (0600), its certificate, the pinned CA and
//! command-signing key, and `agent.toml` with its identity. Written at enrolment, updated at
//! renewal, never sent anywhere.

use cordon_proto::files::{PRIVATE, PUBLIC, atomic_write, private_dir};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default state directory for an agent run as a system service.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cordon-agent";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0} is not enrolled: run `cordon-agent enroll` first")]
    NotEnrolled(PathBuf),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What `agent.toml` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub agent_id: String,
    /// The controller URL the agent tries first (the one it enrolled through).
    pub controller: String,
    /// The other controllers (replicas) it fails over to, in order: those given at
    /// enrolment and those the controller named. Absent from state files of older agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_urls: Vec<String>,
    pub ca_fingerprint: String,
    /// Hex of the raw Ed25519 public key that signs commands.
    pub command_signing_key: String,
    pub enrolled_at_ms: i64,
    pub cert_issued_at_ms: i64,
    pub cert_expires_at_ms: i64,
}

impl Identity {
    /// Every controller URL, the enrolled one first, without repeats.
    pub fn controller_urls(&self) -> Vec<String> {
        let mut urls = vec![self.controller.clone()];
        for u in &self.replica_urls {
            if !urls.contains(u) {
                urls.push(u.clone());
            }
        }
        urls
    }
}

#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn identity_file(&self) -> PathBuf {
        self.dir.join("agent.toml")
    }
    pub fn ledger(&self) -> PathBuf {
        self.dir.join("commands.json")
    }

    pub fn is_enrolled(&self) -> bool {
        self.identity_file().exists()
    }

    pub fn create(&self) -> Result<(), StateError> {
        private_dir(&self.dir).map_err(|source| StateError::Write {
            path: self.dir.clone(),
            source,
        })
    }

    pub fn identity(&self) -> Result<Identity, StateError> {
        let path = self.identity_file();
        if !path.exists() {
            return Err(StateError::NotEnrolled(self.dir.clone()));
        }
        let text = self.read(&path)?;
        toml::from_str(&text).map_err(|e| StateError::Invalid {
            path,
            message: e.to_string(),
        })
    }

    pub fn save_identity(&self, id: &Identity) -> Result<(), StateError> {
        let text = toml::to_string_pretty(id).map_err(|e| StateError::Invalid {
            path: self.identity_file(),
            message: e.to_string(),
        })?;
        self.write(&self.identity_file(), text.as_bytes(), PRIVATE)
    }

    pub fn save_key(&self, pem: &str) -> Result<(), StateError> {
        self.write(&self.key(), pem.as_bytes(), PRIVATE)
    }

    pub fn save_cert(&self, pem: &str) -> Result<(), StateError> {
        self.write(&self.cert(), pem.as_bytes(), PUBLIC)
    }

    pub fn save_ca(&self, pem: &str) -> Result<(), StateError> {
        self.write(&self.ca(), pem.as_bytes(), PUBLIC)
    }

    pub fn read(&self, path: &Path) -> Result<String, StateError> {
        std::fs::read_to_string(path).map_err(|source| StateError::Read {
            path: path.into(),
            source,
        })
    }

    pub fn write(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
        atomic_write(path, bytes, mode).map_err(|source| StateError::Write {
            path: path.into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "agent_id = \"a1\"\ncontroller = \"https://ctl:7443\"\n\
        ca_fingerprint = \"sha256:00\"\ncommand_signing_key = \"00\"\n\
        enrolled_at_ms = 1\ncert_issued_at_ms = 1\ncert_expires_at_ms = 2\n";

    #[test]
    fn state_files_without_replicas_still_load_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        std::fs::write(state.identity_file(), OLD).unwrap();
        let mut id = state.identity().unwrap();
        assert_eq!(id.controller_urls(), ["https://ctl:7443"]);
        state.save_identity(&id).unwrap();
        let text = std::fs::read_to_string(state.identity_file()).unwrap();
        assert!(!text.contains("replica_urls"), "{text}");
        id.replica_urls = vec!["https://b:7443".into(), "https://ctl:7443".into()];
        state.save_identity(&id).unwrap();
        assert_eq!(
            state.identity().unwrap().controller_urls(),
            ["https://ctl:7443", "https://b:7443"]
        );
        std::fs::write(state.identity_file(), format!("{OLD}bogus = 1\n")).unwrap();
        assert!(state.identity().unwrap_err().to_string().contains("bogus"));
    }
}
