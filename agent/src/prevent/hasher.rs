//! Hashing for prevention: of a file version from a descriptor the kernel opened for an
//! event (never by path, so the permission thread never opens a file it might itself be
//! asked about), and the worker that hashes executables closed after writing, off the
//! permission thread, so writers never wait on a hash and the first exec finds it cached.

use super::verdicts::{Digest, FileId, HashCache};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Written files waiting for the worker (each holds a descriptor); past it they are hashed at
/// their first exec.
const QUEUE: usize = 64;

/// The version of the regular file behind `fd`, or None for anything else.
pub fn file_id(fd: BorrowedFd<'_>) -> Option<(FileId, u32)> {
    let st = rustix::fs::fstat(fd).ok()?;
    let regular = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
    regular.then(|| (FileId::of(&st), st.st_mode))
}

/// The SHA-256 of the file behind `fd` (read from its start on a duplicate descriptor), or
/// why there is none.
pub fn digest(fd: BorrowedFd<'_>, size: u64, max: u64) -> Digest {
    if size > max {
        return Err(format!("larger than {max} bytes, not hashed"));
    }
    let file = std::fs::File::from(fd.try_clone_to_owned().map_err(|e| e.to_string())?);
    crate::sensors::hash::sha256_of(file).map_err(|e| format!("unreadable: {e}"))
}

/// The digest of the file version `id` behind `fd`, from the cache or hashed now and cached.
/// The second value is true when it was hashed now.
pub fn cached_digest(
    cache: &Mutex<HashCache>,
    id: FileId,
    fd: BorrowedFd<'_>,
    max: u64,
) -> (Digest, bool) {
    if let Some(d) = lock(cache).get(&id) {
        return (d.clone(), false);
    }
    // Hashed without the lock: the close-write worker may hash another file meanwhile.
    let d = digest(fd, id.size, max);
    lock(cache).insert(id, d.clone());
    (d, true)
}

pub fn lock(cache: &Mutex<HashCache>) -> std::sync::MutexGuard<'_, HashCache> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends written files to the worker thread.
pub struct Worker {
    tx: SyncSender<OwnedFd>,
}

impl Worker {
    pub fn start(cache: Arc<Mutex<HashCache>>, max: u64) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("prevent-hash".into())
            .spawn(move || work(rx, &cache, max))?;
        Ok(Self { tx })
    }

    /// Queues the file behind `fd` (a duplicate is kept); a full queue drops it, and the
    /// file is hashed at its first exec instead.
    pub fn written(&self, fd: BorrowedFd<'_>) {
        if let Ok(own) = fd.try_clone_to_owned() {
            // Full or gone: the first exec hashes it.
            let _ = self.tx.try_send(own);
        }
    }
}

/// Hashes executables closed after writing; other files cannot be run before a chmod,
/// which changes their identity, so they are left to their first exec.
fn work(rx: Receiver<OwnedFd>, cache: &Mutex<HashCache>, max: u64) {
    for fd in rx {
        let Some((id, mode)) = file_id(std::os::fd::AsFd::as_fd(&fd)) else {
            continue;
        };
        if mode & 0o111 == 0 || id.size > max {
            continue;
        }
        let _ = cached_digest(cache, id, std::os::fd::AsFd::as_fd(&fd), max);
    }
}
