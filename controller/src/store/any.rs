//! `AnyStore`: the backend the configuration chose, SQLite in the data directory or
//! PostgreSQL at `[store] url`, behind the same aggregate traits. Each method hands the call
//! to the backend in use; nothing else lives here.

use super::pg::replica::Heard;
use super::pg::{PgOptions, PgStore};
use super::{
    Agent, AlertRow, ApprovalRow, ApprovalStatus, AuditFilter, Beat, ChangeRefusal, CommandRow,
    CommandStatus, Completion, Enrolment, EventFilter, Finding, IncidentDetail, IncidentRow,
    IncidentStatus, Ingested, Invitation, IocImport, PlaybookRow, PrincipalChange, PrincipalRow,
    ProcessLink, Pruned, RuleRow, RunDetail, RunRow, RunStatus, SignInSecrets, StepRow, StepStatus,
    Store, StoreError, StoredEvent, TimelineRow,
};
use super::{
    Agents, Alerts, AuditLog, CommandQueue, Events, PlaybookStore, Principals, Rules, Tokens,
};
use super::{CollectionRow, Collections, HuntRow, HuntSummary, Hunts, RowFilter};
use super::{FetchedFileRow, FetchedFiles, FileChunkRow};
use crate::policy::audit::{AuditEntry, AuditRecord, Verification};
use crate::policy::grouping::Grouping;
use crate::policy::people::{Inactive, InviteRefusal};
use crate::policy::tokens::EnrollRefusal;
use cordon_proto::HostFacts;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// The store a controller runs on.
#[derive(Clone)]
pub enum AnyStore {
    /// One controller, one file: `DATA_DIR/cordon.db`.
    Sqlite(Store),
    /// Any number of controllers sharing one PostgreSQL database.
    Pg(PgStore),
}

impl AnyStore {
    /// PostgreSQL when `pg` is given, else SQLite in `data_dir`.
    pub async fn open(data_dir: &Path, pg: Option<&PgOptions>) -> Result<Self, StoreError> {
        Ok(match pg {
            Some(o) => Self::Pg(PgStore::open(o).await?),
            None => Self::Sqlite(Store::open(data_dir)?),
        })
    }

    /// Whether several controllers may share this store.
    pub fn shared(&self) -> bool {
        matches!(self, Self::Pg(_))
    }

    /// Takes or renews the lease on a piece of singleton work; a SQLite store has one
    /// controller, which always holds it.
    pub async fn claim_lease(
        &self,
        name: &str,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(_) => Ok(true),
            Self::Pg(s) => s.claim_lease(name, ttl, now_ms).await,
        }
    }

    /// Gives up a lease taken with [`Self::claim_lease`].
    pub async fn release_lease(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Pg(s) => s.release_lease(name).await,
        }
    }

    /// Extends this controller's claims on the playbook runs it executes.
    pub async fn renew_runs(&self, now_ms: i64) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Pg(s) => s.renew_runs(now_ms).await.map(drop),
        }
    }

    /// Marks offline the agents not heard from since `before_ms` (only a shared store can
    /// hold agents of a controller that died: a SQLite store is swept at start).
    pub async fn offline_if_silent(&self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sqlite(_) => Ok(Vec::new()),
            Self::Pg(s) => s.offline_if_silent(before_ms).await,
        }
    }

    /// Whether the store answers: a trivial query on a pooled connection (a SQLite file in
    /// the data directory always does; its failures show in the calls that fail).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Pg(s) => s.ping().await,
        }
    }

    /// Tells the other controllers on the store; nothing to do with one controller.
    pub async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Pg(s) => s.publish(payload).await,
        }
    }

    /// What other controllers publish, when the store is shared.
    pub fn listen(&self) -> Option<mpsc::Receiver<Heard>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Pg(s) => Some(s.listen()),
        }
    }
}

impl From<Store> for AnyStore {
    fn from(s: Store) -> Self {
        Self::Sqlite(s)
    }
}

impl From<PgStore> for AnyStore {
    fn from(s: PgStore) -> Self {
        Self::Pg(s)
    }
}

/// Implements each listed trait for `AnyStore` by handing every method to the backend.
macro_rules! delegate {
    ($($aggregate:ident { $(fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)* })*) => {
        $(impl $aggregate for AnyStore {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
                match self {
                    Self::Sqlite(s) => s.$name($($arg),*).await,
                    Self::Pg(s) => s.$name($($arg),*).await,
                }
            })*
        })*
    };
}

delegate! {
    Agents {
        fn enroll(e: Enrolment) -> Result<Agent, EnrollRefusal>;
        fn agent(id: String) -> Option<Agent>;
        fn agents_by_prefix(prefix: String) -> Vec<Agent>;
        fn agents() -> Vec<Agent>;
        fn revoked_agent_ids() -> Vec<String>;
        fn agent_connected(id: String, host: HostFacts, now_ms: i64) -> ();
        fn agent_heartbeats(beats: Vec<Beat>) -> ();
        fn set_isolation_desired(id: String, desired: bool) -> ();
        fn set_agent_labels(id: String, labels: HashMap<String, String>) -> bool;
        fn agent_offline(id: String) -> ();
        fn all_agents_offline() -> ();
        fn agent_renewed(id: String, serial: String, expires_at_ms: i64) -> ();
        fn revoke_agent(id: String, now_ms: i64) -> Option<Agent>;
    }
    Tokens {
        fn create_token(
            hash: String,
            now_ms: i64,
            expires_at_ms: i64,
            uses: u32,
            labels: HashMap<String, String>,
            created_by: String
        ) -> ();
        fn check_token(hash: String, now_ms: i64) -> Result<(), EnrollRefusal>;
    }
    CommandQueue {
        fn insert_command(row: CommandRow) -> ();
        fn insert_commands(rows: Vec<CommandRow>, isolation: Option<bool>) -> ();
        fn open_commands(agent_id: String, now_ms: i64) -> Vec<CommandRow>;
        fn mark_delivered(id: String, now_ms: i64) -> ();
        fn complete_command(
            id: String,
            agent_id: String,
            status: CommandStatus,
            error: String,
            result: Vec<u8>,
            now_ms: i64
        ) -> Completion;
        fn expire_commands(now_ms: i64) -> Vec<String>;
        fn command(id: String) -> Option<CommandRow>;
        fn commands(agent_id: Option<String>, limit: u32) -> Vec<CommandRow>;
    }
    Collections {
        fn add_collection_rows(
            command_id: String,
            agent_id: String,
            first_row: u64,
            rows: Vec<String>
        ) -> u64;
        fn collection_row_count(command_id: String) -> u64;
        fn collection_rows(f: RowFilter) -> Vec<CollectionRow>;
    }
    Hunts {
        fn create_hunt(hunt: HuntRow, commands: Vec<CommandRow>) -> ();
        fn hunts(limit: u32) -> Vec<HuntSummary>;
        fn hunt(id: String) -> Option<HuntSummary>;
        fn hunt_commands(id: String) -> Vec<CommandRow>;
        fn cancel_hunt(id: String, now_ms: i64) -> Option<Vec<String>>;
    }
    FetchedFiles {
        fn add_file_chunk(command_id: String, agent_id: String, chunk: FileChunkRow) -> bool;
        fn file_chunk_total(command_id: String) -> (u32, u64);
        fn file_chunk(command_id: String, index: u32) -> Option<FileChunkRow>;
        fn record_fetched_file(file: FetchedFileRow) -> bool;
        fn fetched_file(id: String) -> Option<FetchedFileRow>;
        fn fetched_files(agent_id: Option<String>, limit: u32) -> Vec<FetchedFileRow>;
    }
    AuditLog {
        fn append_audit(entry: AuditEntry, now_ms: i64) -> AuditRecord;
        fn audit(since_ms: i64, limit: u32, actor: Option<String>) -> Vec<AuditRecord>;
        fn audit_page(f: AuditFilter) -> Vec<AuditRecord>;
        fn verify_audit() -> Verification;
    }
    Events {
        fn ingest(
            events: Vec<StoredEvent>,
            findings: Vec<Vec<Finding>>,
            grouping: Option<Grouping>
        ) -> Ingested;
        fn insert_events(events: Vec<StoredEvent>) -> Vec<StoredEvent>;
        fn query_events(f: EventFilter) -> Vec<StoredEvent>;
        fn process_events(agent_id: String, by: ProcessLink, limit: u32) -> Vec<StoredEvent>;
        fn event(agent_id: String, seq: u64) -> Option<StoredEvent>;
        fn event_count(agent_id: String) -> u64;
        fn prune_events(older_than: Option<i64>, keep_newest: Option<u64>) -> Pruned;
    }
    Alerts {
        fn add_timeline(incident: String, entry: TimelineRow) -> ();
        fn set_incident_severity(id: String, severity: String) -> ();
        fn alerts(
            since_ms: i64,
            min_level: usize,
            agent_id: Option<String>,
            limit: u32
        ) -> Vec<AlertRow>;
        fn alert(id: String) -> Option<AlertRow>;
        fn incidents(status: Option<IncidentStatus>, limit: u32) -> Vec<IncidentRow>;
        fn incident(id: String) -> Option<IncidentDetail>;
        fn set_incident_status(
            id: String,
            status: IncidentStatus,
            actor: String,
            now: i64
        ) -> Option<String>;
    }
    Rules {
        fn upsert_rules(rules: Vec<RuleRow>) -> ();
        fn rules() -> Vec<RuleRow>;
        fn set_rule_enabled(id: String, enabled: bool) -> Option<RuleRow>;
        fn add_iocs(kind: String, list: String, values: Vec<String>, now: i64) -> IocImport;
        fn iocs() -> Vec<(String, String, String)>;
        fn mark_block_list(kind: String, list: String) -> ();
        fn blocked_sha256() -> Vec<String>;
    }
    PlaybookStore {
        fn upsert_playbook(p: PlaybookRow) -> ();
        fn playbooks() -> Vec<PlaybookRow>;
        fn set_playbook_enabled(name: String, enabled: bool, now: i64) -> bool;
        fn create_run(r: RunRow) -> bool;
        fn unfinished_runs() -> Vec<RunRow>;
        fn runs_for_incident(incident: String) -> Vec<RunDetail>;
        fn recent_runs(limit: u32) -> Vec<RunDetail>;
        fn set_run(id: String, status: RunStatus, step: usize, now: i64) -> ();
        fn put_step(run_id: String, s: StepRow) -> ();
        fn step(run_id: String, idx: usize) -> Option<StepRow>;
        fn count_steps(action: String, statuses: Vec<StepStatus>, since_ms: i64) -> u64;
        fn request_approval(a: ApprovalRow) -> ApprovalRow;
        fn approval(id: String) -> Option<ApprovalRow>;
        fn approvals(all: bool, incident: Option<String>) -> Vec<ApprovalRow>;
        fn decide_approval(
            id: String,
            status: ApprovalStatus,
            by: String,
            note: String,
            now: i64
        ) -> Option<ApprovalRow>;
        fn edge_version(agent_id: String, policy_id: String, digest: String) -> u64;
        fn edge_versions(agent_id: String) -> Vec<(String, String, u64)>;
    }
    Principals {
        fn invite(i: Invitation, now_ms: i64) -> bool;
        fn invited_name(code_hash: String) -> Option<String>;
        fn redeem_invite(
            code_hash: String,
            serial: String,
            now_ms: i64
        ) -> Result<PrincipalRow, InviteRefusal>;
        fn principal(name: String) -> Option<PrincipalRow>;
        fn principals() -> Vec<PrincipalRow>;
        fn change_principal(
            name: String,
            change: PrincipalChange,
            now_ms: i64
        ) -> Result<PrincipalRow, ChangeRefusal>;
        fn sign_in_secrets(name: String) -> Option<SignInSecrets>;
        fn record_credential(
            name: String,
            serial: String,
            now_ms: i64
        ) -> Result<PrincipalRow, Inactive>;
    }
}
