//! Hunts on PostgreSQL: the same statements as SQLite's (`store/hunts.rs`), a hunt and its
//! commands written in one transaction.

use super::commands::insert_rows;
use super::{PgStore, all, big};
use crate::store::commands::from_row as command_row;
use crate::store::hunts::{
    CANCEL_COMMANDS, COLUMNS, COUNTS, HuntCounts, HuntRow, HuntSummary, Hunts, args_text,
    commands_sql, from_row,
};
use crate::store::{CommandRow, CommandStatus, StoreError};
use tokio_postgres::GenericClient;

async fn counts(c: &impl GenericClient, id: &str) -> Result<HuntCounts, StoreError> {
    let mut counts = HuntCounts::default();
    for row in c.query(COUNTS, &[&id]).await? {
        let status: CommandStatus = row.try_get(0)?;
        counts.add(status, row.try_get::<_, i64>(1)? as u64);
    }
    Ok(counts)
}

async fn summaries(
    c: &impl GenericClient,
    hunts: Vec<HuntRow>,
) -> Result<Vec<HuntSummary>, StoreError> {
    let mut out = Vec::with_capacity(hunts.len());
    for hunt in hunts {
        let counts = counts(c, &hunt.id).await?;
        out.push(HuntSummary { hunt, counts });
    }
    Ok(out)
}

impl Hunts for PgStore {
    async fn create_hunt(&self, h: HuntRow, commands: Vec<CommandRow>) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            &format!("INSERT INTO hunts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
            &[
                &h.id,
                &h.collector,
                &args_text(&h),
                &h.selector,
                &h.created_by,
                &h.created_at_ms,
                &h.expires_at_ms,
                &h.cancelled_at_ms,
            ],
        )
        .await?;
        insert_rows(&tx, &commands).await?;
        let ids: Vec<&str> = commands.iter().map(|r| r.id.as_str()).collect();
        let agents: Vec<&str> = commands.iter().map(|r| r.agent_id.as_str()).collect();
        tx.execute(
            "INSERT INTO hunt_commands (hunt_id, command_id, agent_id)
             SELECT $1, * FROM unnest($2::text[], $3::text[])",
            &[&h.id, &ids, &agents],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn hunts(&self, limit: u32) -> Result<Vec<HuntSummary>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM hunts ORDER BY created_at DESC, id DESC LIMIT $1");
        let c = self.client().await?;
        let hunts = all(&c.query(&sql, &[&big(limit)]).await?, from_row)?;
        summaries(&**c, hunts).await
    }

    async fn hunt(&self, id: String) -> Result<Option<HuntSummary>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM hunts WHERE id = $1");
        let c = self.client().await?;
        let found = all(&c.query(&sql, &[&id]).await?, from_row)?;
        Ok(summaries(&**c, found).await?.pop())
    }

    async fn hunt_commands(&self, id: String) -> Result<Vec<CommandRow>, StoreError> {
        let c = self.client().await?;
        all(&c.query(&commands_sql(), &[&id]).await?, command_row)
    }

    async fn cancel_hunt(
        &self,
        id: String,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let found = tx
            .execute(
                "UPDATE hunts SET cancelled_at = COALESCE(cancelled_at, $2) WHERE id = $1",
                &[&id, &now_ms],
            )
            .await?;
        if found == 0 {
            return Ok(None);
        }
        let ended = tx
            .query(
                CANCEL_COMMANDS,
                &[
                    &id,
                    &now_ms,
                    &CommandStatus::Expired,
                    &CommandStatus::Pending,
                    &CommandStatus::Delivered,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(
            ended
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?,
        ))
    }
}
