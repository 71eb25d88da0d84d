//! The controller's gRPC endpoint: shared state, the three services on one TLS listener, and
//! the background work (command expiry, event retention) that runs beside them.

mod admin;
pub mod admission;
mod agent;
mod audit;
mod commands;
mod conn;
mod detection;
mod enroll;
mod error;
mod playbooks;
pub mod ratelimit;
mod report;
pub mod retention;
pub mod sessions;
pub mod tally;
mod telemetry;
pub mod tls;

pub use telemetry::{PIPELINE_DEPTH, Pipeline};

use crate::ca::signing::CommandSigner;
use crate::ca::{Ca, Peer, peer_identity, pem_to_der};
use crate::config::ControllerConfig;
use crate::init::Layout;
use crate::store::Store;
use cordon_proto::admin_service_server::AdminServiceServer;
use cordon_proto::agent_service_server::AgentServiceServer;
use cordon_proto::enrollment_server::EnrollmentServer;
use cordon_proto::limits;
use sessions::Sessions;
use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tonic::{Request, Status};

/// Everything the services share.
pub struct Controller {
    pub config: ControllerConfig,
    pub store: Store,
    pub ca: Ca,
    pub signer: CommandSigner,
    pub sessions: Sessions,
    pub revoked: tls::RevokedSet,
    /// Ids of commands that just reached a final state.
    pub finished: broadcast::Sender<String>,
    /// Events just stored, for `cordonctl events tail`.
    pub events: broadcast::Sender<Arc<crate::store::StoredEvent>>,
    /// Rules and indicators, judged for every event stored.
    pub detector: crate::detect::Detector,
    /// Playbooks, started by new alerts.
    pub playbooks: crate::playbook::Playbooks,
    /// Where playbooks' notify steps go.
    pub notifier: Arc<dyn crate::notify::Notifier>,
    /// Enrolment attempts per source.
    pub(crate) enrol_limiter: ratelimit::RateLimiter,
    /// Refused enrolment attempts, reported in summary.
    pub(crate) enrol_refusals: Arc<tally::Tally>,
    tls: rustls::ServerConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Signing(#[from] crate::ca::signing::SigningError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("loading playbooks: {0}")]
    Playbooks(String),
    #[error("notifications: {0}")]
    Notify(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the server key in {0} is not a valid PEM private key")]
    BadKey(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Controller {
    /// Loads the controller that `init` created in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Arc<Self>, ServeError> {
        Self::open_with(data_dir, None).await
    }

    /// As [`Self::open`], with settings from `config` instead of `DATA_DIR/controller.toml`.
    pub async fn open_with(
        data_dir: &Path,
        config: Option<&Path>,
    ) -> Result<Arc<Self>, ServeError> {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let layout = Layout::new(data_dir);
        let config = ControllerConfig::load_from(data_dir, config)?;
        let ca = Ca::load(&layout.ca_cert, &layout.ca_key)?;
        let signer = CommandSigner::load(&layout.signing_key)?;
        let store = Store::open(data_dir)?;
        store.all_agents_offline().await?;
        let revoked: tls::RevokedSet = Arc::new(RwLock::new(
            store
                .revoked_agent_ids()
                .await?
                .into_iter()
                .collect::<HashSet<_>>(),
        ));
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ServeError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let server_pem = read(&layout.server_cert)?;
        let server_cert = pem_to_der(&server_pem).map_err(|source| crate::ca::CaError::Parse {
            what: "server certificate",
            path: layout.server_cert.clone(),
            source,
        })?;
        let key = PrivateKeyDer::from_pem_slice(read(&layout.server_key)?.as_bytes())
            .map_err(|_| ServeError::BadKey(layout.server_key.display().to_string()))?;
        let tls = tls::server_config(
            ca.cert_der().clone(),
            vec![server_cert, ca.cert_der().clone()],
            key,
            revoked.clone(),
        )?;
        let (finished, _) = broadcast::channel(1024);
        let (events, _) = broadcast::channel(4096);
        let detector = crate::detect::Detector::new(crate::store::Grouping {
            alert_window_ms: config.detection.alert_window_secs as i64 * 1000,
            incident_window_ms: config.detection.incident_window_secs as i64 * 1000,
        });
        let rules_dir = &config.detection.rules_dir;
        detector
            .load(
                &store,
                (!rules_dir.is_empty()).then_some(Path::new(rules_dir.as_str())),
            )
            .await?;
        let playbooks = crate::playbook::Playbooks::new(&config.playbooks);
        let notifier: Arc<dyn crate::notify::Notifier> = Arc::new(
            crate::notify::WebhookNotifier::new(&config.notify)
                .map_err(|e| ServeError::Notify(e.to_string()))?,
        );
        let enrol_limiter =
            ratelimit::RateLimiter::new(config.enrolment.burst, config.enrolment.refill_per_minute);
        let ctl = Arc::new(Self {
            enrol_limiter,
            enrol_refusals: tally::Tally::new("enrolment attempts"),
            playbooks,
            notifier,
            detector,
            config,
            store,
            ca,
            signer,
            sessions: Sessions::default(),
            revoked,
            finished,
            events,
            tls,
        });
        let dir = &ctl.config.playbooks.dir;
        ctl.load_playbooks((!dir.is_empty()).then_some(Path::new(dir.as_str())))
            .await
            .map_err(|e| ServeError::Playbooks(e.to_string()))?;
        Ok(ctl)
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
    pub(crate) fn agent_peer<T>(req: &Request<T>) -> Result<(String, i64), Status> {
        match Self::peer(req)? {
            (Peer::Agent { id }, exp) => Ok((id, exp)),
            (Peer::Admin { .. }, _) => Err(Status::permission_denied(
                "an admin certificate cannot be used on the agent service",
            )),
        }
    }

    /// The admin name of the calling administrator.
    pub(crate) fn admin_peer<T>(req: &Request<T>) -> Result<String, Status> {
        match Self::peer(req)? {
            (Peer::Admin { name }, _) => Ok(name),
            (Peer::Agent { .. }, _) => Err(Status::permission_denied(
                "an agent certificate cannot be used on the admin service",
            )),
        }
    }
}

/// Serves all three services on `listener` until `shutdown` resolves; then closes every agent
/// stream (agents reconnect to the next controller) and returns.
pub async fn serve(
    ctl: Arc<Controller>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ctl.tls.clone()));
    let gate = gate(&ctl.config.listener);
    let reporter = tokio::spawn(tally::report_loop(
        vec![gate.refusals.clone(), ctl.enrol_refusals.clone()],
        Duration::from_secs(ctl.config.listener.refusal_log_interval_secs),
    ));
    let incoming = tls::incoming(listener, acceptor, gate);
    let sweeper = tokio::spawn(commands::expire_loop(ctl.clone()));
    let pruner = tokio::spawn(retention::prune_loop(ctl.store.clone(), ctl.config.events));

    let enroll = EnrollmentServer::new(enroll::EnrollApi(ctl.clone()))
        .max_decoding_message_size(limits::ENROLL_MAX_MESSAGE)
        .max_encoding_message_size(limits::ENROLL_MAX_MESSAGE);
    let agent = AgentServiceServer::new(agent::AgentApi(ctl.clone()))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(limits::AGENT_MAX_MESSAGE)
        .max_encoding_message_size(limits::CONTROLLER_MAX_MESSAGE);
    let admin = AdminServiceServer::new(admin::AdminApi(ctl.clone()))
        .max_decoding_message_size(limits::ADMIN_MAX_MESSAGE)
        .max_encoding_message_size(limits::ADMIN_MAX_MESSAGE);

    let closer = ctl.clone();
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(enroll)
        .add_service(agent)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            tracing::info!("shutting down: closing agent streams");
            closer
                .sessions
                .close_all(Status::unavailable("the controller is shutting down"));
        })
        .await;
    sweeper.abort();
    pruner.abort();
    reporter.abort();
    Ok(result?)
}

/// The listener's caps and deadlines from `[listener]`.
fn gate(cfg: &crate::config::ListenerConfig) -> Arc<tls::Gate> {
    Arc::new(tls::Gate {
        admission: admission::Admission::new(cfg.max_connections, cfg.max_connections_per_source),
        refusals: tally::Tally::new("connections"),
        handshake_timeout: Duration::from_secs(cfg.handshake_timeout_secs),
        first_request_timeout: Duration::from_secs(cfg.first_request_timeout_secs),
    })
}

/// Opens the controller in `data_dir`, binds its configured address and serves until
/// SIGINT or SIGTERM.
pub async fn run(data_dir: &Path, config: Option<&Path>) -> Result<(), ServeError> {
    let ctl = Controller::open_with(data_dir, config).await?;
    let addr = ctl.config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    tracing::info!(listen = %addr, url = %ctl.config.url, ca = %ctl.ca.fingerprint(), "controller serving");
    serve(ctl, listener, cordon_proto::process::shutdown_signal()).await
}
