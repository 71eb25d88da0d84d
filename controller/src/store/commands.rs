//! The persisted command queue. A command is written before it is sent, and every command
//! ends in a recorded state: succeeded, failed (with the reason) or expired.

use super::rows::Cols;
use super::{CommandStatus, Store, StoreError};
use cordon_proto::action::Kind;
use rusqlite::{OptionalExtension, params};

/// The short name stored and shown for an action.
pub fn action_kind(action: &Kind) -> &'static str {
    match action {
        Kind::Ping(_) => "ping",
        Kind::CollectInventory(_) => "inventory",
        Kind::Isolate(_) => "isolate",
        Kind::Release(_) => "release",
        Kind::Kill(_) => "kill",
        Kind::Quarantine(_) => "quarantine",
        Kind::ListQuarantine(_) => "quarantine-list",
        Kind::Restore(_) => "restore",
        Kind::BlockIp(_) => "block-ip",
        Kind::UnblockIp(_) => "unblock-ip",
        Kind::Collect(_) => "collect",
        Kind::FetchFile(_) => "fetch",
    }
}

#[derive(Debug, Clone)]
pub struct CommandRow {
    pub id: String,
    pub agent_id: String,
    pub kind: String,
    pub envelope: Vec<u8>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub status: CommandStatus,
    pub delivered_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    pub error: String,
    pub result: Option<Vec<u8>>,
    pub created_by: String,
}

/// What happened to a result the agent sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Recorded,
    UnknownCommand,
    /// The command belongs to another agent: the result is not accepted.
    WrongAgent,
    /// The command had already ended (a resent result, or it expired first).
    AlreadyFinal,
}

pub(super) const COLUMNS: &str = "id, agent_id, kind, envelope, created_at, expires_at, status, \
     delivered_at, completed_at, error, result, created_by";

pub(super) fn from_row<R: Cols>(r: &R) -> Result<CommandRow, R::Error> {
    Ok(CommandRow {
        id: r.col(0)?,
        agent_id: r.col(1)?,
        kind: r.col(2)?,
        envelope: r.col(3)?,
        created_at_ms: r.col(4)?,
        expires_at_ms: r.col(5)?,
        status: r.col(6)?,
        delivered_at_ms: r.col(7)?,
        completed_at_ms: r.col(8)?,
        error: r.col(9)?,
        result: r.col(10)?,
        created_by: r.col(11)?,
    })
}

/// The command queue aggregate: every command is stored before it is sent and ends in a
/// recorded state (succeeded, failed or expired), its result accepted once and only from the
/// agent it was for. Every backend passes `conformance::command_queue`.
pub trait CommandQueue: Send + Sync {
    /// Stores a new command.
    fn insert_command(
        &self,
        row: CommandRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores new commands together; with `isolation`, records with them that each one's
    /// agent is to be isolated (true) or released (false), as the controller's desired state.
    /// All or nothing.
    fn insert_commands(
        &self,
        rows: Vec<CommandRow>,
        isolation: Option<bool>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An agent's commands not yet final nor expired at `now_ms`, oldest first.
    fn open_commands(
        &self,
        agent_id: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<CommandRow>, StoreError>> + Send;

    /// A pending command was pushed on the agent's stream.
    fn mark_delivered(
        &self,
        id: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records an agent's result, if the command is that agent's and still open.
    fn complete_command(
        &self,
        id: String,
        agent_id: String,
        status: CommandStatus,
        error: String,
        result: Vec<u8>,
        now_ms: i64,
    ) -> impl Future<Output = Result<Completion, StoreError>> + Send;

    /// Ends every open command whose expiry has passed; returns their ids.
    fn expire_commands(
        &self,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    fn command(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<CommandRow>, StoreError>> + Send;

    /// The newest `limit` commands, of one agent or all.
    fn commands(
        &self,
        agent_id: Option<String>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<CommandRow>, StoreError>> + Send;
}

impl CommandQueue for Store {
    async fn insert_command(&self, row: CommandRow) -> Result<(), StoreError> {
        self.grouped(move |c| insert_row(c, &row)).await
    }

    async fn insert_commands(
        &self,
        rows: Vec<CommandRow>,
        isolation: Option<bool>,
    ) -> Result<(), StoreError> {
        self.grouped(move |c| {
            for row in &rows {
                if let Some(desired) = isolation {
                    super::agents::set_isolation_desired(c, &row.agent_id, desired)?;
                }
                insert_row(c, row)?;
            }
            Ok(())
        })
        .await
    }

    async fn open_commands(
        &self,
        agent_id: String,
        now_ms: i64,
    ) -> Result<Vec<CommandRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM commands WHERE agent_id = ?1
                   AND status IN (?3, ?4) AND expires_at > ?2
                 ORDER BY created_at, id"
            ))?;
            let open = (CommandStatus::Pending, CommandStatus::Delivered);
            let rows =
                stmt.query_map(params![agent_id, now_ms, open.0, open.1], |r| from_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn mark_delivered(&self, id: String, now_ms: i64) -> Result<(), StoreError> {
        self.grouped(move |c| {
            c.execute(
                "UPDATE commands SET status = ?3, delivered_at = ?2
                 WHERE id = ?1 AND status = ?4",
                params![id, now_ms, CommandStatus::Delivered, CommandStatus::Pending],
            )?;
            Ok(())
        })
        .await
    }

    async fn complete_command(
        &self,
        id: String,
        agent_id: String,
        status: CommandStatus,
        error: String,
        result: Vec<u8>,
        now_ms: i64,
    ) -> Result<Completion, StoreError> {
        self.grouped(move |c| {
            let found: Option<(String, CommandStatus)> = c
                .query_row("SELECT agent_id, status FROM commands WHERE id = ?1", [&id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok(match found {
                None => Completion::UnknownCommand,
                Some((owner, _)) if owner != agent_id => Completion::WrongAgent,
                Some((_, s)) if s.is_final() => Completion::AlreadyFinal,
                Some(_) => {
                    c.execute(
                        "UPDATE commands SET status = ?2, error = ?3, result = ?4, completed_at = ?5,
                             delivered_at = COALESCE(delivered_at, ?5)
                         WHERE id = ?1",
                        params![id, status, error, result, now_ms],
                    )?;
                    Completion::Recorded
                }
            })
        })
        .await
    }

    async fn expire_commands(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "UPDATE commands SET status = ?2, completed_at = ?1,
                     error = 'expired before the agent ran it'
                 WHERE status IN (?3, ?4) AND expires_at <= ?1 RETURNING id",
            )?;
            let rows = stmt.query_map(
                params![
                    now_ms,
                    CommandStatus::Expired,
                    CommandStatus::Pending,
                    CommandStatus::Delivered
                ],
                |r| r.get(0),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn command(&self, id: String) -> Result<Option<CommandRow>, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM commands WHERE id = ?1"),
                [id],
                |r| from_row(r),
            )
            .optional()?)
        })
        .await
    }

    async fn commands(
        &self,
        agent_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<CommandRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM commands WHERE (?1 IS NULL OR agent_id = ?1)
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![agent_id, limit], |r| from_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// Inserts one new command.
pub(super) fn insert_row(c: &rusqlite::Connection, row: &CommandRow) -> Result<(), StoreError> {
    c.execute(
        &format!(
            "INSERT INTO commands ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            row.id, row.agent_id, row.kind, row.envelope, row.created_at_ms,
            row.expires_at_ms, row.status, row.delivered_at_ms,
            row.completed_at_ms, row.error, row.result, row.created_by
        ],
    )?;
    Ok(())
}
