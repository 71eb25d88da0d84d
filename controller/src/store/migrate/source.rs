//! The SQLite side: the store's tables and columns, and one consistent snapshot of it read
//! table by table and sent in chunks to the writer. The whole read is one SQLite read
//! transaction, so the counts, the event days and every row come from the same moment, even
//! if something writes to the store meanwhile; and the bounded channel keeps at most a few
//! chunks in memory, however large the store.

use super::MigrateError;
use super::tables::{Cell, Table};
use crate::store::Store;
use crate::store::pg::partitions::day_of;
use rusqlite::Connection;
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc::Sender;

/// Rows per chunk sent to the writer.
pub(super) const CHUNK_ROWS: usize = 2000;

/// A row of cells, in the table's column order.
pub(super) type Row = Vec<Cell>;

/// What the reader sends: `Start`, then for each table in order its `Rows` and an `End`.
#[derive(Debug)]
pub(super) enum Batch {
    /// Each table's row count in the snapshot, and the days (since the epoch) of its events.
    Start {
        counts: Vec<u64>,
        days: HashSet<i64>,
    },
    Rows(Vec<Row>),
    /// The current table's last rows have been sent.
    End,
}

/// Every table of the store (but SQLite's own) with its columns.
pub(super) async fn schema(s: &Store) -> Result<HashMap<String, Vec<String>>, MigrateError> {
    let read = s.with(|c| {
        let mut stmt = c.prepare(
            "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
        )?;
        let mut tables: HashMap<String, Vec<String>> = HashMap::new();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (table, column) = row?;
            tables.entry(table).or_default().push(column);
        }
        Ok(tables)
    });
    read.await.map_err(MigrateError::SourceSchema)
}

/// Reads the snapshot of `tables` into `out`, on the store's connection.
pub(super) async fn stream(
    s: &Store,
    tables: Vec<Table>,
    out: Sender<Batch>,
) -> Result<(), MigrateError> {
    let read = s.with(move |c| Ok(snapshot(c, &tables, &out)));
    read.await.map_err(MigrateError::ReadTask)?
}

fn snapshot(c: &mut Connection, tables: &[Table], out: &Sender<Batch>) -> Result<(), MigrateError> {
    let failed = |table: &str| {
        let table = table.to_string();
        move |source| MigrateError::ReadSource { table, source }
    };
    // A deferred transaction: its first read fixes the snapshot every later read sees.
    let tx = c.transaction().map_err(failed("(snapshot)"))?;
    let mut counts = Vec::with_capacity(tables.len());
    for t in tables {
        let sql = format!("SELECT COUNT(*) FROM {}", t.name);
        let n: i64 = tx
            .query_row(&sql, [], |r| r.get(0))
            .map_err(failed(t.name))?;
        counts.push(u64::try_from(n).unwrap_or(0));
    }
    let days = event_days(&tx).map_err(failed("events"))?;
    send(out, Batch::Start { counts, days })?;
    for t in tables {
        read_table(&tx, t, out)?;
    }
    Ok(())
}

/// The days of every stored event's time.
fn event_days(c: &Connection) -> rusqlite::Result<HashSet<i64>> {
    let mut stmt = c.prepare("SELECT time_ms FROM events")?;
    let times = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    times.map(|t| t.map(day_of)).collect()
}

/// Sends one table's rows in chunks, then its `End`.
fn read_table(c: &Connection, t: &Table, out: &Sender<Batch>) -> Result<(), MigrateError> {
    let failed = |source| MigrateError::ReadSource {
        table: t.name.to_string(),
        source,
    };
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        t.column_list(),
        t.name,
        t.order
    );
    let mut stmt = c.prepare(&sql).map_err(failed)?;
    let mut rows = stmt.query([]).map_err(failed)?;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let mut read = 0u64;
    while let Some(row) = rows.next().map_err(failed)? {
        read += 1;
        let mut cells = Vec::with_capacity(t.columns.len());
        for (i, (column, kind)) in t.columns.iter().enumerate() {
            let value = row.get_ref(i).map_err(failed)?;
            let cell = Cell::read(*kind, value).map_err(|detail| MigrateError::BadValue {
                table: t.name.to_string(),
                column: column.clone(),
                row: read,
                detail,
            })?;
            cells.push(cell);
        }
        chunk.push(cells);
        if chunk.len() == CHUNK_ROWS {
            send(out, Batch::Rows(std::mem::take(&mut chunk)))?;
        }
    }
    if !chunk.is_empty() {
        send(out, Batch::Rows(chunk))?;
    }
    send(out, Batch::End)
}

/// Sends to the writer, from the blocking pool; fails if the writer has stopped.
fn send(out: &Sender<Batch>, batch: Batch) -> Result<(), MigrateError> {
    out.blocking_send(batch)
        .map_err(|_| MigrateError::WriterStopped)
}
