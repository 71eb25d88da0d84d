//! Hunts (issue #15): one collection asked of many agents. A hunt is stored with one command
//! per targeted agent, in one transaction; its progress is its commands' statuses, and its
//! results are their rows (`collections.rs`). An agent that is offline runs its command when
//! it returns, as any queued command, until the hunt (its commands) expires; cancelling ends
//! the commands not yet answered. Every backend passes `conformance::hunts`.

use super::commands::{COLUMNS as COMMAND_COLUMNS, from_row as command_row, insert_row};
use super::rows::Cols;
use super::{CommandRow, CommandStatus, Store, StoreError};
use rusqlite::{OptionalExtension, params};

/// A hunt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuntRow {
    pub id: String,
    pub collector: String,
    /// The collector's arguments, "key=value".
    pub args: Vec<String>,
    /// What chose the agents, as shown: "agents:ID,ID", "labels:k=v" or "all".
    pub selector: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub cancelled_at_ms: Option<i64>,
}

/// How far a hunt has come: its commands by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HuntCounts {
    pub targeted: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Ended unanswered: the agent did not return in time, or the hunt was cancelled.
    pub expired: u64,
    /// Sent or waiting for the agent to return.
    pub pending: u64,
}

impl HuntCounts {
    /// Adds `n` commands in `status`.
    pub fn add(&mut self, status: CommandStatus, n: u64) {
        self.targeted += n;
        match status {
            CommandStatus::Succeeded => self.succeeded += n,
            CommandStatus::Failed => self.failed += n,
            CommandStatus::Expired => self.expired += n,
            CommandStatus::Pending | CommandStatus::Delivered => self.pending += n,
        }
    }
}

/// A hunt and its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuntSummary {
    pub hunt: HuntRow,
    pub counts: HuntCounts,
}

pub(super) const COLUMNS: &str =
    "id, collector, args, selector, created_by, created_at, expires_at, cancelled_at";

pub(super) fn from_row<R: Cols>(r: &R) -> Result<HuntRow, R::Error> {
    let args: String = r.col(2)?;
    Ok(HuntRow {
        id: r.col(0)?,
        collector: r.col(1)?,
        args: serde_json::from_str(&args).unwrap_or_else(|_| vec![args]),
        selector: r.col(3)?,
        created_by: r.col(4)?,
        created_at_ms: r.col(5)?,
        expires_at_ms: r.col(6)?,
        cancelled_at_ms: r.col(7)?,
    })
}

/// The hunt's arguments as stored.
pub(super) fn args_text(h: &HuntRow) -> String {
    serde_json::Value::from(h.args.clone()).to_string()
}

/// Statuses of a hunt's commands, counted.
pub(super) const COUNTS: &str = "SELECT c.status, count(*) FROM hunt_commands h
     JOIN commands c ON c.id = h.command_id WHERE h.hunt_id = $1 GROUP BY c.status";
/// A hunt's commands, in agent order.
pub(super) fn commands_sql() -> String {
    let cols: Vec<String> = COMMAND_COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect();
    format!(
        "SELECT {} FROM hunt_commands h JOIN commands c ON c.id = h.command_id
         WHERE h.hunt_id = $1 ORDER BY c.agent_id",
        cols.join(", ")
    )
}
/// Ends a hunt's open commands.
pub(super) const CANCEL_COMMANDS: &str = "UPDATE commands SET status = $3, completed_at = $2,
         error = 'cancelled with its hunt'
     WHERE id IN (SELECT command_id FROM hunt_commands WHERE hunt_id = $1)
       AND status IN ($4, $5) RETURNING id";

/// The hunts aggregate.
pub trait Hunts: Send + Sync {
    /// Stores a new hunt with its commands (one per targeted agent), all or nothing.
    fn create_hunt(
        &self,
        hunt: HuntRow,
        commands: Vec<CommandRow>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The newest `limit` hunts, newest first, with their progress.
    fn hunts(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<HuntSummary>, StoreError>> + Send;

    fn hunt(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<HuntSummary>, StoreError>> + Send;

    /// The hunt's commands, in agent order.
    fn hunt_commands(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Vec<CommandRow>, StoreError>> + Send;

    /// Marks the hunt cancelled (once) and ends its commands not yet answered; returns the
    /// ids of the commands it ended, or None if there is no such hunt.
    fn cancel_hunt(
        &self,
        id: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Vec<String>>, StoreError>> + Send;
}

/// `sql` with SQLite's `?N` for PostgreSQL's `$N`.
fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn counts(c: &rusqlite::Connection, id: &str) -> Result<HuntCounts, StoreError> {
    let mut stmt = c.prepare_cached(&lite(COUNTS))?;
    let mut counts = HuntCounts::default();
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        counts.add(status, n as u64);
    }
    Ok(counts)
}

fn summaries(
    c: &rusqlite::Connection,
    hunts: Vec<HuntRow>,
) -> Result<Vec<HuntSummary>, StoreError> {
    hunts
        .into_iter()
        .map(|hunt| {
            let counts = counts(c, &hunt.id)?;
            Ok(HuntSummary { hunt, counts })
        })
        .collect()
}

impl Hunts for Store {
    async fn create_hunt(&self, h: HuntRow, commands: Vec<CommandRow>) -> Result<(), StoreError> {
        self.grouped(move |c| {
            c.execute(
                &format!("INSERT INTO hunts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    h.id,
                    h.collector,
                    args_text(&h),
                    h.selector,
                    h.created_by,
                    h.created_at_ms,
                    h.expires_at_ms,
                    h.cancelled_at_ms
                ],
            )?;
            for row in &commands {
                insert_row(c, row)?;
                c.execute(
                    "INSERT INTO hunt_commands (hunt_id, command_id, agent_id) VALUES (?1, ?2, ?3)",
                    params![h.id, row.id, row.agent_id],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn hunts(&self, limit: u32) -> Result<Vec<HuntSummary>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM hunts ORDER BY created_at DESC, id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], |r| from_row(r))?;
            summaries(c, rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn hunt(&self, id: String) -> Result<Option<HuntSummary>, StoreError> {
        self.with(move |c| {
            let sql = format!("SELECT {COLUMNS} FROM hunts WHERE id = ?1");
            let found = c.query_row(&sql, [id], |r| from_row(r)).optional()?;
            Ok(summaries(c, found.into_iter().collect())?.pop())
        })
        .await
    }

    async fn hunt_commands(&self, id: String) -> Result<Vec<CommandRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&lite(&commands_sql()))?;
            let rows = stmt.query_map([id], |r| command_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn cancel_hunt(
        &self,
        id: String,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.grouped(move |c| {
            let found = c.execute(
                "UPDATE hunts SET cancelled_at = COALESCE(cancelled_at, ?2) WHERE id = ?1",
                params![id, now_ms],
            )?;
            if found == 0 {
                return Ok(None);
            }
            let mut stmt = c.prepare(&lite(CANCEL_COMMANDS))?;
            let ended = stmt.query_map(
                params![
                    id,
                    now_ms,
                    CommandStatus::Expired,
                    CommandStatus::Pending,
                    CommandStatus::Delivered
                ],
                |r| r.get(0),
            )?;
            Ok(Some(ended.collect::<Result<_, _>>()?))
        })
        .await
    }
}
