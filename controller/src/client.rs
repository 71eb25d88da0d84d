//! The admin credential (`admin.toml`) and the mTLS connection `cordonctl` makes with it.

use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::channel::{ChannelError, tls_channel};
use cordon_proto::identity::{fingerprint, parse_fingerprint};
use cordon_proto::limits::ADMIN_MAX_MESSAGE;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Channel, Identity};

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

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
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
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

impl AdminConfig {
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClientError::Read {
            path: path.into(),
            source,
        })?;
        let mut cfg: Self = toml::from_str(&text).map_err(|source| ClientError::Parse {
            path: path.into(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.ca_cert, &mut cfg.cert, &mut cfg.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        cfg.ca_fingerprint =
            parse_fingerprint(&cfg.ca_fingerprint).map_err(ClientError::Invalid)?;
        Ok(cfg)
    }

    /// Connects with the admin certificate, after checking the CA file against the pinned
    /// fingerprint.
    pub async fn connect(&self) -> Result<AdminServiceClient<Channel>, ClientError> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| ClientError::Read {
                path: p.clone(),
                source,
            })
        };
        let ca_pem = read(&self.ca_cert)?;
        let ca_der = crate::ca::pem_to_der(&String::from_utf8_lossy(&ca_pem)).map_err(|_| {
            ClientError::Invalid(format!("{} holds no certificate", self.ca_cert.display()))
        })?;
        if fingerprint(&ca_der) != self.ca_fingerprint {
            return Err(ClientError::Invalid(format!(
                "{} does not match the pinned CA fingerprint {}",
                self.ca_cert.display(),
                self.ca_fingerprint
            )));
        }
        let channel = tls_channel(
            &self.controller,
            Certificate::from_pem(ca_pem),
            Some(Identity::from_pem(read(&self.cert)?, read(&self.key)?)),
        )
        .await?;
        Ok(AdminServiceClient::new(channel)
            .max_decoding_message_size(ADMIN_MAX_MESSAGE)
            .max_encoding_message_size(ADMIN_MAX_MESSAGE))
    }
}
