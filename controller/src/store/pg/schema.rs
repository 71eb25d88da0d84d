//! The PostgreSQL schema's migrations: applied in order, all in one transaction, each
//! recorded in `schema_version`. The transaction first takes an advisory lock, so when two
//! controllers start at once one migrates and the other then finds nothing left to do.

use crate::store::StoreError;
use tokio_postgres::Client;

/// The advisory lock held while migrating ("cordon" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_7264_6f6e;

/// Ordered migrations; `schema_version` holds the numbers of those applied.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_replicas.sql"),
    include_str!("migrations/0003_lighter_event_indexes.sql"),
    include_str!("migrations/0004_collections.sql"),
    include_str!("migrations/0005_hunts.sql"),
    include_str!("migrations/0006_fetched_files.sql"),
    include_str!("migrations/0007_edge_versions.sql"),
    include_str!("migrations/0008_ioc_block.sql"),
];

/// Brings the schema up to date.
pub(super) async fn migrate(c: &mut Client) -> Result<(), StoreError> {
    let failed = |version| move |source| StoreError::PgMigrate { version, source };
    let tx = c.transaction().await.map_err(failed(0))?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(failed(0))?;
    let done: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(failed(0))?
        .try_get(0)
        .map_err(failed(0))?;
    let done = usize::try_from(done).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let version = i + 1;
        tx.batch_execute(sql).await.map_err(failed(version))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(version as i32)],
        )
        .await
        .map_err(failed(version))?;
    }
    tx.commit().await.map_err(failed(MIGRATIONS.len()))
}
