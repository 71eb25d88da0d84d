//! The edge policies an agent holds, on disk in its state directory: each as the signed bytes
//! it came in (withdrawn ones too, so their version survives a restart and an older copy is
//! still refused). Read back at start and checked again, so a file edited on disk is refused.

use cordon_proto::SignedEdgePolicy;
use prost::Message;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating the edge policy directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the edge policy {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the edge policy directory {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// File mode of a stored policy: the agent's alone.
const MODE: u32 = 0o600;

pub struct PolicyDir {
    dir: PathBuf,
}

impl PolicyDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Each policy in its own file, named by its id in hex (ids hold ':' and '/').
    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.policy", hex::encode(id)))
    }

    pub fn save(&self, id: &str, signed: &SignedEdgePolicy) -> Result<(), StoreError> {
        cordon_proto::files::private_dir(&self.dir).map_err(|source| StoreError::Create {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.file(id);
        cordon_proto::files::atomic_write(&path, &signed.encode_to_vec(), MODE)
            .map_err(|source| StoreError::Write { path, source })
    }

    /// Every stored policy that decodes, with the files that do not (reported, skipped).
    pub fn load(&self) -> Result<(Vec<SignedEdgePolicy>, Vec<PathBuf>), StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(source) => {
                return Err(StoreError::List {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_none_or(|x| x != "policy") {
                continue;
            }
            match read(&path) {
                Some(signed) => good.push(signed),
                None => bad.push(path),
            }
        }
        Ok((good, bad))
    }
}

fn read(path: &Path) -> Option<SignedEdgePolicy> {
    let bytes = std::fs::read(path).ok()?;
    SignedEdgePolicy::decode(bytes.as_slice()).ok()
}
