//! File fetch (`Action.fetch_file`): one regular file copied from the host into the outbox
//! (`ID.bin`, fsynced) while it is hashed, so a resend sends the very bytes hashed; the
//! session then streams them in chunks before the `FetchedFile` result.
//!
//! Refused, each with its reason: a path that is not absolute; anything but a regular file
//! (named by its type: a symlink is never followed, a FIFO or device is never read); a file
//! over the limit (the agent's `[investigation] max_fetch_bytes`, 100 MiB by default, or less
//! when the command asks); and the agent's own secrets: anything under its state directory
//! (keys, certificates, ledger, outbox) or its configuration file, known by the real path of
//! the opened file and by device and inode (so a symlinked directory, a bind mount or a hard
//! link elsewhere does not hide them). A file whose size or mtime changes while it is copied
//! is refused as "changed while copied" and nothing is kept.

use super::file::{kind, open_regular};
use crate::outbox::{Outbox, OutboxError};
use crate::respond::protect::{FileId, Protected};
use cordon_proto::{FetchFile, FetchedFile};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The largest file fetched when the configuration does not say.
pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;
/// The most entries of the state directory compared with the file by identity.
const MAX_OWN_ENTRIES: usize = 10_000;

/// Why a file was not fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("refusing {0:?}: the path must be absolute")]
    NotAbsolute(String),
    #[error("cannot fetch {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing {path}: it is a {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("refusing {path}: its {size} bytes are over the limit of {limit} bytes")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("refusing {path}: it is one of the agent's own files ({own})")]
    OwnFile { path: PathBuf, own: PathBuf },
    #[error("refusing {path}: it changed while copied ({before} bytes, then {after})")]
    Changed {
        path: PathBuf,
        before: u64,
        after: u64,
    },
    #[error("cannot keep {path} to send: {source}")]
    Keep { path: PathBuf, source: OutboxError },
}

/// What fetch refuses and how much it takes.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// The most bytes one fetch may copy.
    pub max_bytes: u64,
    /// The agent's state directories: nothing under them is fetched.
    pub own_dirs: Vec<PathBuf>,
    /// The agent's own files elsewhere (its configuration), known by device and inode.
    pub own_files: Protected,
}

impl Fetcher {
    /// The fetcher of an agent with state in `state_dir`, configuration `config_file` and
    /// limit `max_bytes`.
    pub fn new(state_dir: &Path, config_file: Option<PathBuf>, max_bytes: u64) -> Self {
        let mut own_dirs = vec![state_dir.to_path_buf()];
        own_dirs.extend(state_dir.canonicalize().ok());
        Self {
            max_bytes,
            own_dirs,
            own_files: Protected::new(config_file.into_iter().collect()),
        }
    }

    /// The limit for `f`: what it asks, never more than the agent's.
    pub fn limit(&self, f: &FetchFile) -> u64 {
        match f.max_bytes {
            0 => self.max_bytes,
            n => n.min(self.max_bytes),
        }
    }

    /// Copies the file `f` names into `outbox` for `command_id` (blocking).
    pub fn fetch(
        &self,
        f: &FetchFile,
        command_id: &str,
        outbox: &Outbox,
    ) -> Result<FetchedFile, FetchError> {
        if !f.path.starts_with('/') {
            return Err(FetchError::NotAbsolute(f.path.clone()));
        }
        let path = PathBuf::from(&f.path);
        let (file, before) = open(&path)?;
        self.check_own(&path, &file, &before)?;
        let limit = self.limit(f);
        if before.len() > limit {
            return Err(FetchError::TooLarge {
                path,
                size: before.len(),
                limit,
            });
        }
        let keep = |source| FetchError::Keep {
            path: path.clone(),
            source,
        };
        let mut src = (&file).take(limit + 1);
        let written = outbox.write_bytes(command_id, &mut src).map_err(keep)?;
        let after = file.metadata().map_err(|source| FetchError::Open {
            path: path.clone(),
            source,
        })?;
        let moved = |m: &Metadata| (m.len(), m.mtime(), m.mtime_nsec());
        if moved(&before) != moved(&after) || written.bytes != before.len() {
            outbox.discard(command_id);
            return Err(FetchError::Changed {
                path,
                before: before.len(),
                after: written.bytes,
            });
        }
        Ok(FetchedFile {
            path: f.path.clone(),
            size: written.bytes,
            sha256: written.sha256,
            mode: before.mode() & 0o7777,
            uid: before.uid(),
            gid: before.gid(),
            mtime: before.mtime(),
            chunks: written.chunks,
        })
    }

    /// Refuses the agent's own files: the opened file's real path under a state directory,
    /// its identity that of the configuration or of a file of the state directory.
    fn check_own(&self, path: &Path, file: &File, meta: &Metadata) -> Result<(), FetchError> {
        let refuse = |own: &Path| FetchError::OwnFile {
            path: path.to_path_buf(),
            own: own.to_path_buf(),
        };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok();
        for own in &self.own_dirs {
            if path.starts_with(own) || real.as_ref().is_some_and(|r| r.starts_with(own)) {
                return Err(refuse(own));
            }
        }
        let id = FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        if let Some(own) = self.own_files.matching(id) {
            return Err(refuse(&own));
        }
        // By identity too: a hard link, or the state directory seen through a bind mount.
        for dir in &self.own_dirs {
            if let Some(own) = linked_under(dir, id) {
                return Err(refuse(&own));
            }
        }
        Ok(())
    }
}

/// Opens `path` without following a final symlink and without blocking; refuses, naming its
/// type, anything but a regular file (looked at before opening, so a FIFO or a device is
/// never opened, and again once open).
fn open(path: &Path) -> Result<(File, Metadata), FetchError> {
    let failed = |source| FetchError::Open {
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |kind| FetchError::NotRegular {
        path: path.to_path_buf(),
        kind,
    };
    let seen = std::fs::symlink_metadata(path).map_err(failed)?;
    if !seen.file_type().is_file() {
        return Err(not_regular(kind(&seen)));
    }
    let file = open_regular(path).map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ELOOP) => not_regular("symlink"),
        _ if e.kind() == std::io::ErrorKind::InvalidInput => not_regular("other"),
        _ => failed(e),
    })?;
    let meta = file.metadata().map_err(failed)?;
    Ok((file, meta))
}

/// A file under `dir` (searched to a bound) that is the file `id`.
fn linked_under(dir: &Path, id: FileId) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_OWN_ENTRIES {
                return None;
            }
            let Ok(m) = entry.metadata() else { continue };
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.dev() == id.dev && m.ino() == id.ino {
                return Some(entry.path());
            }
        }
    }
    None
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
