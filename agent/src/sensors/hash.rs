//! SHA-256 of files for the sensors: the file sensor hashes what changed, the process sensor
//! hashes executables, cached on (device, inode, size, mtime) so a binary run a thousand times
//! is read once.

use ring::digest::{Context, SHA256};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// A file's size and hex SHA-256, or why there is no hash.
pub type Hashed = Result<(u64, String), String>;

/// Hashes a regular file up to `max` bytes without following a symlink. The error says why
/// there is no hash: "gone", "not a regular file", "larger than N bytes", "unreadable".
pub fn sha256_file(path: &Path, max: u64) -> Hashed {
    let meta = std::fs::symlink_metadata(path).map_err(|_| "gone".to_string())?;
    hash_with(path, &meta, max)
}

fn hash_with(path: &Path, meta: &std::fs::Metadata, max: u64) -> Hashed {
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max {
        return Err(format!("larger than {max} bytes"));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|_| "unreadable".to_string())?;
    let digest = sha256_of(file).map_err(|_| "unreadable".to_string())?;
    Ok((meta.len(), hex::encode(digest)))
}

/// The SHA-256 of everything `r` yields (prevention hashes from the descriptor the kernel
/// opened for a permission event, the sensors from a path).
pub fn sha256_of(mut r: impl Read) -> std::io::Result<[u8; 32]> {
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => ctx.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// Identity of one version of a file: a rewrite changes size or mtime, a replacement the inode.
type FileKey = (u64, u64, u64, i64, i64);

/// Executable hashes by file identity. Bounded: when full it starts again empty.
pub struct HashCache {
    max_bytes: u64,
    entries: HashMap<FileKey, Hashed>,
    capacity: usize,
}

impl HashCache {
    pub fn new(max_bytes: u64, capacity: usize) -> Self {
        Self {
            max_bytes,
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The hash of the file at `path` (following symlinks: an exe path is already resolved).
    pub fn get(&mut self, path: &Path) -> Hashed {
        let meta = std::fs::metadata(path).map_err(|_| "gone".to_string())?;
        let key = (
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
        );
        if let Some(h) = self.entries.get(&key) {
            return h.clone();
        }
        let h = hash_with(path, &meta, self.max_bytes);
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(key, h.clone());
        h
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_cached_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"abc").unwrap();
        let mut cache = HashCache::new(1024, 16);
        let (size, h) = cache.get(&p).unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(cache.get(&p).unwrap().1, h);
        assert_eq!(cache.len(), 1);
        std::fs::write(&p, b"abcd").unwrap();
        assert_ne!(
            cache.get(&p).unwrap().1,
            h,
            "a rewritten file is hashed again"
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn what_cannot_be_hashed_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 100]).unwrap();
        assert_eq!(sha256_file(&big, 10).unwrap_err(), "larger than 10 bytes");
        assert_eq!(
            sha256_file(dir.path(), 10).unwrap_err(),
            "not a regular file"
        );
        assert_eq!(
            sha256_file(&dir.path().join("nope"), 10).unwrap_err(),
            "gone"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert_eq!(sha256_file(&link, 1000).unwrap_err(), "not a regular file");
    }
}
