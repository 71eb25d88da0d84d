//! The prevention fanotify group: a content-class group (permission events) reporting an open
//! descriptor per event (`O_RDONLY | O_LARGEFILE`, never the FID mode of the file sensor,
//! which permission events do not allow) and the thread id of the process that caused it.
//! Exec checks are filesystem marks on every real filesystem (`FAN_OPEN_EXEC_PERM`, and
//! `FAN_CLOSE_WRITE` to hash written files early), added only while the block list is not
//! empty, so a host with no block list pays nothing at exec. Tamper protection is inode marks
//! (`FAN_OPEN_PERM`) on the agent's binary and state directories.

use crate::sensors::file::mounts;
use nix::sys::fanotify::{
    EventFFlags, Fanotify, FanotifyEvent, FanotifyResponse, InitFlags, MarkFlags, MaskFlags,
    Response,
};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// What the filesystem marks ask for while a block list is in force.
pub const EXEC_MASK: MaskFlags = MaskFlags::FAN_OPEN_EXEC_PERM.union(MaskFlags::FAN_CLOSE_WRITE);

#[derive(Debug, Error)]
pub enum GroupError {
    #[error("fanotify_init with permission events failed: {0}")]
    Init(nix::Error),
    #[error("reading /proc/self/mountinfo failed: {0}")]
    Mountinfo(std::io::Error),
    #[error("no filesystem accepted an exec permission mark: {0}")]
    NothingMarked(String),
    #[error("protecting {path} failed: {source}")]
    Protect { path: PathBuf, source: nix::Error },
}

pub struct Group {
    fan: Fanotify,
    /// A descriptor on the root of each real filesystem, with its mount point.
    filesystems: Vec<(PathBuf, OwnedFd)>,
    /// Whether the exec marks are in place.
    exec_marked: bool,
}

impl Group {
    /// A group with no marks yet; it checks that every real filesystem takes an exec mark.
    pub fn open() -> Result<Self, GroupError> {
        let flags = InitFlags::FAN_CLASS_CONTENT
            | InitFlags::FAN_CLOEXEC
            | InitFlags::FAN_NONBLOCK
            | InitFlags::FAN_REPORT_TID
            // A full queue drops a permission event and the kernel then allows the open: a
            // flood of writes must not open a window for an exec.
            | InitFlags::FAN_UNLIMITED_QUEUE;
        let fan = Fanotify::init(flags, EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE)
            .map_err(GroupError::Init)?;
        let info =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(GroupError::Mountinfo)?;
        let mut group = Self {
            fan,
            filesystems: Vec::new(),
            exec_marked: false,
        };
        let mut refused = Vec::new();
        for m in mounts::filesystems(&info) {
            match group.probe(&m.point) {
                Ok(fd) => group.filesystems.push((m.point, fd)),
                Err(e) => refused.push(format!("{} ({}): {e}", m.point.display(), m.fstype)),
            }
        }
        if group.filesystems.is_empty() {
            return Err(GroupError::NothingMarked(refused.join("; ")));
        }
        if !refused.is_empty() {
            tracing::info!(refused = %refused.join("; "), "filesystems without exec checks");
        }
        Ok(group)
    }

    /// Opens a filesystem's mount point and checks it takes an exec mark (added and removed).
    fn probe(&self, point: &Path) -> Result<OwnedFd, String> {
        let dir = std::fs::File::open(point).map_err(|e| e.to_string())?;
        for add in [true, false] {
            self.fs_mark(dir.as_fd(), add)
                .map_err(|e| e.desc().to_string())?;
        }
        Ok(dir.into())
    }

    fn fs_mark(&self, fd: BorrowedFd<'_>, add: bool) -> nix::Result<()> {
        let op = if add {
            MarkFlags::FAN_MARK_ADD
        } else {
            MarkFlags::FAN_MARK_REMOVE
        };
        self.fan.mark(
            op | MarkFlags::FAN_MARK_FILESYSTEM,
            EXEC_MASK,
            fd,
            None::<&Path>,
        )
    }

    /// Puts the exec marks in place (`on`) or takes them away; the filesystems that failed
    /// are named.
    pub fn set_exec_marks(&mut self, on: bool) -> Result<(), String> {
        if on == self.exec_marked {
            return Ok(());
        }
        let mut failed = Vec::new();
        for (point, fd) in &self.filesystems {
            if let Err(e) = self.fs_mark(fd.as_fd(), on) {
                failed.push(format!("{}: {}", point.display(), e.desc()));
            }
        }
        self.exec_marked = on;
        match failed.is_empty() {
            true => Ok(()),
            false => Err(failed.join("; ")),
        }
    }

    /// The mount points exec checks cover.
    pub fn covered(&self) -> Vec<PathBuf> {
        self.filesystems.iter().map(|(p, _)| p.clone()).collect()
    }

    /// Stops exec checks of the file behind `fd` until it is written to: an ignore mark on
    /// its inode, which the kernel clears at the file's next modification (a write or a
    /// truncation), and may evict under memory pressure (then the cache answers). A file
    /// already allowed then costs its execs no round trip to this process.
    pub fn allow_until_modified(&self, fd: BorrowedFd<'_>) {
        let _ = self.fan.mark(
            MarkFlags::FAN_MARK_ADD
                | MarkFlags::FAN_MARK_IGNORED_MASK
                | MarkFlags::FAN_MARK_EVICTABLE,
            MaskFlags::FAN_OPEN_EXEC_PERM,
            fd,
            None::<&Path>,
        );
    }

    /// Drops every inode mark (the ignore marks of allowed files, and the tamper marks, which
    /// the caller puts back): a new block list may name a file allowed before.
    pub fn forget_allowed(&self) -> Result<(), String> {
        self.fan
            .mark(
                MarkFlags::FAN_MARK_FLUSH,
                MaskFlags::empty(),
                rustix::fs::CWD,
                None::<&Path>,
            )
            .map_err(|e| format!("flushing inode marks: {}", e.desc()))
    }

    /// Asks for a permission event at every open of `path` (a file), or of every direct entry
    /// of `path` (a directory).
    pub fn protect(&self, path: &Path) -> Result<(), GroupError> {
        let mut mask = MaskFlags::FAN_OPEN_PERM;
        if path.is_dir() {
            mask |= MaskFlags::FAN_EVENT_ON_CHILD | MaskFlags::FAN_ONDIR;
        }
        self.fan
            .mark(MarkFlags::FAN_MARK_ADD, mask, rustix::fs::CWD, Some(path))
            .map_err(|source| GroupError::Protect {
                path: path.into(),
                source,
            })
    }

    /// Waits up to `timeout` for events on the group, or for `wake` to become readable.
    pub fn wait(&self, wake: BorrowedFd<'_>, timeout: Duration) {
        let ts = rustix::time::Timespec::try_from(timeout).unwrap_or(rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        });
        let mut fds = [
            rustix::event::PollFd::new(&self.fan, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&wake, rustix::event::PollFlags::IN),
        ];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }

    /// The events queued (none when the queue is empty).
    pub fn read(&self) -> Result<Vec<FanotifyEvent>, nix::Error> {
        match self.fan.read_events() {
            Ok(v) => Ok(v),
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Answers a permission event.
    pub fn answer(&self, fd: BorrowedFd<'_>, allow: bool) -> Result<(), nix::Error> {
        let r = if allow {
            Response::FAN_ALLOW
        } else {
            Response::FAN_DENY
        };
        loop {
            match self.fan.write_response(FanotifyResponse::new(fd, r)) {
                Err(nix::Error::EINTR) => continue,
                other => return other,
            }
        }
    }
}

/// Whether an event's mask asks for an answer.
pub fn is_permission(mask: MaskFlags) -> bool {
    mask.intersects(MaskFlags::FAN_OPEN_PERM | MaskFlags::FAN_OPEN_EXEC_PERM)
}
