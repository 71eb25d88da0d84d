//! The PostgreSQL side: the schema's columns, and the copy itself in one transaction. The
//! transaction locks every table against writers, refuses a database that holds anything
//! (but the first admin its schema's migration made), streams each table in with one
//! `COPY ... FROM STDIN (FORMAT binary)`, fills `event_keys` from the copied events, and
//! compares every table's count with the snapshot's before it commits: a migration that fails
//! anywhere leaves nothing behind but the empty schema, and can simply be run again.

use super::MigrateError;
use super::source::{Batch, Row};
use super::tables::{Kind, PgColumn, Table};
use crate::store::pg::PgStore;
use std::collections::HashMap;
use tokio::sync::mpsc::Receiver;
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

/// The principal the PostgreSQL schema's migration creates, as it creates it (never used).
const SEEDED_ADMIN: &str = "name = 'admin' AND created_by = 'init' AND last_login_at IS NULL
    AND cert_serial = '' AND password_hash IS NULL AND totp_secret IS NULL
    AND revoked_at IS NULL AND expires_at IS NULL";

/// The longest the copy waits to lock the tables from someone using them.
const LOCK_WAIT: &str = "10s";

/// Every table's columns in the current schema, in order.
pub(super) async fn schema(s: &PgStore) -> Result<HashMap<String, Vec<PgColumn>>, MigrateError> {
    let client = s.client().await.map_err(MigrateError::Connect)?;
    let rows = client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT,
                    column_default IS NOT NULL
             FROM information_schema.columns WHERE table_schema = current_schema()
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .await
        .map_err(MigrateError::TargetSchema)?;
    let mut tables: HashMap<String, Vec<PgColumn>> = HashMap::new();
    for r in rows {
        let get = |i| {
            r.try_get::<_, String>(i)
                .map_err(MigrateError::TargetSchema)
        };
        let data_type = get(2)?;
        tables.entry(get(0)?).or_default().push(PgColumn {
            name: get(1)?,
            kind: Kind::of(&data_type),
            data_type,
            has_default: r.try_get(3).map_err(MigrateError::TargetSchema)?,
        });
    }
    Ok(tables)
}

/// Copies what the reader sends on `rows` into `s`, table by table; returns each table's
/// count (and `event_keys`'), checked against the snapshot's.
pub(super) async fn copy(
    s: &PgStore,
    tables: &[Table],
    rows: &mut Receiver<Batch>,
) -> Result<Vec<(String, u64)>, MigrateError> {
    let Some(Batch::Start { counts, days }) = rows.recv().await else {
        return Err(MigrateError::ReaderStopped);
    };
    // Before the transaction: creating a partition locks `events`, which the copy locks too.
    s.ensure_partitions(days)
        .await
        .map_err(MigrateError::Partitions)?;
    let mut client = s.client().await.map_err(MigrateError::Connect)?;
    let tx = client.transaction().await.map_err(MigrateError::Begin)?;
    prepare(&tx, tables).await?;
    for t in tables {
        copy_table(&tx, t, rows).await?;
    }
    tx.batch_execute(
        "INSERT INTO event_keys (agent_id, seq, time_ms) SELECT agent_id, seq, time_ms FROM events",
    )
    .await
    .map_err(MigrateError::EventKeys)?;
    let copied = counted(&tx, tables, &counts).await?;
    tx.commit().await.map_err(MigrateError::Commit)?;
    Ok(copied)
}

/// Each table's count (`event_keys` last), which must be the snapshot's (the events' for
/// `event_keys`).
async fn counted(
    tx: &Transaction<'_>,
    tables: &[Table],
    snapshot: &[u64],
) -> Result<Vec<(String, u64)>, MigrateError> {
    let mut expected: Vec<(&str, u64)> = tables
        .iter()
        .map(|t| t.name)
        .zip(snapshot.iter().copied())
        .collect();
    let events = expected
        .iter()
        .find(|(t, _)| *t == "events")
        .map_or(0, |e| e.1);
    expected.push(("event_keys", events));
    let mut copied = Vec::with_capacity(expected.len());
    for (table, expected) in expected {
        let found = count(tx, table).await?;
        if found != expected {
            let table = table.to_string();
            return Err(MigrateError::CountMismatch {
                table,
                expected,
                found,
            });
        }
        copied.push((table.to_string(), found));
    }
    Ok(copied)
}

/// Lifts the statement timeout for this transaction (one COPY may take long), locks every
/// table against writers (waiting at most `LOCK_WAIT` for one that uses them), checks that
/// none holds a row, and removes the schema's own first admin so that the store's comes over
/// as it is.
async fn prepare(tx: &Transaction<'_>, tables: &[Table]) -> Result<(), MigrateError> {
    let mut names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    names.push("event_keys");
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '{LOCK_WAIT}';
         LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))
    .await
    .map_err(MigrateError::Lock)?;
    let mut holding = Vec::new();
    for name in names {
        let rows = match name {
            "principals" => format!("principals WHERE NOT ({SEEDED_ADMIN})"),
            _ => name.to_string(),
        };
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {rows})");
        let row = tx
            .query_one(&sql, &[])
            .await
            .map_err(MigrateError::CheckEmpty)?;
        if row.try_get(0).map_err(MigrateError::CheckEmpty)? {
            holding.push(name.to_string());
        }
    }
    if !holding.is_empty() {
        return Err(MigrateError::NotEmpty { tables: holding });
    }
    tx.batch_execute(&format!("DELETE FROM principals WHERE {SEEDED_ADMIN}"))
        .await
        .map_err(MigrateError::Seed)
}

/// Streams one table's rows in with one COPY; returns once the reader's `End` for it came.
async fn copy_table(
    tx: &Transaction<'_>,
    t: &Table,
    rows: &mut Receiver<Batch>,
) -> Result<u64, MigrateError> {
    let failed = |source| MigrateError::Copy {
        table: t.name.to_string(),
        source,
    };
    let types: Vec<_> = t.columns.iter().map(|(_, kind)| kind.pg_type()).collect();
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        t.name,
        t.column_list()
    );
    let sink = tx.copy_in(&sql).await.map_err(failed)?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    loop {
        match rows.recv().await {
            Some(Batch::Rows(chunk)) => {
                for row in &chunk {
                    writer.as_mut().write(&cells(row)).await.map_err(failed)?;
                }
            }
            Some(Batch::End) => break,
            Some(Batch::Start { .. }) | None => return Err(MigrateError::ReaderStopped),
        }
    }
    writer.as_mut().finish().await.map_err(failed)
}

fn cells(row: &Row) -> Vec<&(dyn ToSql + Sync)> {
    row.iter().map(|c| c as &(dyn ToSql + Sync)).collect()
}

async fn count(tx: &Transaction<'_>, table: &str) -> Result<u64, MigrateError> {
    let failed = |source| MigrateError::Count {
        table: table.to_string(),
        source,
    };
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let row = tx.query_one(&sql, &[]).await.map_err(failed)?;
    let n: i64 = row.try_get(0).map_err(failed)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
