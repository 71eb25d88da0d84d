//! The file sensor's filesystem-wide kernel side: one fanotify group in FID mode
//! (`FAN_REPORT_DFID_NAME`) with a filesystem mark on every real filesystem (see `mounts`),
//! asked for creations, deletions, renames, files closed after writing and attribute changes.
//! Each event names the process that caused it and the directory (a file handle) and name it
//! happened at; the directory is opened by its handle through a mount of its filesystem and
//! its path read back from /proc/self/fd, then cached (bounded). Excluded directories get
//! ignore marks, so the kernel does not even queue their direct entries' events; whatever else
//! lies below them, and the agent's own writes, are dropped here before any path work.

use super::mounts::{self, Mount};
use super::records::{self, Handle, Info, InfoKind};
use crate::sys::handle;
use cordon_proto::file_event::Kind;
use nix::libc;
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// What the filesystem marks ask for.
const MASK: MaskFlags = MaskFlags::FAN_CREATE
    .union(MaskFlags::FAN_DELETE)
    .union(MaskFlags::FAN_RENAME)
    .union(MaskFlags::FAN_CLOSE_WRITE)
    .union(MaskFlags::FAN_ATTRIB)
    .union(MaskFlags::FAN_ONDIR);

/// Directory paths remembered; past it the cache starts again.
const DIR_CACHE_MAX: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum FanotifyError {
    #[error("fanotify_init in FID mode failed: {0}")]
    Init(nix::Error),
    #[error("reading /proc/self/mountinfo failed: {0}")]
    Mountinfo(std::io::Error),
    #[error("no filesystem accepted a fanotify mark: {0}")]
    NothingMarked(String),
}

/// One change, as the kernel reported it and the paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub pid: u32,
    pub kind: Kind,
    pub path: PathBuf,
    /// For a rename: where it was.
    pub old_path: Option<PathBuf>,
    /// The directory could not be named (gone, or on a filesystem mounted later): `path` is
    /// the entry's name alone.
    pub unresolved: bool,
}

/// What a read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Change(Change),
    /// The kernel's queue overflowed: an unknown number of changes were lost.
    Overflow,
    /// The kernel's bytes did not parse (reported, never expected).
    Malformed(String),
}

pub struct Group {
    fan: Fanotify,
    resolver: Resolver,
    exclude: Vec<PathBuf>,
    own_pid: u32,
    buf: Vec<u8>,
    /// Mount points marked.
    pub marked: Vec<PathBuf>,
    /// Filesystems that refused a mark, and why.
    pub refused: Vec<String>,
}

impl Group {
    /// A group marking every real filesystem; events under `exclude` and this process's own
    /// are never returned.
    pub fn open(exclude: Vec<PathBuf>) -> Result<Self, FanotifyError> {
        let flags = InitFlags::FAN_CLASS_NOTIF
            | InitFlags::FAN_CLOEXEC
            | InitFlags::FAN_NONBLOCK
            | InitFlags::from_bits_retain(libc::FAN_REPORT_DFID_NAME);
        let fan = Fanotify::init(flags, EventFFlags::O_RDONLY).map_err(FanotifyError::Init)?;
        let info =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(FanotifyError::Mountinfo)?;
        let mut group = Self {
            fan,
            resolver: Resolver::default(),
            exclude,
            own_pid: std::process::id(),
            buf: vec![0; 256 * 1024],
            marked: Vec::new(),
            refused: Vec::new(),
        };
        for m in mounts::filesystems(&info) {
            if let Err(why) = group.mark(&m) {
                group
                    .refused
                    .push(format!("{} ({}): {why}", m.point.display(), m.fstype));
            }
        }
        if group.marked.is_empty() {
            return Err(FanotifyError::NothingMarked(group.refused.join("; ")));
        }
        group.ignore_excluded();
        Ok(group)
    }

    /// Marks the filesystem `m` is a mount of, and keeps a descriptor of it for handles.
    fn mark(&mut self, m: &Mount) -> Result<(), String> {
        if self.exclude.iter().any(|x| m.point.starts_with(x)) {
            return Err("excluded".into());
        }
        let dir = std::fs::File::open(&m.point).map_err(|e| e.to_string())?;
        let fsid = handle::fsid(dir.as_fd()).map_err(|e| e.to_string())?;
        self.fan
            .mark(
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_FILESYSTEM,
                MASK,
                dir.as_fd(),
                None::<&Path>,
            )
            .map_err(|e| e.desc().to_string())?;
        self.resolver.mounts.entry(fsid).or_insert(dir.into());
        self.marked.push(m.point.clone());
        Ok(())
    }

    /// Ignore marks on the excluded directories that exist: the kernel drops their direct
    /// entries' events. A kernel without `FAN_MARK_IGNORE` (before 6.0) refuses them, and
    /// the filter here does the work.
    fn ignore_excluded(&self) {
        for dir in self.exclude.iter().filter(|d| d.is_dir()) {
            let res = self.fan.mark(
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_IGNORE_SURV,
                MASK | MaskFlags::FAN_EVENT_ON_CHILD,
                rustix::fs::CWD,
                Some(dir.as_path()),
            );
            if let Err(e) = res {
                tracing::debug!(dir = %dir.display(), error = %e, "no ignore mark");
            }
        }
    }

    /// Waits up to `timeout` for events and returns what they say.
    pub fn read(&mut self, timeout: Duration) -> std::io::Result<Vec<Seen>> {
        let ts = rustix::time::Timespec::try_from(timeout).unwrap_or(rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = [rustix::event::PollFd::new(
            &self.fan,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let mut out = Vec::new();
        // Bounded: a busy host could keep the queue full forever.
        for _ in 0..64 {
            let n = match rustix::io::read(&self.fan, &mut self.buf) {
                Ok(0) | Err(Errno::AGAIN) => break,
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let (records, err) = records::parse(&self.buf[..n]);
            for r in records {
                self.apply(r, &mut out);
            }
            if let Some(e) = err {
                out.push(Seen::Malformed(e.to_string()));
            }
        }
        Ok(out)
    }

    /// Turns one event into changes.
    fn apply(&mut self, r: records::Record, out: &mut Vec<Seen>) {
        let mask = MaskFlags::from_bits_retain(r.mask);
        if mask.contains(MaskFlags::FAN_Q_OVERFLOW) {
            out.push(Seen::Overflow);
            return;
        }
        let pid = u32::try_from(r.pid).unwrap_or_default();
        if pid == self.own_pid {
            return;
        }
        let find = |kind: InfoKind| r.infos.iter().find(|i| i.kind == kind);
        let entry = find(InfoKind::DfidName).or_else(|| find(InfoKind::Dfid));
        for (bit, kind) in [
            (MaskFlags::FAN_CREATE, Kind::Create),
            (MaskFlags::FAN_CLOSE_WRITE, Kind::Modify),
            (MaskFlags::FAN_ATTRIB, Kind::Attrib),
            (MaskFlags::FAN_RENAME, Kind::Rename),
            (MaskFlags::FAN_DELETE, Kind::Delete),
        ] {
            if !mask.contains(bit) {
                continue;
            }
            let (to, from) = match kind {
                Kind::Rename => (find(InfoKind::NewDfidName), find(InfoKind::OldDfidName)),
                _ => (entry, None),
            };
            let Some(to) = to else { continue };
            let (path, unresolved) = self.resolver.path(to);
            let old_path = from.map(|f| self.resolver.path(f).0);
            if self.excluded(&path) && old_path.as_ref().is_none_or(|p| self.excluded(p)) {
                continue;
            }
            out.push(Seen::Change(Change {
                pid,
                kind,
                path,
                old_path,
                unresolved,
            }));
        }
        // A directory renamed or removed: cached paths below it are wrong now.
        if mask.contains(MaskFlags::FAN_ONDIR)
            && mask.intersects(MaskFlags::FAN_RENAME | MaskFlags::FAN_DELETE)
        {
            self.resolver.dirs.clear();
        }
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|x| path.starts_with(x))
    }
}

/// File handles to paths.
#[derive(Default)]
struct Resolver {
    /// A descriptor on each marked filesystem, by fsid.
    mounts: HashMap<[i32; 2], OwnedFd>,
    dirs: HashMap<Handle, PathBuf>,
}

impl Resolver {
    /// The path `info` names, or its name alone (and `true`) if its directory is unknown.
    fn path(&mut self, info: &Info) -> (PathBuf, bool) {
        let name = OsStr::from_bytes(&info.name);
        let entry = |dir: &Path| match info.name.as_slice() {
            b"" | b"." => dir.to_path_buf(),
            _ => dir.join(name),
        };
        match self.dir(&info.handle) {
            Some(dir) => (entry(&dir), false),
            None => (PathBuf::from(name), true),
        }
    }

    fn dir(&mut self, h: &Handle) -> Option<PathBuf> {
        if let Some(p) = self.dirs.get(h) {
            return Some(p.clone());
        }
        let mount = self.mounts.get(&h.fsid)?;
        let fd = handle::open(mount.as_fd(), h.handle_type, &h.bytes).ok()?;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        // A directory removed since reads back with this suffix: named, but not cached.
        if let Some(gone) = link.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
            return Some(PathBuf::from(gone));
        }
        if self.dirs.len() >= DIR_CACHE_MAX {
            self.dirs.clear();
        }
        self.dirs.insert(h.clone(), link.clone());
        Some(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Reads changes until `done` holds, or five seconds pass.
    fn changes(g: &mut Group, done: impl Fn(&[Change]) -> bool) -> Vec<Change> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut all = Vec::new();
        while Instant::now() < deadline && !done(&all) {
            for seen in g.read(Duration::from_millis(50)).unwrap() {
                if let Seen::Change(c) = seen {
                    all.push(c);
                }
            }
        }
        all
    }

    #[test]
    fn changes_anywhere_are_named_with_their_paths_and_process_and_own_writes_are_not() {
        if !crate::sys::privileges::is_root() {
            assert!(
                !cordon_skips::in_ci(),
                "fanotify needs root, and CI must run it"
            );
            cordon_skips::skip("fanotify group", "needs root");
            return;
        }
        let root = tempfile::tempdir_in("/var/tmp").unwrap();
        let skipped = root.path().join("skipped");
        std::fs::create_dir(&skipped).unwrap();
        let mut g = Group::open(vec![skipped.clone()]).unwrap();
        let dir = root.path().canonicalize().unwrap();
        // This process's own write is never reported.
        std::fs::write(dir.join("own"), b"mine").unwrap();
        let script = format!(
            "cd {0} && echo x > skipped/f && echo x > f && chmod u+s f && mv f g && rm g",
            dir.display()
        );
        let child = std::process::Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let gone = dir.join("g");
        let got = changes(&mut g, |c| {
            c.iter().any(|c| c.kind == Kind::Delete && c.path == gone)
        });
        let mine: Vec<_> = got.iter().filter(|c| c.path.starts_with(&dir)).collect();
        let kinds: Vec<_> = mine.iter().map(|c| (c.kind, c.path.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Create, dir.join("f")),
                (Kind::Modify, dir.join("f")),
                (Kind::Attrib, dir.join("f")),
                (Kind::Rename, dir.join("g")),
                (Kind::Delete, dir.join("g")),
            ],
            "{got:?}"
        );
        // The shell wrote the file itself; chmod, mv and rm are its children.
        assert!(mine[..2].iter().all(|c| c.pid == pid), "{mine:?}");
        assert!(
            mine.iter()
                .all(|c| c.pid != std::process::id() && !c.unresolved)
        );
        assert_eq!(mine[3].old_path.as_deref(), Some(dir.join("f").as_path()));
    }
}
