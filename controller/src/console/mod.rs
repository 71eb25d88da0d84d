//! The web console: server-rendered HTML pages over HTTPS, served by the controller on
//! `[console] listen` with its own server certificate, as a front end over the core (the
//! same `Controller` operations the gRPC API calls; nothing here touches the store or the
//! API). People sign in with a password and, if they have one, a TOTP code
//! (`core::signin`); sessions live in memory (`session.rs`); every route needs one
//! permission from one table (`routes.rs`), checked with the session and the CSRF token on
//! each request (`guard.rs`), which also sets the security headers. Pages are written with
//! maud (`pages.rs`; the incidents in `incident_pages.rs`, the events search in
//! `events_page.rs`, process trees in `tree_view.rs`, the administration pages each in a
//! module of their own: `rules.rs`, `playbooks.rs`, `audit.rs`, `users.rs` and `invite.rs`,
//! where an invitee takes up an invite), the overview, the incidents, an incident's timeline
//! and the approvals update themselves over server-sent events (`sse.rs`, `live.rs`,
//! `live_incidents.rs`), and the stylesheet and the small scripts (ES modules) are compiled
//! into the binary (`assets/`).

mod action_page;
mod actions;
mod agent_list;
mod agent_page;
mod agents;
mod assets;
mod audit;
mod enrol;
mod events;
mod events_page;
#[cfg(test)]
mod fixtures;
mod guard;
mod handlers;
mod incident_pages;
mod incidents;
mod invite;
mod layout;
mod live;
mod live_incidents;
mod pages;
mod playbooks;
pub mod routes;
mod rules;
pub mod session;
mod sse;
mod tree_view;
mod urls;
mod users;

use crate::core::Controller;
use crate::core::admission::{Admission, Ticket};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Connections open at once, and from one source (an IPv4 address or IPv6 /64); more are
/// closed as soon as they are accepted.
const MAX_CONNECTIONS: u32 = 1024;
const MAX_CONNECTIONS_PER_SOURCE: u32 = 64;
/// A connection must finish its TLS handshake within this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// And send a request's headers within this long of being ready for one (HTTP/1.1).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the console's server certificate: {0}")]
    Identity(#[from] crate::ca::CaError),
    #[error("the console's TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

/// What every request handler shares: the core and the sessions.
pub struct Shared {
    pub ctl: Arc<Controller>,
    pub sessions: session::Sessions,
}

/// The address a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The console, ready to serve: its TLS settings and its routes.
pub struct Console {
    acceptor: TlsAcceptor,
    app: axum::Router,
}

impl Console {
    /// Reads the server certificate and key and builds the routes.
    pub fn new(ctl: Arc<Controller>) -> Result<Self, ConsoleError> {
        let layout = &ctl.layout;
        let (chain, key) =
            crate::ca::server_identity(&ctl.ca, &layout.server_cert, &layout.server_key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let shared = Arc::new(Shared {
            sessions: session::Sessions::new(&ctl.config.console),
            ctl,
        });
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            app: routes::router(shared),
        })
    }

    /// Serves `listener` until `shutdown` resolves; then closes every open connection (live
    /// updates included) and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let slots = Admission::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE);
        let mut open = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => match slots.admit(peer.ip()) {
                        Ok(slot) => {
                            open.spawn(connection(self.acceptor.clone(), self.app.clone(), tcp, peer, slot));
                        }
                        Err(why) => tracing::debug!(%peer, why = why.reason(), "console connection refused"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "console accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = open.join_next(), if !open.is_empty() => {}
            }
        }
        open.shutdown().await;
        tracing::info!("console stopped");
    }
}

/// One connection: the TLS handshake, then HTTP/1.1 or HTTP/2 as the client chose.
async fn connection(
    acceptor: TlsAcceptor,
    app: axum::Router,
    tcp: TcpStream,
    peer: SocketAddr,
    _slot: Ticket,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "console handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "console handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        tower_service::Service::call(&mut app.clone(), req)
    });
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(crate::http2::MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(crate::http2::MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(crate::http2::MAX_LOCAL_ERROR_RESETS)
        .max_header_list_size(crate::http2::MAX_HEADER_LIST);
    if let Err(e) = http.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%peer, error = %e, "console connection ended");
    }
}
