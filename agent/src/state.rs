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
    pub controller: String,
    pub ca_fingerprint: String,
    /// Hex of the raw Ed25519 public key that signs commands.
    pub command_signing_key: String,
    pub enrolled_at_ms: i64,
    pub cert_issued_at_ms: i64,
    pub cert_expires_at_ms: i64,
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
