//! Results too large for one message (a collection's rows), kept on disk under the state
//! directory until they are sent, and sent again with the command's result whenever the
//! controller asks for that command again (after a broken stream): the controller stores
//! each chunk once, so the rows arrive whole or the command stays open.
//!
//! A file is named after its command and kept as long as a command may live; older ones are
//! removed whenever a new one is written. Rows are kept as JSON lines (`ID.jsonl`) and sent in
//! whole-line chunks; a fetched file's bytes (`ID.bin`) are sent in chunks of `CHUNK_BYTES`,
//! read one at a time.

use cordon_proto::ResultChunk;
use ring::digest::{Context, SHA256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How much of a result goes in one chunk, at most (a single longer row goes alone).
pub const CHUNK_BYTES: usize = 512 * 1024;
/// How long a result is kept for a resend: the longest a command may live.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a result could not be kept or read back.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot create the outbox directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the result {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the result {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read what is to be kept: {source}")]
    Source { source: std::io::Error },
    #[error("a command id may not name a file: {0:?}")]
    BadId(String),
}

/// What was written for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub chunks: u32,
}

/// The directory of kept results.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, command_id: &str) -> Result<PathBuf, OutboxError> {
        self.path_ext(command_id, "jsonl")
    }

    fn path_ext(&self, command_id: &str, ext: &str) -> Result<PathBuf, OutboxError> {
        let plain = !command_id.is_empty()
            && command_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            return Err(OutboxError::BadId(command_id.to_string()));
        }
        Ok(self.dir.join(format!("{command_id}.{ext}")))
    }

    /// A new file `ID.EXT` for `command_id` (replacing what was there), readable by the agent
    /// alone (a copy may be of a secret: a key, /etc/shadow), after removing results older
    /// than a command may live.
    fn create(&self, command_id: &str, ext: &str) -> Result<(PathBuf, File), OutboxError> {
        let path = self.path_ext(command_id, ext)?;
        cordon_proto::files::private_dir(&self.dir).map_err(|source| OutboxError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        self.prune();
        let write = |source| OutboxError::Write {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(write)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write)?;
        Ok((path, file))
    }

    /// Copies `src` to its end for `command_id` (replacing what was there), durably, hashing
    /// what it writes; the file is kept as `ID.bin` and sent in byte chunks.
    pub fn write_bytes(
        &self,
        command_id: &str,
        src: &mut dyn Read,
    ) -> Result<Written, OutboxError> {
        let (path, mut out) = self.create(command_id, "bin")?;
        let write = |source| OutboxError::Write {
            path: path.clone(),
            source,
        };
        let (mut hash, mut bytes) = (Context::new(&SHA256), 0u64);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(OutboxError::Source { source }),
            };
            hash.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(write)?;
            bytes += n as u64;
        }
        out.sync_all().map_err(write)?;
        Ok(Written {
            rows: 0,
            bytes,
            sha256: hex::encode(hash.finish()),
            chunks: bytes.div_ceil(CHUNK_BYTES as u64) as u32,
        })
    }

    /// Removes the bytes kept for `command_id` (a copy that is not to be sent); a failure is
    /// only logged.
    pub fn discard(&self, command_id: &str) {
        if let Ok(path) = self.path_ext(command_id, "bin")
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a discarded result");
        }
    }

    /// The chunks kept for `command_id`, read as they are taken: a fetched file's bytes, or
    /// its collection's rows; none if nothing is kept for it.
    pub fn pending(&self, command_id: &str) -> Result<Pending, OutboxError> {
        let path = self.path_ext(command_id, "bin")?;
        match File::open(&path) {
            Ok(file) => Ok(Pending::Bytes {
                command_id: command_id.to_string(),
                path,
                file,
                index: 0,
                offset: 0,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Pending::Rows(self.chunks(command_id)?.into_iter()))
            }
            Err(source) => Err(OutboxError::Read { path, source }),
        }
    }

    /// Writes `rows` as JSON lines for `command_id` (replacing what was there), durably,
    /// after removing results older than a command may live.
    pub fn write_rows(
        &self,
        command_id: &str,
        rows: &[serde_json::Value],
    ) -> Result<Written, OutboxError> {
        let (path, file) = self.create(command_id, "jsonl")?;
        let write = |source| OutboxError::Write {
            path: path.clone(),
            source,
        };
        let mut out = std::io::BufWriter::new(file);
        let (mut hash, mut bytes, mut chunks, mut in_chunk) =
            (Context::new(&SHA256), 0u64, 0u32, 0usize);
        for row in rows {
            let line = format!("{row}\n");
            if in_chunk == 0 || in_chunk + line.len() > CHUNK_BYTES {
                chunks += 1;
                in_chunk = 0;
            }
            in_chunk += line.len();
            hash.update(line.as_bytes());
            bytes += line.len() as u64;
            out.write_all(line.as_bytes()).map_err(write)?;
        }
        let file = out.into_inner().map_err(|e| write(e.into_error()))?;
        file.sync_all().map_err(write)?;
        Ok(Written {
            rows: rows.len() as u64,
            bytes,
            sha256: hex::encode(hash.finish()),
            chunks,
        })
    }

    /// The chunks of `command_id`'s rows, in order; none if nothing is kept for it.
    pub fn chunks(&self, command_id: &str) -> Result<Vec<ResultChunk>, OutboxError> {
        let path = self.path(command_id)?;
        let read = |source| OutboxError::Read {
            path: path.clone(),
            source,
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read(e)),
        };
        let mut chunks: Vec<ResultChunk> = Vec::new();
        let (mut row, mut offset) = (0u64, 0u64);
        for line in BufReader::new(file).split(b'\n') {
            let mut line = line.map_err(read)?;
            line.push(b'\n');
            match chunks.last_mut() {
                Some(c) if c.data.len() + line.len() <= CHUNK_BYTES => c.data.extend(line.iter()),
                _ => chunks.push(ResultChunk {
                    command_id: command_id.to_string(),
                    index: chunks.len() as u32,
                    first_row: row,
                    offset,
                    data: line.clone(),
                }),
            }
            row += 1;
            offset += line.len() as u64;
        }
        Ok(chunks)
    }

    /// Removes results older than a command may live; a failure is only logged.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let cutoff = SystemTime::now() - KEEP;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old && let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old result");
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The chunks of one kept result, in order.
#[derive(Debug)]
pub enum Pending {
    Rows(std::vec::IntoIter<ResultChunk>),
    Bytes {
        command_id: String,
        path: PathBuf,
        file: File,
        index: u32,
        offset: u64,
    },
}

impl Iterator for Pending {
    type Item = Result<ResultChunk, OutboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pending::Rows(rows) => rows.next().map(Ok),
            Pending::Bytes {
                command_id,
                path,
                file,
                index,
                offset,
            } => {
                let mut data = Vec::with_capacity(CHUNK_BYTES);
                if let Err(source) = file.take(CHUNK_BYTES as u64).read_to_end(&mut data) {
                    let path = path.clone();
                    return Some(Err(OutboxError::Read { path, source }));
                }
                if data.is_empty() {
                    return None;
                }
                let chunk = ResultChunk {
                    command_id: command_id.clone(),
                    index: *index,
                    first_row: 0,
                    offset: *offset,
                    data,
                };
                *index += 1;
                *offset += chunk.data.len() as u64;
                Some(Ok(chunk))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_come_back_in_whole_line_chunks_that_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox"));
        let big = "x".repeat(100_000);
        let rows: Vec<_> = (0..20).map(|i| json!({ "i": i, "pad": big })).collect();
        let written = outbox.write_rows("cmd-1", &rows).unwrap();
        let chunks = outbox.chunks("cmd-1").unwrap();
        assert_eq!(chunks.len() as u32, written.chunks);
        assert!(chunks.len() > 1, "20 rows of 100 kB need several chunks");
        let mut all = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index as usize, i);
            assert_eq!(c.offset as usize, all.len());
            assert!(c.data.len() <= CHUNK_BYTES && c.data.ends_with(b"\n"));
            let first: serde_json::Value =
                serde_json::from_slice(c.data.split(|b| *b == b'\n').next().unwrap()).unwrap();
            assert_eq!(first["i"], json!(c.first_row));
            all.extend_from_slice(&c.data);
        }
        assert_eq!(all.len() as u64, written.bytes);
        assert_eq!(
            hex::encode(ring::digest::digest(&SHA256, &all)),
            written.sha256
        );
        assert_eq!(written.rows, 20);
    }

    #[test]
    fn bytes_come_back_in_full_chunks_with_offsets_and_the_same_hash() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox"));
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 2 + 7).map(|i| (i % 251) as u8).collect();
        let written = outbox.write_bytes("cmd-2", &mut &bytes[..]).unwrap();
        assert_eq!((written.bytes, written.chunks), (bytes.len() as u64, 3));
        let chunks: Vec<_> = outbox
            .pending("cmd-2")
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks.iter().map(|c| c.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(chunks[2].offset, 2 * CHUNK_BYTES as u64);
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(all, bytes);
        let hash = hex::encode(ring::digest::digest(&SHA256, &bytes));
        assert_eq!(written.sha256, hash);
        let kept = std::fs::metadata(outbox.dir().join("cmd-2.bin")).unwrap();
        assert_eq!(
            kept.permissions().mode() & 0o777,
            0o600,
            "the agent's alone"
        );
        assert!(matches!(outbox.pending("none").unwrap(), Pending::Rows(_)));
    }

    #[test]
    fn an_unknown_command_has_no_chunks_and_a_path_like_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().to_path_buf());
        assert!(outbox.chunks("nothing-here").unwrap().is_empty());
        assert!(matches!(
            outbox.write_rows("../x", &[]),
            Err(OutboxError::BadId(_))
        ));
    }
}
