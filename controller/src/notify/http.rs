//! One HTTP/1.1 POST over a fresh connection (TCP, or TLS through rustls) under a deadline.
//!
//! hyper's connection-level client, which tonic already builds: a webhook needs no pool, no
//! redirects (a signed body is never re-sent elsewhere), no proxies and no cookies.

use bytes::Bytes;
use http::{Request, Response, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// How much of an error answer's body is kept for the error message.
const BODY_PREFIX: usize = 512;

/// Where a webhook lives, parsed once from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// Host name or IP address (without IPv6 brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header: the URL's authority as written.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Endpoint {
    /// Error messages never repeat the URL: a Slack URL is itself a secret.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("url is not a valid URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("url must use http or https".into()),
        };
        let authority = uri.authority().ok_or("url has no host")?;
        if authority.as_str().contains('@') {
            return Err("url must not carry credentials (user:password@)".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("url has no host".into());
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Self {
            https,
            host: host.into(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().into(),
            path: if path.is_empty() { "/" } else { path }.into(),
        })
    }
}

/// What the receiver answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds, if given that way.
    pub retry_after: Option<Duration>,
    /// The start of the body, for non-2xx answers only (lossy UTF-8).
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connecting to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls { host: String, source: io::Error },
    #[error("https webhook but no TLS configuration")]
    NoTls,
    #[error("HTTP exchange: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
}

impl AttemptError {
    /// Whether trying again could help: not for a certificate the receiver will present
    /// again, nor for a request we cannot even build.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Tls { source, .. } => !source
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_))),
            Self::NoTls | Self::Request(_) => false,
            Self::Timeout(_) | Self::Connect { .. } | Self::Http(_) => true,
        }
    }
}

/// POSTs `body` to `ep` with `headers`. Connecting, the TLS handshake, sending and receiving
/// the status line all fit in `timeout`; reading an error body's start uses what is left.
pub async fn post(
    ep: &Endpoint,
    tls: Option<&Arc<rustls::ClientConfig>>,
    headers: &[(&'static str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, AttemptError> {
    let mut req = Request::post(ep.path.as_str())
        .header(header::HOST, ep.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .header(
            header::USER_AGENT,
            concat!("cordon-controller/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    let req = req.body(Full::new(body))?;

    let deadline = Instant::now() + timeout;
    let (resp, _driver) = timeout_at(deadline, connect_and_send(ep, tls, req))
        .await
        .map_err(|_| AttemptError::Timeout(timeout))??;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = if resp.status().is_success() {
        String::new()
    } else {
        let mut incoming = resp.into_body();
        let prefix = timeout_at(deadline, body_prefix(&mut incoming))
            .await
            .unwrap_or_default();
        String::from_utf8_lossy(&prefix).into_owned()
    };
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

async fn connect_and_send(
    ep: &Endpoint,
    tls: Option<&Arc<rustls::ClientConfig>>,
    req: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, AbortOnDrop), AttemptError> {
    let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .map_err(|source| AttemptError::Connect {
            host: ep.host.clone(),
            port: ep.port,
            source,
        })?;
    // Only latency is at stake if this fails.
    let _ = tcp.set_nodelay(true);
    if !ep.https {
        return send(tcp, req).await;
    }
    let tls_err = |source| AttemptError::Tls {
        host: ep.host.clone(),
        source,
    };
    let config = tls.ok_or(AttemptError::NoTls)?;
    let name = ServerName::try_from(ep.host.clone())
        .map_err(|e| tls_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(tls_err)?;
    send(stream, req).await
}

async fn send<S>(
    stream: S,
    req: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, AbortOnDrop), AttemptError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends with the exchange: when the answer is read, or dropped.
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let resp = sender.send_request(req).await?;
    Ok((resp, driver))
}

/// Up to [`BODY_PREFIX`] bytes of the body; whatever arrived if it fails.
async fn body_prefix(body: &mut Incoming) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < BODY_PREFIX {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            let take = data.len().min(BODY_PREFIX - out.len());
            out.extend_from_slice(&data[..take]);
        }
    }
    out
}

/// Stops the connection task when the attempt is over, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
