//! The record of command ids this agent has received, kept on disk until each command's
//! expiry (after which the signature check refuses it anyway). It makes every command run at
//! most once, across reconnects and restarts.

use cordon_proto::CommandResult;
use cordon_proto::files::{PRIVATE, atomic_write};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    expires_at_ms: i64,
    /// Hex of the encoded result, once the command has finished.
    result: Option<String>,
}

#[derive(Debug, Default)]
pub struct Ledger {
    path: Option<PathBuf>,
    entries: HashMap<String, Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("reading the command ledger {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the command ledger {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing the command ledger {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Ledger {
    /// An in-memory ledger (tests).
    pub fn memory() -> Self {
        Self::default()
    }

    /// Loads the ledger at `path`, or starts an empty one there.
    pub fn open(path: PathBuf) -> Result<Self, LedgerError> {
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| LedgerError::Corrupt {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => return Err(LedgerError::Read { path, source }),
        };
        Ok(Self {
            path: Some(path),
            entries,
        })
    }

    /// None if never seen; Some(result-if-finished) if seen before.
    pub fn seen(&self, id: &str) -> Option<Option<CommandResult>> {
        self.entries.get(id).map(|e| {
            e.result
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| CommandResult::decode(b.as_slice()).ok())
        })
    }

    /// Records that `id` is about to run, dropping entries that have expired.
    pub fn begin(&mut self, id: &str, expires_at_ms: i64, now_ms: i64) -> Result<(), LedgerError> {
        self.entries.retain(|_, e| e.expires_at_ms > now_ms);
        self.entries.insert(
            id.to_string(),
            Entry {
                expires_at_ms,
                result: None,
            },
        );
        self.save()
    }

    pub fn finish(&mut self, id: &str, result: &CommandResult) -> Result<(), LedgerError> {
        if let Some(e) = self.entries.get_mut(id) {
            e.result = Some(hex::encode(result.encode_to_vec()));
        }
        self.save()
    }

    fn save(&self) -> Result<(), LedgerError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&self.entries).unwrap_or_default();
        atomic_write(path, &bytes, PRIVATE).map_err(|source| LedgerError::Write {
            path: path.clone(),
            source,
        })
    }
}
