//! The rows collections return (issue #15): each row an agent's collection sent, stored once
//! by (command, row number) however often its chunk is sent again, and read back by command,
//! agent and text. Every backend passes `conformance::collections`.

use super::rows::Cols;
use super::{Store, StoreError};
use rusqlite::params;
use rusqlite::types::Value;

/// One stored row: a JSON object, as the agent sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionRow {
    pub command_id: String,
    pub agent_id: String,
    pub row_no: u64,
    pub data: String,
}

/// Which rows `collection_rows` returns: those of the given commands, or of the hunt's, in
/// (command, row) order.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    pub command_ids: Vec<String>,
    /// Instead of `command_ids`: every command of this hunt.
    pub hunt_id: Option<String>,
    pub agent_id: Option<String>,
    /// The row's JSON text contains this, ASCII case ignored.
    pub contains: Option<String>,
    /// Only rows after this (command id, row number).
    pub after: Option<(String, u64)>,
    pub limit: u32,
}

pub(super) const COLUMNS: &str = "command_id, agent_id, row_no, data";

pub(super) fn from_row<R: Cols>(r: &R) -> Result<CollectionRow, R::Error> {
    Ok(CollectionRow {
        command_id: r.col(0)?,
        agent_id: r.col(1)?,
        row_no: r.col::<i64>(2)? as u64,
        data: r.col(3)?,
    })
}

/// The collection rows aggregate.
pub trait Collections: Send + Sync {
    /// Stores `rows` (numbered from `first_row`) of `command_id`'s collection on `agent_id`;
    /// rows already stored are left as they are. Returns how many were new.
    fn add_collection_rows(
        &self,
        command_id: String,
        agent_id: String,
        first_row: u64,
        rows: Vec<String>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many rows of `command_id` are stored.
    fn collection_row_count(
        &self,
        command_id: String,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The rows `f` selects, at most `f.limit`.
    fn collection_rows(
        &self,
        f: RowFilter,
    ) -> impl Future<Output = Result<Vec<CollectionRow>, StoreError>> + Send;
}

impl Collections for Store {
    async fn add_collection_rows(
        &self,
        command_id: String,
        agent_id: String,
        first_row: u64,
        rows: Vec<String>,
    ) -> Result<u64, StoreError> {
        self.grouped(move |c| {
            let mut insert = c.prepare_cached(
                "INSERT INTO collection_rows (command_id, agent_id, row_no, data)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?;
            let mut new = 0;
            for (i, data) in rows.iter().enumerate() {
                let row_no = (first_row + i as u64) as i64;
                new += insert.execute(params![command_id, agent_id, row_no, data])? as u64;
            }
            Ok(new)
        })
        .await
    }

    async fn collection_row_count(&self, command_id: String) -> Result<u64, StoreError> {
        self.with(move |c| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM collection_rows WHERE command_id = ?1",
                [command_id],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn collection_rows(&self, f: RowFilter) -> Result<Vec<CollectionRow>, StoreError> {
        self.with(move |c| {
            let (sql, args) = select(f);
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| from_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// The query for `f` with SQLite's numbered parameters.
fn select(f: RowFilter) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {COLUMNS} FROM collection_rows WHERE command_id IN (");
    let mut args: Vec<Value> = Vec::new();
    if let Some(hunt) = f.hunt_id {
        sql.push_str("SELECT command_id FROM hunt_commands WHERE hunt_id = ?");
        args.push(Value::Text(hunt));
    } else {
        for (i, id) in f.command_ids.into_iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(Value::Text(id));
        }
    }
    if args.is_empty() {
        sql.push_str("NULL");
    }
    sql.push(')');
    if let Some(agent) = f.agent_id {
        sql.push_str(" AND agent_id = ?");
        args.push(Value::Text(agent));
    }
    if let Some(text) = f.contains {
        sql.push_str(" AND instr(lower(data), lower(?)) > 0");
        args.push(Value::Text(text));
    }
    if let Some((command, row)) = f.after {
        sql.push_str(" AND (command_id > ? OR (command_id = ? AND row_no > ?))");
        args.extend([Value::Text(command.clone()), Value::Text(command)]);
        args.push(Value::Integer(row as i64));
    }
    sql.push_str(" ORDER BY command_id, row_no LIMIT ?");
    args.push(Value::Integer(i64::from(f.limit)));
    (sql, args)
}
