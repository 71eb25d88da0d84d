//! Detection rules and indicator lists on PostgreSQL.

use super::{PgStore, all};
use crate::store::rules::{RULE_COLUMNS, rule_row};
use crate::store::{IocImport, RuleRow, Rules, StoreError};

const UPSERT_RULE: &str = "INSERT INTO rules (id, title, level, status, author, tags,
         logsource, origin, source, enabled, imported_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET title = excluded.title, level = excluded.level,
       status = excluded.status, author = excluded.author, tags = excluded.tags,
       logsource = excluded.logsource, origin = excluded.origin,
       source = excluded.source, imported_at = excluded.imported_at";

impl Rules for PgStore {
    async fn upsert_rules(&self, rules: Vec<RuleRow>) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let stmt = tx.prepare(UPSERT_RULE).await?;
        for r in rules {
            let tags = serde_json::to_string(&r.tags).unwrap_or_default();
            tx.execute(
                &stmt,
                &[
                    &r.id,
                    &r.title,
                    &r.level,
                    &r.status,
                    &r.author,
                    &tags,
                    &r.logsource,
                    &r.origin,
                    &r.source,
                    &r.enabled,
                    &r.imported_at_ms,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM rules ORDER BY id");
        let rows = self.client().await?.query(&sql, &[]).await?;
        all(&rows, rule_row)
    }

    async fn set_rule_enabled(
        &self,
        id: String,
        enabled: bool,
    ) -> Result<Option<RuleRow>, StoreError> {
        let sql = format!("UPDATE rules SET enabled = $2 WHERE id = $1 RETURNING {RULE_COLUMNS}");
        let row = self
            .client()
            .await?
            .query_opt(&sql, &[&id, &enabled])
            .await?;
        Ok(row.as_ref().map(rule_row).transpose()?)
    }

    async fn add_iocs(
        &self,
        kind: String,
        list: String,
        values: Vec<String>,
        now: i64,
    ) -> Result<IocImport, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let added: i64 = tx
            .query_one(
                "WITH added AS (INSERT INTO iocs (kind, value, list, added_at)
                     SELECT $1, v, $3, $4 FROM unnest($2::TEXT[]) v
                     ON CONFLICT DO NOTHING RETURNING 1)
                 SELECT COUNT(*) FROM added",
                &[&kind, &values, &list, &now],
            )
            .await?
            .try_get(0)?;
        let list_size: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM iocs WHERE kind = $1 AND list = $2",
                &[&kind, &list],
            )
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(IocImport {
            added: added as u32,
            already_present: (values.len() as u32).saturating_sub(added as u32),
            list_size: list_size as u64,
        })
    }

    async fn iocs(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT kind, value, list FROM iocs", &[])
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    async fn mark_block_list(&self, kind: String, list: String) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO ioc_lists (kind, list, block) VALUES ($1, $2, TRUE)
                 ON CONFLICT (kind, list) DO UPDATE SET block = TRUE",
                &[&kind, &list],
            )
            .await?;
        Ok(())
    }

    async fn blocked_sha256(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(crate::store::rules::BLOCKED_SHA256, &[])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
