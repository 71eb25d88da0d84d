//! The agent's link to the controller: enrolment, the one long-lived mTLS stream with its
//! reconnect loop (failing over between the controller's replicas), and certificate renewal.

pub mod backoff;
pub mod enroll;
pub mod failover;
mod renew;
mod session;

use crate::commands::{Dispatcher, Ledger, Verifier};
use crate::config::AgentConfig;
use crate::edge::Edge;
use crate::edge::act::HostActor;
use crate::respond::HostResponder;
use crate::respond::containment::Containment;
use crate::sensors::file::FileSensor;
use crate::sensors::metrics::SelfMetrics;
use crate::sensors::network::NetworkSensor;
use crate::sensors::process::{self, ProcessSensor};
use crate::spool::SpoolConfig;
use crate::state::{StateDir, StateError};
use crate::swap::Swap;
use crate::telemetry::Telemetry;
use backoff::Backoff;
use cordon_proto::agent_service_client::AgentServiceClient;
use cordon_proto::channel::{ChannelError, tls_channel_at};
use cordon_proto::limits::{AGENT_MAX_MESSAGE, CONTROLLER_MAX_MESSAGE};
use failover::{Failover, Target};
pub use session::BATCH_EVENTS;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tonic::transport::{Certificate, Channel, Identity};

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("the controller refused: {0}")]
    Refused(String),
    #[error("the command ledger: {0}")]
    Ledger(#[from] crate::commands::LedgerError),
    #[error("the pinned command-signing key in the state directory is not valid")]
    BadSigningKey,
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error("prevention (mode \"fanotify\") cannot run: {0}")]
    Prevention(String),
}

/// What the agent runs with, shared by the stream and the renewal task.
pub struct Uplink {
    pub state: StateDir,
    /// The settings in force: those read at start, with the live ones of any reload since.
    pub config: Swap<AgentConfig>,
    pub agent_id: String,
    /// The controller URLs, in the order they are tried.
    pub controllers: Vec<String>,
    /// Where the stream is (or was last) connected; renewal goes there.
    connected_to: std::sync::Mutex<Option<Target>>,
    /// Which process sensor runs, reported in heartbeats.
    pub process_sensor: String,
    dispatcher: Dispatcher<HostResponder>,
    /// The order the commands that change the host run in, across reconnects.
    lane: crate::commands::Lane,
    /// Containment state, reported in heartbeats and kept up while isolated.
    pub containment: Arc<Containment>,
    /// The spool and the sensors' emitter.
    pub telemetry: Arc<Telemetry>,
    /// The edge policies in force, in front of the spool.
    pub edge: Arc<Edge>,
    _file_sensor: Option<FileSensor>,
    _process_sensor: Option<process::Running>,
    _network_sensor: Option<NetworkSensor>,
    /// Exec prevention and tamper protection: `set_blocklist` puts the "blocklist" edge
    /// policy in force.
    pub prevention: Arc<crate::prevent::Prevention>,
    /// One line per sensor, for heartbeats.
    pub sensors: Vec<String>,
    metrics: std::sync::Mutex<SelfMetrics>,
    /// Signalled when a renewed certificate is on disk: reconnect with it.
    renewed: Notify,
}

impl Uplink {
    /// Builds the uplink with the real responders, and puts back any containment the state
    /// file says is in force (before the first connection, so a rebooted host is contained
    /// at once).
    pub fn new(
        state: StateDir,
        config: AgentConfig,
        process_sensor: Option<ProcessSensor>,
    ) -> Result<Arc<Self>, UplinkError> {
        let identity = state.identity()?;
        let controllers = failover::configured(&identity, &config);
        let responder = HostResponder::new(&state, &config, controllers);
        responder.containment.reapply();
        Self::with_responder(state, config, process_sensor, responder)
    }

    pub fn with_responder(
        state: StateDir,
        config: AgentConfig,
        process_sensor: Option<ProcessSensor>,
        responder: HostResponder,
    ) -> Result<Arc<Self>, UplinkError> {
        let identity = state.identity()?;
        let key =
            hex::decode(&identity.command_signing_key).map_err(|_| UplinkError::BadSigningKey)?;
        if key.len() != 32 {
            return Err(UplinkError::BadSigningKey);
        }
        let ledger = Ledger::open(state.ledger())?;
        let containment = responder.containment.clone();
        let telemetry = Telemetry::start(SpoolConfig {
            dir: state.dir.join("spool"),
            max_bytes: config.spool_max_bytes,
            segment_bytes: (config.spool_max_bytes / 16).clamp(64 * 1024, 8 * 1024 * 1024),
        })?;
        let edge = Arc::new(Edge::open(
            identity.agent_id.clone(),
            key.clone(),
            state.dir.join("edge"),
            Arc::new(edge_actor(&responder)),
            config.edge.max_actions_per_minute,
        ));
        telemetry.set_edge(edge.clone());
        telemetry.emitter().notice(
            "agent_started",
            format!("cordon-agent {} started", env!("CARGO_PKG_VERSION")),
        );
        let (process_mode, status) = match &process_sensor {
            Some(p) => (p.mode().to_string(), p.status()),
            None => ("none".to_string(), "none".to_string()),
        };
        let mut sensors = vec![format!("process: {status}")];
        let table = process_sensor.as_ref().map(ProcessSensor::table);
        let process_running = process_sensor.map(|p| p.start(telemetry.emitter()));
        let network_table = table.clone().unwrap_or_else(|| {
            Arc::new(process::ProcessTable::new(
                crate::sys::procfs::Proc::default(),
                config.process.argv_max_bytes,
            ))
        });
        let (network_sensor, network_status) =
            NetworkSensor::start(&config.network, network_table, telemetry.emitter());
        sensors.push(format!("network: {network_status}"));
        let table_for_prevention = table.clone();
        let file_sensor =
            match FileSensor::start(&config.files, &state.dir, telemetry.emitter(), table) {
                Ok(s) => {
                    tracing::info!(status = %s.status, "file sensor running");
                    sensors.push(format!("file: {}", s.status));
                    Some(s)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "file sensor unavailable");
                    telemetry
                        .emitter()
                        .notice("sensor_degraded", format!("file sensor unavailable: {e}"));
                    sensors.push(format!("file: unavailable ({e})"));
                    None
                }
            };
        let prevention = start_prevention(&config, &state, &telemetry, table_for_prevention);
        if config.prevention.mode == crate::prevent::Mode::Fanotify
            && !prevention.mode().starts_with("fanotify")
        {
            return Err(UplinkError::Prevention(prevention.mode()));
        }
        let prevention = Arc::new(prevention);
        // The "blocklist" edge policy (held from before a restart, then each new version).
        let sink = prevention.clone();
        edge.set_blocklist_sink(Box::new(move |list| sink.set_blocklist(list)));
        let dispatcher = Dispatcher::new(
            Verifier::new(identity.agent_id.clone(), key),
            ledger,
            responder,
        )
        .with_timeout(config.command_timeout());
        Ok(Arc::new(Self {
            state,
            controllers: failover::configured(&identity, &config),
            connected_to: std::sync::Mutex::new(None),
            config: Swap::new(config),
            agent_id: identity.agent_id,
            process_sensor: process_mode,
            dispatcher,
            containment,
            telemetry,
            edge,
            _file_sensor: file_sensor,
            _process_sensor: process_running,
            _network_sensor: network_sensor,
            prevention,
            sensors,
            metrics: std::sync::Mutex::new(SelfMetrics::default()),
            renewed: Notify::new(),
            lane: Default::default(),
        }))
    }

    /// Where to reach the controller now: where the stream is connected, or else the first
    /// controller URL.
    fn current_target(&self) -> Target {
        let connected = self
            .connected_to
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        connected.unwrap_or_else(|| Target {
            url: self.controllers.first().cloned().unwrap_or_default(),
            addr: None,
        })
    }

    /// An agent-service client over mTLS to `target`, with the current certificate from the
    /// state dir.
    async fn client(&self, target: &Target) -> Result<AgentServiceClient<Channel>, UplinkError> {
        let ca = self.state.read(&self.state.ca())?;
        let cert = self.state.read(&self.state.cert())?;
        let key = self.state.read(&self.state.key())?;
        let channel = tls_channel_at(
            &target.url,
            target.addr,
            Certificate::from_pem(ca),
            Some(Identity::from_pem(cert, key)),
        )
        .await?;
        Ok(agent_client(channel))
    }
}

/// The agent service's client on `channel`, as agents use it: telemetry batches travel
/// gzip-compressed, and messages are bounded by the protocol's limits.
pub fn agent_client(channel: Channel) -> AgentServiceClient<Channel> {
    AgentServiceClient::new(channel)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(CONTROLLER_MAX_MESSAGE)
        .max_encoding_message_size(AGENT_MAX_MESSAGE)
}

/// Keeps the stream to the controller up for as long as the agent runs: reconnects after any
/// failure with jittered exponential backoff, moving on to the next controller address (see
/// [`failover`]), and renews the certificate in the background.
pub async fn run(uplink: Arc<Uplink>) {
    tokio::spawn(renew::renew_loop(uplink.clone()));
    tokio::spawn(refresh_loop(uplink.clone()));
    let cfg = uplink.config.load();
    let backoff = Backoff::new(
        Duration::from_millis(cfg.reconnect_min_ms),
        Duration::from_secs(cfg.reconnect_max_secs),
    );
    let mut failover = Failover::new(uplink.controllers.clone(), backoff);
    loop {
        let target = failover.next_target().await;
        match session::run(&uplink, &target).await {
            Ok(end) => {
                failover.worked(&target);
                if end == session::End::Renewed {
                    tracing::info!("reconnecting with the renewed certificate");
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!(controller = %target, error = %e, "no connection to the controller")
            }
        }
        let delay = failover.delay();
        tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting");
        tokio::time::sleep(delay).await;
    }
}

/// Starts prevention with the agent's binary and state directory to protect; a mode that
/// cannot run is reported as a degraded sensor.
fn start_prevention(
    config: &AgentConfig,
    state: &StateDir,
    telemetry: &Telemetry,
    table: Option<Arc<process::ProcessTable>>,
) -> crate::prevent::Prevention {
    let protect: Vec<_> = std::env::current_exe()
        .into_iter()
        .chain(crate::prevent::directories(&state.dir))
        .collect();
    let p = crate::prevent::Prevention::start(
        &config.prevention,
        &config.tamper,
        &protect,
        telemetry.emitter(),
        table,
    );
    let mode = p.mode();
    tracing::info!(%mode, "prevention");
    if mode.starts_with("unavailable") {
        telemetry
            .emitter()
            .notice("sensor_degraded", format!("prevention {mode}"));
    }
    p
}

/// While isolated, re-resolves the controller periodically so the ruleset follows it.
async fn refresh_loop(up: Arc<Uplink>) {
    loop {
        let every = Duration::from_secs(up.config.load().containment.controller_refresh_secs);
        tokio::time::sleep(every).await;
        let c = up.containment.clone();
        let _ = tokio::task::spawn_blocking(move || c.refresh_controller()).await;
    }
}

impl Uplink {
    /// Puts a reloaded configuration in force (see [`crate::reload`], which decides what of
    /// it `config` may change live).
    pub fn put_in_force(&self, config: AgentConfig) {
        self.dispatcher.set_timeout(config.command_timeout());
        self.dispatcher.executor().reconfigure(&config.containment);
        self.config.store(config);
    }

    /// Samples the agent's own metrics for a heartbeat.
    pub fn metrics(&self) -> cordon_proto::AgentMetrics {
        let mut m = self
            .metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sample(&self.telemetry, &self.sensors);
        m.prevention = self.prevention.mode();
        m.edge_policies = self.edge.states();
        m
    }
}

/// Edge steps act through the same responders (and guards) as commands.
fn edge_actor(r: &HostResponder) -> HostActor {
    HostActor {
        processes: r.processes.clone(),
        signaller: r.signaller.clone(),
        kill_policy: r.kill_policy.clone(),
        quarantine: r.quarantine.clone(),
        containment: r.containment.clone(),
    }
}
