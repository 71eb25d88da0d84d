//! `cordon-controller init`: creates a controller's data directory with a CA, a server
//! certificate, the command-signing key, an admin credential and the config files.

use crate::ca::Ca;
use crate::ca::signing::CommandSigner;
use crate::config::{CONFIG_FILE, ControllerConfig};
use cordon_proto::admin::AdminConfig;
use cordon_proto::files::{PRIVATE, PUBLIC, atomic_write, private_dir};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where each file of a data directory lives.
pub struct Layout {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub signing_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub admin_config: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            signing_key: dir.join("signing.key"),
            admin_cert: dir.join("admin.pem"),
            admin_key: dir.join("admin.key"),
            admin_config: dir.join("admin.toml"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already holds a controller (found {1}); refusing to overwrite it")]
    Exists(PathBuf, PathBuf),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Signing(#[from] crate::ca::signing::SigningError),
    #[error("invalid settings: {0}")]
    Invalid(String),
}

/// What `init` made, for the caller to report.
pub struct Initialised {
    pub url: String,
    pub ca_fingerprint: String,
    pub admin_config: PathBuf,
}

const SERVER_CERT_TTL: Duration = Duration::from_secs(2 * 365 * 24 * 3600);

/// The names the server certificate covers when none are given.
fn default_names(listen: &SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.insert(0, ip.to_string());
    }
    names
}

fn url_for(name: &str, port: u16) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("https://[{v6}]:{port}"),
        _ => format!("https://{name}:{port}"),
    }
}

/// Creates a controller in `data_dir` listening on `listen`, with `names` in its server
/// certificate (defaults if empty), and writes `DATA_DIR/controller.toml`.
pub fn init(
    data_dir: &Path,
    listen: SocketAddr,
    names: Vec<String>,
) -> Result<Initialised, InitError> {
    let names = if names.is_empty() {
        default_names(&listen)
    } else {
        names
    };
    let mut config = ControllerConfig::new(listen, url_for(&names[0], listen.port()));
    config.names = names;
    // The web console on loopback, the port after the gRPC listener's.
    config.console.listen = listen
        .port()
        .checked_add(1)
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    init_with(data_dir, &config, true)
}

/// Whether `data_dir` already holds a controller's keys.
pub fn is_initialised(data_dir: &Path) -> bool {
    let l = Layout::new(data_dir);
    l.ca_cert.exists() && l.ca_key.exists() && l.signing_key.exists()
}

/// Creates the PKI and admin credential in `data_dir` for `config`; with `write_config`, also
/// `DATA_DIR/controller.toml` (a packaged controller keeps its settings in /etc instead).
pub fn init_with(
    data_dir: &Path,
    config: &ControllerConfig,
    write_config: bool,
) -> Result<Initialised, InitError> {
    let l = Layout::new(data_dir);
    for existing in [&l.ca_cert, &l.ca_key, &l.signing_key] {
        if existing.exists() {
            return Err(InitError::Exists(data_dir.into(), existing.clone()));
        }
    }
    config.validate().map_err(InitError::Invalid)?;
    let names = if config.names.is_empty() {
        default_names(&config.listen)
    } else {
        config.names.clone()
    };
    let url = config.url.clone();

    let write = |path: &Path, bytes: &[u8], mode: u32| {
        atomic_write(path, bytes, mode).map_err(|source| InitError::Write {
            path: path.into(),
            source,
        })
    };
    private_dir(data_dir).map_err(|source| InitError::Write {
        path: data_dir.into(),
        source,
    })?;
    let dir = data_dir.canonicalize().map_err(|source| InitError::Write {
        path: data_dir.into(),
        source,
    })?;
    let l = Layout::new(&dir);

    let (ca, ca_key) = Ca::create("Cordon CA")?;
    write(&l.ca_key, ca_key.as_bytes(), PRIVATE)?;
    write(&l.ca_cert, ca.cert_pem().as_bytes(), PUBLIC)?;
    let server = ca.issue_server(&names, SERVER_CERT_TTL)?;
    write(&l.server_key, server.key_pem.as_bytes(), PRIVATE)?;
    write(&l.server_cert, server.cert_pem.as_bytes(), PUBLIC)?;
    let (_, signing) = CommandSigner::generate()?;
    write(&l.signing_key, &signing, PRIVATE)?;
    // Short-lived like every person's credential: cordonctl renews it when used.
    let admin_ttl = Duration::from_secs(config.people.credential_ttl_secs);
    write_admin_credential(&l, &ca, &url, "admin", admin_ttl)?;
    if write_config {
        let text = format!(
            "# Cordon controller settings (written by `cordon-controller init`).\n{}",
            toml::to_string_pretty(config).map_err(|e| InitError::Invalid(e.to_string()))?
        );
        write(&dir.join(CONFIG_FILE), text.as_bytes(), PUBLIC)?;
    }
    Ok(Initialised {
        url,
        ca_fingerprint: ca.fingerprint(),
        admin_config: l.admin_config,
    })
}

/// Writes a person's credential (key, certificate and `admin.toml`) where `init` writes the
/// first admin's; returns the certificate's serial.
pub fn write_admin_credential(
    l: &Layout,
    ca: &Ca,
    url: &str,
    name: &str,
    ttl: Duration,
) -> Result<String, InitError> {
    let write = |path: &Path, bytes: &[u8], mode: u32| {
        atomic_write(path, bytes, mode).map_err(|source| InitError::Write {
            path: path.into(),
            source,
        })
    };
    let admin = ca.issue_admin(name, ttl)?;
    write(&l.admin_key, admin.key_pem.as_bytes(), PRIVATE)?;
    write(&l.admin_cert, admin.cert_pem.as_bytes(), PRIVATE)?;
    let admin_cfg = AdminConfig {
        controller: url.to_string(),
        ca_fingerprint: ca.fingerprint(),
        ca_cert: l.ca_cert.clone(),
        cert: l.admin_cert.clone(),
        key: l.admin_key.clone(),
    };
    let text = toml::to_string_pretty(&admin_cfg).map_err(|e| InitError::Invalid(e.to_string()))?;
    write(&l.admin_config, text.as_bytes(), PRIVATE)?;
    Ok(admin.serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_everything_once_with_private_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let done = init(dir.path(), "127.0.0.1:7443".parse().unwrap(), vec![]).unwrap();
        assert_eq!(done.url, "https://localhost:7443");
        let l = Layout::new(dir.path());
        for key in [&l.ca_key, &l.server_key, &l.signing_key, &l.admin_key] {
            assert_eq!(
                std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
                0o600,
                "{key:?}"
            );
        }
        let cfg = AdminConfig::load(&l.admin_config).unwrap();
        assert_eq!(cfg.ca_fingerprint, done.ca_fingerprint);
        ControllerConfig::load(dir.path()).unwrap();
        assert!(matches!(
            init(dir.path(), "127.0.0.1:1".parse().unwrap(), vec![]),
            Err(InitError::Exists(..))
        ));
    }
}
