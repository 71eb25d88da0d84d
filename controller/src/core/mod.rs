//! The controller's domain, below every front end: the state of the whole server and the
//! operations on it (agents, enrolment, commands, ingest, alerts and incidents, playbooks and
//! approvals, the audit log). The gRPC services (`api/`) are adapters over it; so is
//! anything else that drives the controller. Nothing here knows a transport: callers pass a
//! typed principal (an [`Admin`], an agent id taken from a certificate), and failures are
//! [`CoreError`]s.

pub mod admin_streams;
pub mod admission;
mod agents;
mod audit;
pub mod collections;
mod commands;
mod describe_net;
mod detection;
mod dryrun;
pub mod edge;
mod enrol;
mod error;
pub mod fanout;
pub mod fetch;
mod fleet;
mod foureyes;
pub mod health;
pub mod heartbeats;
pub mod hunts;
mod ingest;
mod link;
mod people;
mod playbooks;
pub mod process_tree;
mod rate;
pub mod ratelimit;
mod reconcile;
pub mod records;
mod reload;
pub mod replicas;
mod report;
pub mod retention;
mod ruletest;
pub mod sessions;
mod signin;
mod users;

pub use crate::store::action_kind;
/// Records the core's operations answer with, for the front ends (which never use the store).
pub use crate::store::{
    AlertRow, ApprovalRow, ApprovalStatus, AuditFilter, EventKey, IncidentRow, IncidentStatus,
    PrincipalChange, PrincipalRow, RuleRow, RunDetail, RunRow, StepRow, StoredEvent, TimelineRow,
};
pub use agents::{Presence, list_limit};
pub use commands::{CommandRequest, MAX_COMMAND_TTL, expire_loop};
pub use detection::{IocList, IocsImported, RuleFile, incident_status, level_index};
pub use enrol::{Enrolled, NewToken, token_hash, token_ref};
pub use error::{CoreError, INTERNAL, MAX_TOKEN_TTL};
pub use fanout::{FanOut, FanOutHost, FanOutRequest};
pub use fleet::{AGENT_STATES, AgentFilter, Isolation, result_of};
pub use ingest::{EventQuery, describe};
pub use people::{Credential, Roster};
pub use playbooks::{IncidentDetails, IncidentHistory, Plan, PlaybookInfo};
pub use reconcile::reconcile_loop;
pub use reload::RELOAD_ACTOR;
pub use ruletest::{MAX_TEST_EVENT, RuleTest, RuleToTest};
pub use signin::{SignIn, SignInGuard, SignInRefusal};
pub use users::{InviteRequest, Invited, MAX_PASSWORD, MIN_PASSWORD};

use crate::ca::Ca;
use crate::ca::signing::CommandSigner;
use crate::config::{ConfigError, ControllerConfig};
use crate::init::Layout;
use crate::notify::Notifier;
use crate::playbook::Playbooks;
use crate::playbook::deps::SystemClock;
use crate::playbook::engine::{self, Engine};
use crate::policy::audit::AuditEntry;
use crate::policy::people::Kind;
use crate::policy::roles::Role;
use crate::store::{Agents, AnyStore, StoreError};
use sessions::Sessions;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, mpsc};

/// Ids of revoked agents, shared with the TLS verifier so their handshakes fail.
pub type RevokedSet = Arc<RwLock<std::collections::HashSet<String>>>;

/// A person or service account, as the transport authenticated them and the roster
/// authorised them; or the controller itself acting for a named source (hot reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub name: String,
    pub kind: Kind,
    pub role: Role,
    /// The serial of the certificate they called with; empty for the controller's own
    /// actions.
    pub serial: String,
}

impl Admin {
    /// The controller acting on its own, named `name` in the audit log.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: Kind::User,
            role: Role::Admin,
            serial: String::new(),
        }
    }

    /// An audit entry of this principal's, carrying their certificate's serial.
    pub fn entry(&self, action: impl Into<String>, target: impl Into<String>) -> AuditEntry {
        let mut e = AuditEntry::new(&self.name, action, target);
        if !self.serial.is_empty() {
            e.detail = serde_json::json!({ "cert_serial": self.serial });
        }
        e
    }
}

/// The state of the whole controller.
pub struct Controller {
    pub config: ControllerConfig,
    /// Where the controller's files are (the transports read their keys from it).
    pub layout: Layout,
    pub store: AnyStore,
    pub ca: Ca,
    pub signer: CommandSigner,
    pub sessions: Sessions,
    /// Admin streams open per principal (`events tail`, downloads).
    pub admin_streams: Arc<admin_streams::AdminStreams>,
    pub revoked: RevokedSet,
    /// Ids of commands that just reached a final state.
    pub finished: broadcast::Sender<String>,
    /// Events just stored, for `cordonctl events tail`.
    pub events: broadcast::Sender<Arc<crate::store::StoredEvent>>,
    /// Rules and indicators, judged for every event stored.
    pub detector: crate::detect::Detector,
    /// Playbooks, started by new alerts.
    pub playbooks: Arc<Playbooks>,
    /// Edge policies compiled from them, watched by the agents' streams.
    pub edge: edge::EdgeHub,
    /// The playbook engine, working through [`link::Link`].
    pub engine: Arc<Engine>,
    /// Ids of new alerts, for the engine.
    alerts: mpsc::UnboundedSender<String>,
    /// Where playbooks' notify steps go.
    pub notifier: Arc<dyn crate::notify::Notifier>,
    /// People and service accounts, as the handshake and each call check them.
    pub roster: Roster,
    /// Rate limits and used TOTP steps of console sign-ins.
    sign_ins: SignInGuard,
    /// Events stored per second, for the overview.
    ingest_rate: rate::IngestRate,
    /// Whether the store answers (`health`).
    pub health: health::Health,
    /// Agents' newest heartbeats, stored together every second (`heartbeats`).
    pub heartbeats: Arc<heartbeats::Heartbeats>,
}

/// Why the controller could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Signing(#[from] crate::ca::signing::SigningError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("loading playbooks: {0}")]
    Playbooks(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("notifications: {0}")]
    Notify(#[source] crate::notify::SetupError),
}

impl Controller {
    /// Loads the controller that `init` created in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Arc<Self>, OpenError> {
        Self::open_with(data_dir, None).await
    }

    /// As [`Self::open`], with settings from `config` instead of `DATA_DIR/controller.toml`.
    pub async fn open_with(data_dir: &Path, config: Option<&Path>) -> Result<Arc<Self>, OpenError> {
        let layout = Layout::new(data_dir);
        let config = ControllerConfig::load_from(data_dir, config)?;
        let ca = Ca::load(&layout.ca_cert, &layout.ca_key)?;
        let signer = CommandSigner::load(&layout.signing_key)?;
        let store = AnyStore::open(data_dir, config.store.postgres().as_ref()).await?;
        // One controller per SQLite store: no stream is open yet. A shared store's agents
        // may be connected to other controllers (see `replicas`: the presence sweep).
        if !store.shared() {
            store.all_agents_offline().await?;
        }
        let revoked: RevokedSet = Arc::new(RwLock::new(
            store.revoked_agent_ids().await?.into_iter().collect(),
        ));
        let roster = Roster::default();
        roster.load(&store).await?;
        let detector = crate::detect::Detector::new(crate::policy::grouping::Grouping {
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
        let playbooks = Arc::new(Playbooks::new(&config.playbooks));
        let notifier: Arc<dyn Notifier> = Arc::new(
            crate::notify::WebhookNotifier::new(&config.notify).map_err(OpenError::Notify)?,
        );
        let (alerts, new_alerts) = mpsc::unbounded_channel();
        let admin_streams = admin_streams::AdminStreams::new(config.listener.max_streams_per_admin);
        let ctl = Arc::new_cyclic(|me| {
            let link = Arc::new(link::Link(me.clone()));
            let engine = Arc::new(Engine {
                store: store.clone(),
                commands: link.clone(),
                audit: link,
                notifier: notifier.clone(),
                clock: Arc::new(SystemClock),
                playbooks: playbooks.clone(),
            });
            Self {
                playbooks,
                edge: edge::EdgeHub::default(),
                engine,
                roster,
                sign_ins: SignInGuard::default(),
                ingest_rate: rate::IngestRate::default(),
                health: health::Health::default(),
                heartbeats: Arc::default(),
                alerts,
                notifier,
                detector,
                config,
                layout,
                store,
                ca,
                signer,
                sessions: Sessions::default(),
                admin_streams,
                revoked,
                finished: broadcast::channel(1024).0,
                events: broadcast::channel(4096).0,
            }
        });
        tokio::spawn(engine::listen(ctl.engine.clone(), new_alerts));
        let dir = &ctl.config.playbooks.dir;
        ctl.load_playbooks((!dir.is_empty()).then_some(Path::new(dir.as_str())))
            .await
            .map_err(OpenError::Playbooks)?;
        ctl.refresh_edge().await?;
        tokio::spawn(edge::refresh_loop(Arc::downgrade(&ctl)));
        Ok(ctl)
    }
}
