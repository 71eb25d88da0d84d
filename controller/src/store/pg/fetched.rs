//! Fetched files on PostgreSQL: the same statements as SQLite's, with `bytea` chunks.

use super::{PgStore, all, big};
use crate::store::StoreError;
use crate::store::fetched::{
    FILE_COLUMNS, FetchedFileRow, FetchedFiles, FileChunkRow, chunk_row, file_row,
};

impl FetchedFiles for PgStore {
    async fn add_file_chunk(
        &self,
        command_id: String,
        agent_id: String,
        chunk: FileChunkRow,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO file_chunks (command_id, chunk_index, agent_id, byte_offset, data)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &command_id,
                    &i64::from(chunk.index),
                    &agent_id,
                    &big(chunk.offset),
                    &chunk.data,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn file_chunk_total(&self, command_id: String) -> Result<(u32, u64), StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*), coalesce(sum(length(data)), 0)::bigint FROM file_chunks
                 WHERE command_id = $1",
                &[&command_id],
            )
            .await?;
        let (n, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((n as u32, bytes as u64))
    }

    async fn file_chunk(
        &self,
        command_id: String,
        index: u32,
    ) -> Result<Option<FileChunkRow>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT chunk_index, byte_offset, data FROM file_chunks
                 WHERE command_id = $1 AND chunk_index = $2",
                &[&command_id, &i64::from(index)],
            )
            .await?;
        Ok(all(&rows, chunk_row)?.pop())
    }

    async fn record_fetched_file(&self, f: FetchedFileRow) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let sql = format!(
            "INSERT INTO fetched_files ({FILE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
        );
        let n = c
            .execute(
                &sql,
                &[
                    &f.id,
                    &f.agent_id,
                    &f.path,
                    &big(f.size),
                    &f.sha256,
                    &i64::from(f.mode),
                    &i64::from(f.uid),
                    &i64::from(f.gid),
                    &f.mtime,
                    &f.fetched_at_ms,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn fetched_file(&self, id: String) -> Result<Option<FetchedFileRow>, StoreError> {
        let c = self.client().await?;
        let sql = format!("SELECT {FILE_COLUMNS} FROM fetched_files WHERE id = $1");
        let rows = c.query(&sql, &[&id]).await?;
        Ok(all(&rows, file_row)?.pop())
    }

    async fn fetched_files(
        &self,
        agent_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<FetchedFileRow>, StoreError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM fetched_files
             WHERE ($1::text IS NULL OR agent_id = $1)
             ORDER BY fetched_at DESC, id DESC LIMIT $2"
        );
        let rows = c.query(&sql, &[&agent_id, &i64::from(limit)]).await?;
        all(&rows, file_row)
    }
}
