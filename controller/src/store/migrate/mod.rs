//! `cordon-controller migrate-store`: copies a SQLite store (`DATA_DIR/cordon.db`) into a new
//! PostgreSQL database, every table row for row (ids, times, hashes and blobs as they are),
//! then verifies the copy.
//!
//! The two schemas are compared first, table by table (`tables.rs`). A reader on the SQLite
//! store's connection takes one snapshot and sends it in chunks (`source.rs`); the writer
//! streams each table into PostgreSQL with a binary COPY, all in one transaction that also
//! refuses a database that is not empty and checks each table's count against the snapshot
//! before it commits (`target.rs`). After the commit the copy's audit chain is verified as
//! `audit verify` does. A migration that fails before its commit leaves no row behind (only
//! the empty schema and event partitions), so it can be run again as it is.

#[cfg(test)]
mod fixture;
mod source;
mod tables;
mod target;
#[cfg(test)]
mod tests;

use crate::policy::audit::Verification;
use crate::store::pg::{PgOptions, PgStore};
use crate::store::{AuditLog, DB_FILE, Store, StoreError};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a migration stopped. Every error before `Commit` leaves the target without rows.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("no store to migrate: {path} does not exist")]
    NoStore { path: String },
    #[error("opening the SQLite store: {0}")]
    OpenSource(StoreError),
    #[error("opening the PostgreSQL store: {0}")]
    OpenTarget(StoreError),
    #[error("reading the SQLite store's tables: {0}")]
    SourceSchema(StoreError),
    #[error("reading the PostgreSQL schema's tables: {0}")]
    TargetSchema(tokio_postgres::Error),
    #[error("the schemas differ at table {table}: {detail}; nothing was written")]
    SchemaDrift { table: String, detail: String },
    #[error("connecting to PostgreSQL: {0}")]
    Connect(StoreError),
    #[error("creating the events' day partitions: {0}")]
    Partitions(StoreError),
    #[error("starting the transaction: {0}")]
    Begin(tokio_postgres::Error),
    #[error("locking the tables (is a controller using this database?): {0}")]
    Lock(tokio_postgres::Error),
    #[error("checking that the target is empty: {0}")]
    CheckEmpty(tokio_postgres::Error),
    #[error(
        "the target database is not empty ({} hold rows): migrate-store copies only into a \
         new database; nothing was written",
        tables.join(", ")
    )]
    NotEmpty { tables: Vec<String> },
    #[error("removing the schema's own first admin: {0}")]
    Seed(tokio_postgres::Error),
    #[error("reading table {table} from SQLite: {source}")]
    ReadSource {
        table: String,
        source: rusqlite::Error,
    },
    #[error("table {table}, row {row}, column {column}: {detail}; nothing was written")]
    BadValue {
        table: String,
        column: String,
        row: u64,
        detail: String,
    },
    #[error("the SQLite reader failed: {0}")]
    ReadTask(StoreError),
    #[error("the SQLite reader stopped before the end")]
    ReaderStopped,
    #[error("the PostgreSQL writer stopped before the end")]
    WriterStopped,
    #[error("copying table {table}: {source}")]
    Copy {
        table: String,
        source: tokio_postgres::Error,
    },
    #[error("filling event_keys from the copied events: {0}")]
    EventKeys(tokio_postgres::Error),
    #[error("counting the rows of {table}: {source}")]
    Count {
        table: String,
        source: tokio_postgres::Error,
    },
    #[error("table {table} has {found} rows after the copy, not {expected}; nothing was written")]
    CountMismatch {
        table: String,
        expected: u64,
        found: u64,
    },
    #[error("committing the copy: {0}")]
    Commit(tokio_postgres::Error),
    #[error("verifying the copy's audit chain: {0}")]
    VerifyTarget(StoreError),
    #[error("verifying the SQLite store's audit chain: {0}")]
    VerifySource(StoreError),
    #[error(
        "the copy's audit chain is broken at seq {seq} ({why}) but the SQLite store's is not: \
         drop the PostgreSQL database and run again"
    )]
    AuditBroken { seq: u64, why: String },
    #[error(
        "every row was copied, but the audit chain was already broken in the SQLite store at \
         seq {seq} ({why}); the copy keeps it exactly as it was"
    )]
    AuditBrokenInSource { seq: u64, why: String },
}

/// What a migration copied and verified.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Each table and its row count, the same in both stores.
    pub tables: Vec<(String, u64)>,
    /// The copy's audit chain, verified.
    pub audit: Verification,
    pub took: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "copied in {:.1} s; rows per table (checked against SQLite):",
            self.took.as_secs_f64()
        )?;
        for (table, rows) in &self.tables {
            writeln!(f, "  {table:<12} {rows:>10}")?;
        }
        write!(
            f,
            "audit chain verified: {} entries, last seq {}, hash {}",
            self.audit.entries_checked, self.audit.last_seq, self.audit.last_hash
        )
    }
}

/// Copies the SQLite store in `data_dir` into the empty PostgreSQL database of `to`, and
/// verifies the copy.
pub async fn migrate_store(data_dir: &Path, to: &PgOptions) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let path = data_dir.join(DB_FILE);
    if !path.is_file() {
        return Err(MigrateError::NoStore {
            path: path.display().to_string(),
        });
    }
    let source = Store::open(data_dir).map_err(MigrateError::OpenSource)?;
    let target = PgStore::open(to).await.map_err(MigrateError::OpenTarget)?;
    let plan = tables::plan(
        &target::schema(&target).await?,
        &source::schema(&source).await?,
    )?;
    let tables = copy(&source, &target, plan).await?;
    let audit = check_audit(&source, &target).await?;
    Ok(Summary {
        tables,
        audit,
        took: started.elapsed(),
    })
}

/// The reader and the writer, joined; the error that stopped the other wins.
async fn copy(
    source: &Store,
    target: &PgStore,
    plan: Vec<tables::Table>,
) -> Result<Vec<(String, u64)>, MigrateError> {
    let (out, mut rows) = tokio::sync::mpsc::channel(2);
    let reader = {
        let (source, plan) = (source.clone(), plan.clone());
        tokio::spawn(async move { source::stream(&source, plan, out).await })
    };
    let written = target::copy(target, &plan, &mut rows).await;
    drop(rows);
    let read = reader
        .await
        .map_err(|e| MigrateError::ReadTask(StoreError::Task(e.to_string())))?;
    match (written, read) {
        (Err(MigrateError::ReaderStopped), Err(e)) | (Ok(_), Err(e)) => Err(e),
        (written, _) => written,
    }
}

/// The copy's audit chain must verify; if it does not, the source's tells whose fault it is.
async fn check_audit(source: &Store, target: &PgStore) -> Result<Verification, MigrateError> {
    let copied = target
        .verify_audit()
        .await
        .map_err(MigrateError::VerifyTarget)?;
    let Some((seq, why)) = copied.first_bad.clone() else {
        return Ok(copied);
    };
    let original = source
        .verify_audit()
        .await
        .map_err(MigrateError::VerifySource)?;
    Err(match original.first_bad == copied.first_bad {
        true => MigrateError::AuditBrokenInSource { seq, why },
        false => MigrateError::AuditBroken { seq, why },
    })
}
