//! Fetched files (issue #15): the chunks of a file an agent sent for a `fetch` command,
//! stored once by (command, index) however often they are sent again, and the files whose
//! chunks were whole and matched the agent's SHA-256, with their metadata. Every backend
//! passes `conformance::fetched`.

use super::rows::Cols;
use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};

/// One stored chunk of a fetched file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChunkRow {
    pub index: u32,
    /// Where `data` starts in the file.
    pub offset: u64,
    pub data: Vec<u8>,
}

/// A file the controller holds, whole and verified; `id` is the fetch command's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFileRow {
    pub id: String,
    pub agent_id: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub fetched_at_ms: i64,
}

pub(super) const FILE_COLUMNS: &str =
    "id, agent_id, path, size, sha256, mode, uid, gid, mtime, fetched_at";

pub(super) fn file_row<R: Cols>(r: &R) -> Result<FetchedFileRow, R::Error> {
    Ok(FetchedFileRow {
        id: r.col(0)?,
        agent_id: r.col(1)?,
        path: r.col(2)?,
        size: r.col::<i64>(3)? as u64,
        sha256: r.col(4)?,
        mode: r.col::<i64>(5)? as u32,
        uid: r.col::<i64>(6)? as u32,
        gid: r.col::<i64>(7)? as u32,
        mtime: r.col(8)?,
        fetched_at_ms: r.col(9)?,
    })
}

pub(super) fn chunk_row<R: Cols>(r: &R) -> Result<FileChunkRow, R::Error> {
    Ok(FileChunkRow {
        index: r.col::<i64>(0)? as u32,
        offset: r.col::<i64>(1)? as u64,
        data: r.col(2)?,
    })
}

/// The fetched files aggregate.
pub trait FetchedFiles: Send + Sync {
    /// Stores `chunk` of `command_id`'s file from `agent_id`, unless a chunk with its index
    /// is stored already. True if it was new.
    fn add_file_chunk(
        &self,
        command_id: String,
        agent_id: String,
        chunk: FileChunkRow,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// How many chunks of `command_id` are stored, and their bytes.
    fn file_chunk_total(
        &self,
        command_id: String,
    ) -> impl Future<Output = Result<(u32, u64), StoreError>> + Send;

    /// Chunk `index` of `command_id`, if stored.
    fn file_chunk(
        &self,
        command_id: String,
        index: u32,
    ) -> impl Future<Output = Result<Option<FileChunkRow>, StoreError>> + Send;

    /// Records a verified file; a file already recorded under its id is left as it is.
    /// True if it was new.
    fn record_fetched_file(
        &self,
        file: FetchedFileRow,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The file recorded under `id`.
    fn fetched_file(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<FetchedFileRow>, StoreError>> + Send;

    /// Recorded files, newest first, of one agent or all, at most `limit`.
    fn fetched_files(
        &self,
        agent_id: Option<String>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<FetchedFileRow>, StoreError>> + Send;
}

impl FetchedFiles for Store {
    async fn add_file_chunk(
        &self,
        command_id: String,
        agent_id: String,
        chunk: FileChunkRow,
    ) -> Result<bool, StoreError> {
        self.with(move |c| {
            let n = c.execute(
                "INSERT INTO file_chunks (command_id, chunk_index, agent_id, byte_offset, data)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![
                    command_id,
                    i64::from(chunk.index),
                    agent_id,
                    chunk.offset as i64,
                    chunk.data
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn file_chunk_total(&self, command_id: String) -> Result<(u32, u64), StoreError> {
        self.with(move |c| {
            let (n, bytes): (i64, i64) = c.query_row(
                "SELECT count(*), coalesce(sum(length(data)), 0) FROM file_chunks
                 WHERE command_id = ?1",
                [command_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((n as u32, bytes as u64))
        })
        .await
    }

    async fn file_chunk(
        &self,
        command_id: String,
        index: u32,
    ) -> Result<Option<FileChunkRow>, StoreError> {
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT chunk_index, byte_offset, data FROM file_chunks
                     WHERE command_id = ?1 AND chunk_index = ?2",
                    params![command_id, i64::from(index)],
                    |r| chunk_row(r),
                )
                .optional()?;
            Ok(row)
        })
        .await
    }

    async fn record_fetched_file(&self, f: FetchedFileRow) -> Result<bool, StoreError> {
        self.with(move |c| {
            let n = c.execute(
                &format!(
                    "INSERT INTO fetched_files ({FILE_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING"
                ),
                params![
                    f.id,
                    f.agent_id,
                    f.path,
                    f.size as i64,
                    f.sha256,
                    i64::from(f.mode),
                    i64::from(f.uid),
                    i64::from(f.gid),
                    f.mtime,
                    f.fetched_at_ms
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn fetched_file(&self, id: String) -> Result<Option<FetchedFileRow>, StoreError> {
        self.with(move |c| {
            let sql = format!("SELECT {FILE_COLUMNS} FROM fetched_files WHERE id = ?1");
            Ok(c.query_row(&sql, [id], |r| file_row(r)).optional()?)
        })
        .await
    }

    async fn fetched_files(
        &self,
        agent_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<FetchedFileRow>, StoreError> {
        self.with(move |c| {
            let sql = format!(
                "SELECT {FILE_COLUMNS} FROM fetched_files
                 WHERE (?1 IS NULL OR agent_id = ?1)
                 ORDER BY fetched_at DESC, id DESC LIMIT ?2"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params![agent_id, i64::from(limit)], |r| file_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
