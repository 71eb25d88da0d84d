//! The controller's gRPC endpoint: the three services on one TLS listener, as adapters over
//! the core (`crate::core`): each takes the caller's identity from its certificate, calls
//! the core and answers in proto (`records.rs`), with the core's errors mapped to statuses in
//! one place (`error.rs`). The listener's own defences (admission caps, deadlines, the
//! enrolment rate limit, refusal summaries) live here too.

mod admin;
mod agent;
mod authorize;
mod conn;
mod enroll;
mod error;
mod fetched;
pub mod tally;
mod telemetry;
pub mod tls;
mod users;

pub use telemetry::{PIPELINE_DEPTH, Pipeline};

use crate::ca::{Peer, peer_identity};
use crate::core::records;
use crate::core::sessions::StreamEnd;
use crate::core::{Admin, Controller};
use cordon_proto::admin_service_server::AdminServiceServer;
use cordon_proto::agent_service_server::AgentServiceServer;
use cordon_proto::enrollment_server::EnrollmentServer;
use cordon_proto::limits;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::{Request, Status};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The identity in the client certificate of this request, if any.
fn peer<T>(req: &Request<T>) -> Result<(Peer, i64), Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    peer_identity(leaf).map_err(Status::unauthenticated)
}

/// The agent id of the calling agent, and its certificate's expiry.
fn agent_peer<T>(req: &Request<T>) -> Result<(String, i64), Status> {
    match peer(req)? {
        (Peer::Agent { id }, exp) => Ok((id, exp)),
        (Peer::Principal { .. }, _) => Err(Status::permission_denied(
            "a person's or service account's certificate cannot be used on the agent service",
        )),
    }
}

/// The calling person or service account, as `authorize.rs` checked them.
fn admin_peer<T>(req: &Request<T>) -> Result<Admin, Status> {
    req.extensions()
        .get::<Admin>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the caller was not authorised"))
}

/// The listener's TLS settings: the server certificate and key from the data directory,
/// client certificates verified against the CA, revoked agents refused.
fn server_tls(ctl: &Controller) -> Result<rustls::ServerConfig, ServeError> {
    let layout = &ctl.layout;
    let (chain, key) =
        crate::ca::server_identity(&ctl.ca, &layout.server_cert, &layout.server_key)?;
    Ok(tls::server_config(
        ctl.ca.cert_der().clone(),
        chain,
        key,
        ctl.revoked.clone(),
        ctl.roster.clone(),
    )?)
}

/// Serves all three services on `listener` until `shutdown` resolves; then closes every agent
/// stream (agents reconnect to the next controller) and returns.
pub async fn serve(
    ctl: Arc<Controller>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls(&ctl)?));
    let gate = gate(&ctl.config.listener);
    let enrol_refusals = tally::Tally::new("enrolment attempts");
    let reporter = tokio::spawn(tally::report_loop(
        vec![gate.refusals.clone(), enrol_refusals.clone()],
        Duration::from_secs(ctl.config.listener.refusal_log_interval_secs),
    ));
    let incoming = tls::incoming(listener, acceptor, gate);
    let sweeper = tokio::spawn(crate::core::expire_loop(ctl.clone()));
    let reconciler = tokio::spawn(crate::core::reconcile_loop(ctl.clone()));
    let replica = crate::core::replicas::start(&ctl);
    // Without a watch the controller still serves what it loaded; changes need a restart.
    let watching = crate::reload::start(ctl.clone()).unwrap_or_else(|e| {
        tracing::error!("hot reload is off: {e}");
        None
    });
    let pruner = tokio::spawn(crate::core::retention::prune_loop(
        ctl.store.clone(),
        ctl.config.events,
    ));
    let beats = crate::core::heartbeats::flush_loop(ctl.heartbeats.clone(), ctl.store.clone());
    let beats = tokio::spawn(beats);

    let cfg = &ctl.config.enrolment;
    let enroll = EnrollmentServer::new(enroll::EnrollApi {
        ctl: ctl.clone(),
        limiter: crate::core::ratelimit::RateLimiter::new(cfg.burst, cfg.refill_per_minute),
        refusals: enrol_refusals,
    })
    .max_decoding_message_size(limits::ENROLL_MAX_MESSAGE)
    .max_encoding_message_size(limits::ENROLL_MAX_MESSAGE);
    let agent = AgentServiceServer::new(agent::AgentApi(ctl.clone()))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(limits::AGENT_MAX_MESSAGE)
        .max_encoding_message_size(limits::CONTROLLER_MAX_MESSAGE);
    let admin = authorize::Authorized {
        inner: AdminServiceServer::new(admin::AdminApi(ctl.clone()))
            .max_decoding_message_size(limits::ADMIN_MAX_MESSAGE)
            .max_encoding_message_size(limits::ADMIN_MAX_MESSAGE),
        ctl: ctl.clone(),
    };

    let closer = ctl.clone();
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(crate::http2::MAX_CONCURRENT_STREAMS)
        .http2_max_pending_accept_reset_streams(Some(crate::http2::MAX_PENDING_ACCEPT_RESETS))
        .http2_max_local_error_reset_streams(Some(crate::http2::MAX_LOCAL_ERROR_RESETS))
        .http2_max_header_list_size(crate::http2::MAX_HEADER_LIST)
        .add_service(enroll)
        .add_service(agent)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            tracing::info!("shutting down: closing agent streams");
            closer.sessions.close_all(StreamEnd::ShuttingDown);
        })
        .await;
    sweeper.abort();
    reconciler.abort();
    pruner.abort();
    beats.abort();
    replica.iter().for_each(tokio::task::JoinHandle::abort);
    drop(watching);
    reporter.abort();
    Ok(result?)
}

/// The listener's caps and deadlines from `[listener]`.
fn gate(cfg: &crate::config::ListenerConfig) -> Arc<tls::Gate> {
    Arc::new(tls::Gate {
        admission: crate::core::admission::Admission::new(
            cfg.max_connections,
            cfg.max_connections_per_source,
        ),
        refusals: tally::Tally::new("connections"),
        handshake_timeout: Duration::from_secs(cfg.handshake_timeout_secs),
        first_request_timeout: Duration::from_secs(cfg.first_request_timeout_secs),
    })
}
