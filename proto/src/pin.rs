//! Finds the controller's CA by its pinned fingerprint before a first credential exists (an
//! agent's enrolment, a person's login). The controller sends
//! its CA after its server certificate; this verifier accepts the connection only if one of
//! the presented certificates has the pinned SHA-256 and the server certificate verifies
//! against it (name included), and keeps that CA for the real connection.

use crate::identity::fingerprint;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("controller URL {0:?} must look like https://HOST:PORT")]
    BadUrl(String),
    #[error("cannot reach the controller at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("the controller at {url} did not prove the pinned CA {pin}: {source}")]
    Handshake {
        url: String,
        pin: String,
        source: std::io::Error,
    },
    #[error("building TLS settings: {0}")]
    Tls(#[from] rustls::Error),
    #[error("timed out talking to {0}")]
    Timeout(String),
}

#[derive(Debug)]
struct PinnedCa {
    pin: String,
    provider: Arc<CryptoProvider>,
    found: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(
                    "no presented certificate has the pinned CA fingerprint".into(),
                )
            })?
            .clone()
            .into_owned();
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone())?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verified =
            verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        if let Ok(mut slot) = self.found.lock() {
            *slot = Some(ca);
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects to `url`, and returns the CA certificate matching `pin` (`sha256:HEX`) once the
/// server has proven it holds a certificate issued by it.
pub async fn fetch_pinned_ca(url: &str, pin: &str) -> Result<CertificateDer<'static>, PinError> {
    let host = crate::channel::url_host(url).ok_or_else(|| PinError::BadUrl(url.into()))?;
    let uri: tonic::transport::Uri = url.parse().map_err(|_| PinError::BadUrl(url.into()))?;
    let addr = (host.clone(), uri.port_u16().unwrap_or(443));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCa {
        pin: pin.to_string(),
        provider: provider.clone(),
        found: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host).map_err(|_| PinError::BadUrl(url.into()))?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((addr.0.as_str(), addr.1))
            .await
            .map_err(|source| PinError::Connect {
                addr: format!("{}:{}", addr.0, addr.1),
                source,
            })?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|source| PinError::Handshake {
                url: url.into(),
                pin: pin.into(),
                source,
            })
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| PinError::Timeout(url.into()))??;
    let found = verifier.found.lock().ok().and_then(|mut s| s.take());
    found.ok_or_else(|| PinError::Handshake {
        url: url.into(),
        pin: pin.into(),
        source: std::io::Error::other("no CA certificate was captured"),
    })
}
