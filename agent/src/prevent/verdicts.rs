//! What the permission thread decides with: the block list (SHA-256 digests) and a bounded
//! cache of file hashes keyed by file identity. The key holds the inode's change time and
//! size, so a file written after it was hashed misses the cache and is hashed again; a copy
//! is a new inode (hashed at its close-after-write or first exec); a rename keeps the inode,
//! so the renamed file keeps its hash and stays denied. The cache holds hashes, not verdicts,
//! so a new block list needs no new hashing.

use std::collections::{HashMap, HashSet};

/// One version of one file: device, inode, change time (ns since the epoch) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub ctime_ns: i128,
    pub size: u64,
}

impl FileId {
    pub fn of(st: &rustix::fs::Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            ctime_ns: i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec),
            size: u64::try_from(st.st_size).unwrap_or_default(),
        }
    }
}

/// What is known of a file version: its digest, or why it has none (too large, unreadable).
pub type Digest = Result<[u8; 32], String>;

/// File digests by identity. Bounded: when full it starts again empty (a busy host re-hashes
/// what it runs next, once).
pub struct HashCache {
    entries: HashMap<FileId, Digest>,
    capacity: usize,
}

impl HashCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, id: &FileId) -> Option<&Digest> {
        self.entries.get(id)
    }

    pub fn insert(&mut self, id: FileId, digest: Digest) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&id) {
            self.entries.clear();
        }
        self.entries.insert(id, digest);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The SHA-256 digests whose exec is denied.
#[derive(Debug, Default, Clone)]
pub struct Blocklist(HashSet<[u8; 32]>);

impl Blocklist {
    pub fn new(digests: Vec<[u8; 32]>) -> Self {
        Self(digests.into_iter().collect())
    }

    pub fn blocks(&self, digest: &[u8; 32]) -> bool {
        self.0.contains(digest)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(dir: &std::path::Path, name: &str) -> FileId {
        FileId::of(&rustix::fs::stat(dir.join(name)).unwrap())
    }

    #[test]
    fn a_rename_keeps_the_identity_and_a_write_or_a_copy_does_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let first = id(dir.path(), "a");
        std::fs::rename(dir.path().join("a"), dir.path().join("b")).unwrap();
        // A rename updates the change time on most filesystems: the inode and size stay.
        let renamed = id(dir.path(), "b");
        assert_eq!(
            (renamed.dev, renamed.ino, renamed.size),
            (first.dev, first.ino, first.size)
        );
        std::fs::copy(dir.path().join("b"), dir.path().join("c")).unwrap();
        assert_ne!(id(dir.path(), "c").ino, first.ino);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("b"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"y"))
            .unwrap();
        assert_ne!(id(dir.path(), "b"), renamed);
    }

    #[test]
    fn the_cache_is_bounded_and_the_block_list_matches_digests() {
        let mut c = HashCache::new(2);
        let f = |ino| FileId {
            dev: 1,
            ino,
            ctime_ns: 0,
            size: 0,
        };
        c.insert(f(1), Ok([1; 32]));
        c.insert(f(2), Err("too large".into()));
        c.insert(f(2), Ok([2; 32]));
        assert_eq!(c.len(), 2);
        c.insert(f(3), Ok([3; 32]));
        assert_eq!(c.len(), 1);
        assert!(c.get(&f(1)).is_none());
        let b = Blocklist::new(vec![[3; 32]]);
        assert!(b.blocks(&[3; 32]) && !b.blocks(&[1; 32]));
        assert!(Blocklist::default().is_empty());
    }
}
