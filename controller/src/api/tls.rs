//! The controller's TLS endpoint: one rustls server config for all three services. Client
//! certificates are optional at the handshake (enrolment has none yet) but, when presented,
//! must chain to the CA and must not belong to a revoked agent; each service then checks the
//! identity it needs. Accepted connections are handed to tonic as a stream, each under the
//! connection caps and deadlines of [`Gate`].

use super::conn::Conn;
use super::tally::Tally;
use crate::ca::{Peer, peer_identity};
use crate::core::admission::{Admission, Ticket};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// Agent ids whose certificates the handshake refuses.
pub use crate::core::RevokedSet;
use crate::core::Roster;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("building the client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

#[derive(Debug)]
struct RevocationAwareVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: RevokedSet,
    roster: Roster,
}

impl ClientCertVerifier for RevocationAwareVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match peer_identity(end_entity) {
            Ok((Peer::Agent { id }, _)) => {
                let revoked = self
                    .revoked
                    .read()
                    .map(|set| set.contains(&id))
                    .unwrap_or(true);
                if revoked {
                    tracing::warn!(agent_id = %id, "refused handshake from a revoked agent");
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
                }
            }
            Ok((Peer::Principal { kind, name, .. }, _)) => {
                let now = cordon_proto::time::now_ms();
                if let Err(why) = self.roster.check(kind, &name, now) {
                    tracing::warn!(name = %name, kind = %kind, why = %why, "refused handshake from a principal who may not act");
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
                }
            }
            Err(_) => {}
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The server config: our certificate chain (leaf then CA, so agents can pin the CA), and the
/// revocation-aware client verifier.
pub fn server_config(
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    revoked: RevokedSet,
    roster: Roster,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let verifier = Arc::new(RevocationAwareVerifier {
        inner,
        revoked,
        roster,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// What the listener enforces on each connection (`[listener]` in controller.toml).
pub struct Gate {
    pub admission: Arc<Admission>,
    /// Where refused connections are counted.
    pub refusals: Arc<Tally>,
    pub handshake_timeout: Duration,
    pub first_request_timeout: Duration,
}

/// A connection the services are handed.
pub type Accepted = Conn<TlsStream<TcpStream>>;

/// Accepts TCP connections; admits each under the connection caps (closing it at once past
/// them) and runs its TLS handshake in its own task (so a slow or hostile client cannot stall
/// the accept loop) under the handshake deadline, yielding the established connections.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    gate: Arc<Gate>,
) -> ReceiverStream<Result<Accepted, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                a = listener.accept() => a,
            };
            let (sock, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let ticket = match gate.admission.admit(addr.ip()) {
                Ok(t) => t,
                Err(refused) => {
                    gate.refusals.note(refused.reason(), addr.ip());
                    continue;
                }
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(handshake(
                sock,
                addr.ip(),
                ticket,
                acceptor.clone(),
                gate.clone(),
                tx.clone(),
            ));
        }
    });
    ReceiverStream::new(rx)
}

/// Runs one connection's TLS handshake and hands it on with its first-request deadline.
async fn handshake(
    sock: TcpStream,
    peer: IpAddr,
    ticket: Ticket,
    acceptor: TlsAcceptor,
    gate: Arc<Gate>,
    tx: mpsc::Sender<Result<Accepted, std::io::Error>>,
) {
    let first_request_by = tokio::time::Instant::now() + gate.first_request_timeout;
    match tokio::time::timeout(gate.handshake_timeout, acceptor.accept(sock)).await {
        Ok(Ok(stream)) => {
            let conn = Conn::new(
                stream,
                ticket,
                first_request_by,
                peer,
                gate.refusals.clone(),
            );
            let _ = tx.send(Ok(conn)).await;
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake refused");
            gate.refusals.note("handshake_failed", peer);
        }
        Err(_) => gate.refusals.note("handshake_timeout", peer),
    }
}
