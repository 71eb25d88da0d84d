//! The controller's store: SQLite in the data directory (WAL), with numbered migrations.
//! Calls run on the blocking pool so the async services never wait on disk I/O directly.

mod agents;
mod alerts;
mod any;
mod audit;
mod checkpoint;
mod collections;
mod commands;
mod events;
mod fetched;
mod files;
mod group;
mod hunts;
mod ingest;
pub mod migrate;
pub mod pg;
mod playbooks;
mod presence;
mod principals;
mod retention;
mod rows;
mod rules;
mod status;
mod tokens;

pub use agents::{Agent, Agents, Beat, Enrolment};
pub use alerts::{
    AlertChange, AlertRow, Alerts, Finding, IncidentDetail, IncidentRow, TimelineRow,
};
pub use any::AnyStore;
pub use audit::{AuditFilter, AuditLog};
pub use collections::{CollectionRow, Collections, RowFilter};
pub use commands::{CommandQueue, CommandRow, Completion, action_kind};
pub use events::{EventFilter, EventKey, Events, ProcessLink, StoredEvent};
pub use fetched::{FetchedFileRow, FetchedFiles, FileChunkRow};
pub use hunts::{HuntCounts, HuntRow, HuntSummary, Hunts};
pub use ingest::Ingested;
pub use playbooks::{ApprovalRow, PlaybookRow, PlaybookStore, RunDetail, RunRow, StepRow};
pub use principals::{
    ChangeRefusal, Invitation, PrincipalChange, PrincipalRow, Principals, SignInSecrets,
};
pub use retention::{PRUNE_CHUNK, Pruned};
pub use rules::{IocImport, RuleRow, Rules};
pub use tokens::Tokens;
#[cfg(test)]
pub mod conformance;
pub use status::{ApprovalStatus, CommandStatus, IncidentStatus, RunStatus, StepStatus};

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Declares `Backend` over the aggregates' traits, with its blanket impl.
macro_rules! backend {
    ($(#[$doc:meta])* $($aggregate:ident),+) => {
        $(#[$doc])*
        pub trait Backend: $($aggregate +)+ Clone + Send + Sync + 'static {}

        impl<T: $($aggregate +)+ Clone + Send + Sync + 'static> Backend for T {}
    };
}

backend! {
    /// Every aggregate's trait: what a backend implements, in one name. The SQLite `Store`
    /// is one; each passes the conformance suite (`conformance/`).
    Agents, Tokens, CommandQueue, AuditLog, Events, Alerts, Rules, PlaybookStore, Principals,
    Collections, Hunts, FetchedFiles
}

pub const DB_FILE: &str = "cordon.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("opening the database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("creating the database {path}: {source}")]
    CreateFile {
        path: String,
        source: std::io::Error,
    },
    #[error("reading the permissions of {path}: {source}")]
    Stat {
        path: String,
        source: std::io::Error,
    },
    #[error("making {path} private: {source}")]
    SetMode {
        path: String,
        source: std::io::Error,
    },
    #[error("migration {version}: {source}")]
    Migrate {
        version: usize,
        source: rusqlite::Error,
    },
    #[error("the database task failed: {0}")]
    Task(String),
    #[error("committing a group of writes: {0}")]
    GroupCommit(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the database {target} is unreachable: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("every connection to the database {target} stayed busy for {waited_ms} ms")]
    PoolBusy { target: String, waited_ms: u128 },
    #[error("the database URL: {0}")]
    PgUrl(String),
    #[error("setting up the database's connection pool: {0}")]
    PgPool(String),
    #[error("migration {version}: {source}")]
    PgMigrate {
        version: usize,
        source: tokio_postgres::Error,
    },
    #[error("event partition {name}: {source}")]
    Partition {
        name: String,
        source: tokio_postgres::Error,
    },
}

impl StoreError {
    /// The database could not be reached or answered too late (down, restarting, pool
    /// exhausted, statement timed out): the caller may retry, nothing is wrong with the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::PoolBusy { .. } => true,
            Self::Postgres(e) => pg_unavailable(e),
            _ => false,
        }
    }
}

/// A PostgreSQL error from the connection or the server's state rather than the statement:
/// closed or broken connection, server shutting down or starting, statement cancelled by
/// its timeout.
fn pg_unavailable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
        ]
        .contains(c),
        None => e.is_closed() || e.as_db_error().is_none(),
    }
}

/// Ordered schema migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_containment.sql"),
    include_str!("migrations/0003_event_summary.sql"),
    include_str!("migrations/0004_agent_metrics.sql"),
    include_str!("migrations/0005_detection.sql"),
    include_str!("migrations/0006_audit.sql"),
    include_str!("migrations/0007_playbooks.sql"),
    include_str!("migrations/0008_principals.sql"),
    include_str!("migrations/0009_approval_requests.sql"),
    include_str!("migrations/0010_event_process.sql"),
    include_str!("migrations/0011_event_search.sql"),
    include_str!("migrations/0012_collections.sql"),
    include_str!("migrations/0013_hunts.sql"),
    include_str!("migrations/0014_fetched_files.sql"),
    include_str!("migrations/0015_edge_versions.sql"),
    include_str!("migrations/0016_ioc_block.sql"),
];

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Writes waiting to be committed together (see `group`).
    writes: Arc<group::Queue>,
    /// The WAL checkpoint thread of a store on disk.
    checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

impl Store {
    /// Opens (or creates) `DATA_DIR/cordon.db`, private to the controller (`files.rs`).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        files::make_private(&path)?;
        let open = || {
            Connection::open(&path).map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })
        };
        let mut store = Self::setup(open()?)?;
        let checkpoints = open()?;
        configure(&checkpoints)?;
        store.with_conn(|c| {
            c.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)
        })?;
        store.checkpointer = Some(Arc::new(checkpoint::Checkpointer::start(checkpoints)?));
        Ok(store)
    }

    /// An in-memory store, for tests.
    pub fn memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            writes: Arc::default(),
            checkpointer: None,
        })
    }

    /// Runs `f` with the connection on this thread (for setup).
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Task("lock poisoned".into()))?;
        Ok(f(&conn)?)
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(super) async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// The settings every connection to the database runs with. `synchronous = FULL` makes WAL
/// mode sync the log at every commit, so a committed transaction survives a power loss, not
/// only a crash of the process: telemetry is acknowledged (and then deleted by the agent) and
/// command results are confirmed only after their commit, so a commit must be durable.
/// (`NORMAL` would sync only at checkpoints, and the last commits could vanish with the
/// power.) The cost is one fsync per transaction; the ingest path commits one per group of
/// batches (`ingest.rs`).
///
/// A new database gets 16 KiB pages (SQLite ignores this for an existing one): telemetry rows
/// are a few hundred bytes and arrive by the thousand, and larger pages mean fewer pages, log
/// frames and b-tree splits per batch.
pub fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let version = i + 1;
        let tx = conn
            .transaction()
            .map_err(|source| StoreError::Migrate { version, source })?;
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migrate { version, source })?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|source| StoreError::Migrate { version, source })?;
        tx.commit()
            .map_err(|source| StoreError::Migrate { version, source })?;
    }
    Ok(())
}

pub(super) fn labels_to_json(labels: &std::collections::HashMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

pub(super) fn labels_from_json(
    s: &str,
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("labels: {e}")))
}
