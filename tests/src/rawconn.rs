//! Raw connections to a controller on loopback, made as a scanner or a flood would make them:
//! TCP from a chosen loopback address, TLS that never sends a request, the HTTP/2 preface
//! alone; and a bounded wait for the server to close one.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What every HTTP/2 client sends first, then an empty SETTINGS frame.
pub const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The address in an `https://IP:PORT` URL.
pub fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .expect("an https://IP:PORT url")
}

/// A TCP connection to `url` from `source` (any 127.0.0.0/8 address is this machine's).
pub async fn tcp_from(source: Ipv4Addr, url: &str) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::from((source, 0))).expect("bind");
    sock.connect(addr_of(url)).await.expect("connect")
}

/// A TLS connection to `url` from `source`, handshake done (verified against `ca_pem`,
/// offering h2), that has sent nothing else.
pub async fn tls_from(source: Ipv4Addr, url: &str, ca_pem: &str) -> TlsStream<TcpStream> {
    tls_with(source, url, ca_pem, rustls::DEFAULT_VERSIONS)
        .await
        .expect("TLS handshake")
}

/// A TLS handshake to `url` from `source` offering only `versions` (and h2); the connection,
/// or the handshake's error.
pub async fn tls_with(
    source: Ipv4Addr,
    url: &str,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("CA");
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::IpAddress(addr_of(url).ip().into());
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp_from(source, url).await)
        .await
}

/// A TLS connection from `source` that has sent the HTTP/2 preface and settings, no request.
pub async fn preface_only_from(source: Ipv4Addr, url: &str, ca_pem: &str) -> TlsStream<TcpStream> {
    let mut conn = tls_from(source, url, ca_pem).await;
    conn.write_all(H2_PREFACE_AND_SETTINGS)
        .await
        .expect("send preface");
    conn.flush().await.expect("flush");
    conn
}

/// Whether the server closes `conn` (end of stream, or an error) within `within`; whatever
/// it sends before is read and dropped.
pub async fn closed_within<S: AsyncRead + Unpin>(conn: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let closed = async {
        for _ in 0..10_000 {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
        false
    };
    tokio::time::timeout(within, closed).await.unwrap_or(false)
}
