//! Collection rows on PostgreSQL: one statement stores a chunk's rows (numbered in the
//! database from the chunk's first row), skipping those already stored.

use super::{PgStore, all, big};
use crate::store::StoreError;
use crate::store::collections::{COLUMNS, CollectionRow, Collections, RowFilter, from_row};

impl Collections for PgStore {
    async fn add_collection_rows(
        &self,
        command_id: String,
        agent_id: String,
        first_row: u64,
        rows: Vec<String>,
    ) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO collection_rows (command_id, agent_id, row_no, data)
                 SELECT $1, $2, $3 + n - 1, d FROM unnest($4::text[]) WITH ORDINALITY AS t(d, n)
                 ON CONFLICT DO NOTHING",
                &[&command_id, &agent_id, &big(first_row), &rows],
            )
            .await?;
        Ok(n)
    }

    async fn collection_row_count(&self, command_id: String) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM collection_rows WHERE command_id = $1",
                &[&command_id],
            )
            .await?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    async fn collection_rows(&self, f: RowFilter) -> Result<Vec<CollectionRow>, StoreError> {
        let which = match f.hunt_id {
            Some(_) => "command_id IN (SELECT command_id FROM hunt_commands WHERE hunt_id = $7)",
            None => "command_id = ANY($1)",
        };
        // Both $1 and $7 appear whichever is used, as a statement names every parameter.
        let sql = format!(
            "SELECT {COLUMNS} FROM collection_rows
             WHERE {which} AND ($7::text IS NULL OR $1::text[] IS NOT NULL)
               AND ($2::text IS NULL OR agent_id = $2)
               AND ($3::text IS NULL OR strpos(lower(data), lower($3)) > 0)
               AND ($4::text IS NULL OR command_id > $4 OR (command_id = $4 AND row_no > $5))
             ORDER BY command_id, row_no LIMIT $6"
        );
        let (after, after_row) = match f.after {
            Some((id, row)) => (Some(id), big(row)),
            None => (None, 0),
        };
        let c = self.client().await?;
        let rows = c
            .query(
                &sql,
                &[
                    &f.command_ids,
                    &f.agent_id,
                    &f.contains,
                    &after,
                    &after_row,
                    &i64::from(f.limit),
                    &f.hunt_id,
                ],
            )
            .await?;
        all(&rows, from_row)
    }
}
