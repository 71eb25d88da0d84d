//! The admin credential file (`admin.toml`): written by `cordon-controller init`, read by
//! `cordonctl` and the tools that talk to the admin service. Both ends share this one
//! definition, so the file cannot drift between writer and reader.

use crate::identity::parse_fingerprint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What an administrator needs to reach the controller: where it is, the CA it must present
/// (pinned by fingerprint) and the admin certificate and key. Relative paths are taken from
/// the file's own directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Controller URL, https://HOST:PORT.
    pub controller: String,
    /// `sha256:HEX` of the CA certificate; the file below must match it.
    pub ca_fingerprint: String,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why an admin file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AdminFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid admin file: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {reason}")]
    Fingerprint { path: PathBuf, reason: String },
}

impl AdminConfig {
    /// Reads and checks an admin file; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, AdminFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| AdminFileError::Read {
            path: path.into(),
            source,
        })?;
        let mut cfg: Self = toml::from_str(&text).map_err(|source| AdminFileError::Parse {
            path: path.into(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.ca_cert, &mut cfg.cert, &mut cfg.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        cfg.ca_fingerprint = parse_fingerprint(&cfg.ca_fingerprint).map_err(|reason| {
            AdminFileError::Fingerprint {
                path: path.into(),
                reason,
            }
        })?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file_and_the_fingerprint_is_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.toml");
        let fp = format!("SHA256:{}", "AB".repeat(32)).replacen("SHA256", "sha256", 1);
        std::fs::write(
            &path,
            format!(
                "controller = \"https://c:1\"\nca_fingerprint = \"{fp}\"\n\
                 ca_cert = \"ca.pem\"\ncert = \"/abs/admin.pem\"\nkey = \"admin.key\"\n"
            ),
        )
        .unwrap();
        let cfg = AdminConfig::load(&path).unwrap();
        assert_eq!(cfg.ca_cert, dir.path().join("ca.pem"));
        assert_eq!(cfg.cert, PathBuf::from("/abs/admin.pem"));
        assert_eq!(cfg.ca_fingerprint, format!("sha256:{}", "ab".repeat(32)));
    }

    #[test]
    fn unknown_settings_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.toml");
        std::fs::write(&path, "controler = \"x\"\n").unwrap();
        let err = AdminConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("admin.toml") && err.contains("controler"),
            "{err}"
        );
    }
}
