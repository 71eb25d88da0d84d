//! The admin credential (`admin.toml`, defined in `cordon_proto::admin`) and the mTLS
//! connection made with it: the CA file is checked against the pinned fingerprint before
//! anything is sent.

pub use cordon_proto::admin::{AdminConfig, AdminFileError};
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::channel::{ChannelError, tls_channel};
use cordon_proto::identity::fingerprint;
use cordon_proto::limits::ADMIN_MAX_MESSAGE;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Channel, Identity};

/// A client of the controller's admin service.
pub type AdminClient = AdminServiceClient<Channel>;

/// Why cordonctl could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    File(#[from] AdminFileError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} does not match the pinned CA fingerprint {pinned}")]
    WrongCa { path: PathBuf, pinned: String },
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Connects with the admin certificate, after checking the CA file against the pinned
/// fingerprint.
pub async fn connect(cfg: &AdminConfig) -> Result<AdminClient, ClientError> {
    let ca_pem = read(&cfg.ca_cert)?;
    let ca_der = first_certificate(&ca_pem).ok_or_else(|| ClientError::NoCertificate {
        path: cfg.ca_cert.clone(),
    })?;
    if fingerprint(&ca_der) != cfg.ca_fingerprint {
        return Err(ClientError::WrongCa {
            path: cfg.ca_cert.clone(),
            pinned: cfg.ca_fingerprint.clone(),
        });
    }
    let channel = tls_channel(
        &cfg.controller,
        Certificate::from_pem(ca_pem),
        Some(Identity::from_pem(read(&cfg.cert)?, read(&cfg.key)?)),
    )
    .await?;
    Ok(AdminServiceClient::new(channel)
        .max_decoding_message_size(ADMIN_MAX_MESSAGE)
        .max_encoding_message_size(ADMIN_MAX_MESSAGE))
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.into(),
        source,
    })
}

/// The DER bytes of the first certificate in a PEM text.
pub(crate) fn first_certificate(pem_text: &[u8]) -> Option<Vec<u8>> {
    pem::parse_many(pem_text)
        .ok()?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_certificate_is_found_after_other_blocks() {
        let key = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2]));
        let cert = pem::encode(&pem::Pem::new("CERTIFICATE", vec![3, 4, 5]));
        let text = format!("{key}{cert}");
        assert_eq!(first_certificate(text.as_bytes()), Some(vec![3, 4, 5]));
        assert_eq!(first_certificate(key.as_bytes()), None);
        assert_eq!(first_certificate(b"not pem"), None);
    }
}
