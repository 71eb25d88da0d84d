//! The command queue on PostgreSQL.

use super::{PgStore, all, big};
use crate::store::commands::{COLUMNS, from_row};
use crate::store::{CommandQueue, CommandRow, CommandStatus, Completion, StoreError};

impl CommandQueue for PgStore {
    async fn insert_command(&self, row: CommandRow) -> Result<(), StoreError> {
        self.insert_commands(vec![row], None).await
    }

    async fn insert_commands(
        &self,
        rows: Vec<CommandRow>,
        isolation: Option<bool>,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if let Some(desired) = isolation {
            let ids: Vec<&str> = rows.iter().map(|r| r.agent_id.as_str()).collect();
            tx.execute(super::fleet::SET_ISOLATION_DESIRED, &[&ids, &desired])
                .await?;
        }
        insert_rows(&tx, &rows).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_commands(
        &self,
        agent_id: String,
        now_ms: i64,
    ) -> Result<Vec<CommandRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM commands WHERE agent_id = $1
               AND status IN ($3, $4) AND expires_at > $2
             ORDER BY created_at, id"
        );
        let open = (CommandStatus::Pending, CommandStatus::Delivered);
        let c = self.client().await?;
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&agent_id, &now_ms, &open.0, &open.1];
        all(&c.query(&sql, &args).await?, from_row)
    }

    async fn mark_delivered(&self, id: String, now_ms: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE commands SET status = $3, delivered_at = $2 WHERE id = $1 AND status = $4",
            &[
                &id,
                &now_ms,
                &CommandStatus::Delivered,
                &CommandStatus::Pending,
            ],
        )
        .await?;
        Ok(())
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let found = tx
            .query_opt(
                "SELECT agent_id, status FROM commands WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        let found: Option<(String, CommandStatus)> = match found {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        };
        let outcome = match found {
            None => Completion::UnknownCommand,
            Some((owner, _)) if owner != agent_id => Completion::WrongAgent,
            Some((_, s)) if s.is_final() => Completion::AlreadyFinal,
            Some(_) => {
                tx.execute(
                    "UPDATE commands SET status = $2, error = $3, result = $4, completed_at = $5,
                         delivered_at = COALESCE(delivered_at, $5)
                     WHERE id = $1",
                    &[&id, &status, &error, &result, &now_ms],
                )
                .await?;
                Completion::Recorded
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn expire_commands(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "UPDATE commands SET status = $2, completed_at = $1,
                     error = 'expired before the agent ran it'
                 WHERE status IN ($3, $4) AND expires_at <= $1 RETURNING id",
                &[
                    &now_ms,
                    &CommandStatus::Expired,
                    &CommandStatus::Pending,
                    &CommandStatus::Delivered,
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    async fn command(&self, id: String) -> Result<Option<CommandRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM commands WHERE id = $1");
        let row = self.client().await?.query_opt(&sql, &[&id]).await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    async fn commands(
        &self,
        agent_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<CommandRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM commands WHERE ($1::TEXT IS NULL OR agent_id = $1)
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let c = self.client().await?;
        all(&c.query(&sql, &[&agent_id, &big(limit)]).await?, from_row)
    }
}

/// Inserts new commands in the transaction `tx`.
pub(super) async fn insert_rows(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[CommandRow],
) -> Result<(), StoreError> {
    let insert = format!(
        "INSERT INTO commands ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    let insert = tx.prepare(&insert).await?;
    for r in rows {
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
            &r.id,
            &r.agent_id,
            &r.kind,
            &r.envelope,
            &r.created_at_ms,
            &r.expires_at_ms,
            &r.status,
            &r.delivered_at_ms,
            &r.completed_at_ms,
            &r.error,
            &r.result,
            &r.created_by,
        ];
        tx.execute(&insert, &args).await?;
    }
    Ok(())
}
