//! File fetch on the controller (issue #15): the chunks an agent sends before a `FetchedFile`
//! result are stored once each (by command and index), up to the controller's own limit
//! (`[investigation] max_fetch_bytes`); the result succeeds only when the stored chunks are
//! contiguous from 0, add up to the size the agent reports and hash to its SHA-256: then the
//! file is recorded (`fetched_files`) and can be listed and downloaded; otherwise the command
//! fails with the reason ("hash mismatch", "N of M bytes arrived").

use super::{Admin, Controller, CoreError};
use crate::policy::audit::AuditEntry;
use crate::store::{FetchedFileRow, FetchedFiles, FileChunkRow};
use cordon_proto::time::now_ms;
use cordon_proto::{FetchedFile, ResultChunk};
use ring::digest::{Context, SHA256};

/// The most files one listing returns.
pub const MAX_LIST: u32 = 1_000;

/// A fetch's result in a few words.
pub fn summary(f: &FetchedFile) -> String {
    format!("fetched {} ({} bytes, sha256 {})", f.path, f.size, f.sha256)
}

impl Controller {
    /// Stores a chunk of the file `agent_id` fetches for the open command `command_id`; a
    /// chunk past the controller's limit is dropped with a warning (the result then fails).
    pub(super) async fn record_file_chunk(
        &self,
        agent_id: &str,
        chunk: ResultChunk,
    ) -> Result<(), CoreError> {
        let max = self.config.investigation.max_fetch_bytes;
        let id = chunk.command_id.clone();
        let len = chunk.data.len() as u64;
        let (_, stored) = self.store.file_chunk_total(id.clone()).await?;
        // A chunk sent again near the limit brings no more bytes: only a new one counts.
        let over = chunk.offset.saturating_add(len) > max
            || (stored + len > max
                && self
                    .store
                    .file_chunk(id.clone(), chunk.index)
                    .await?
                    .is_none());
        if over {
            tracing::warn!(command_id = %id, agent_id, index = chunk.index, max_bytes = max,
                "dropped a chunk of a fetched file past the controller's limit");
            return Ok(());
        }
        let row = FileChunkRow {
            index: chunk.index,
            offset: chunk.offset,
            data: chunk.data,
        };
        self.store
            .add_file_chunk(id, agent_id.to_string(), row)
            .await?;
        Ok(())
    }

    /// Why a succeeded fetch's result may not stand; None when its bytes arrived whole and
    /// match its hash, and then the file is recorded.
    pub(super) async fn file_unverified(
        &self,
        command_id: &str,
        agent_id: &str,
        f: &FetchedFile,
    ) -> Result<Option<String>, CoreError> {
        let id = command_id.to_string();
        let (count, bytes) = self.store.file_chunk_total(id.clone()).await?;
        let short = |arrived: u64| format!("{arrived} of {} bytes arrived; fetch again", f.size);
        if bytes != f.size {
            return Ok(Some(short(bytes)));
        }
        let (mut hash, mut offset) = (Context::new(&SHA256), 0u64);
        for index in 0..count {
            match self.store.file_chunk(id.clone(), index).await? {
                Some(c) if c.offset == offset => {
                    hash.update(&c.data);
                    offset += c.data.len() as u64;
                }
                _ => return Ok(Some(short(offset))),
            }
        }
        let got = hex::encode(hash.finish());
        if got != f.sha256 {
            return Ok(Some(format!(
                "hash mismatch: the agent hashed {} but the bytes that arrived hash to {got}",
                f.sha256
            )));
        }
        let row = FetchedFileRow {
            id,
            agent_id: agent_id.to_string(),
            path: f.path.clone(),
            size: f.size,
            sha256: got,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            mtime: f.mtime,
            fetched_at_ms: now_ms(),
        };
        self.store.record_fetched_file(row).await?;
        Ok(None)
    }

    /// Fetched files, newest first, of one agent (id or name) or all.
    pub async fn fetched_files(
        &self,
        agent: &str,
        limit: u32,
    ) -> Result<Vec<FetchedFileRow>, CoreError> {
        let agent_id = self.resolve_optional(agent).await?;
        let limit = if limit == 0 {
            MAX_LIST
        } else {
            limit.min(MAX_LIST)
        };
        Ok(self.store.fetched_files(agent_id, limit).await?)
    }

    /// Chunk `index` of the fetched file `id`.
    pub async fn fetched_chunk(
        &self,
        id: &str,
        index: u32,
    ) -> Result<Option<FileChunkRow>, CoreError> {
        Ok(self.store.file_chunk(id.to_string(), index).await?)
    }

    /// The fetched file `id`, for `admin` to download (audited as `file.download`: its bytes
    /// may be malware).
    pub async fn download(&self, admin: &Admin, id: &str) -> Result<FetchedFileRow, CoreError> {
        let found = self.store.fetched_file(id.to_string()).await;
        let result = match found {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(CoreError::NoFetchedFile(id.to_string())),
            Err(e) => Err(e.into()),
        };
        let entry = AuditEntry::new(admin.name.clone(), "file.download", format!("file:{id}"));
        self.audited(entry, result, |f, e| {
            e.detail = serde_json::json!({
                "agent_id": f.agent_id, "path": f.path, "size": f.size, "sha256": f.sha256,
            });
        })
        .await
    }
}
