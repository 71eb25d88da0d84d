//! The file sensor, in one of two modes. Fanotify (see `fanotify`) sees creations, writes
//! (a file closed after writing), deletions, renames and attribute changes anywhere on the
//! host's real filesystems, each with the process that made it: named from the shared process
//! table a moment after the event is read, so the process sensor has seen its exec first.
//! Inotify (see `watch`), the fallback, sees the same minus attribute changes, only in the
//! configured directories, and cannot name the writer. The SHA-256 of regular files up to a
//! size bound is taken only under the configured directories. Excluded paths and the agent's
//! own state and writes are never reported; lost kernel queues and missing watches are
//! reported, not silent.
//!
//! The kernel is asked only for the events reported: the `notify` crate subscribes to every
//! open and write too, and on a busy host (every exec opens files under /etc and /usr/bin)
//! that cost the agent about a quarter of its CPU.

mod fanotify;
pub(crate) mod mounts;
pub mod records;
mod watch;

use crate::sensors::process::clock::ns_to_ticks;
use crate::sensors::process::table::ProcessTable;
use crate::telemetry::Emitter;
use cordon_proto::{FileEvent, ProcessRef, event, file_event::Kind};
use serde::Deserialize;
use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use watch::{Change, Watcher};

/// Which kernel interface the file sensor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Fanotify, else inotify with a `sensor_degraded` notice.
    Auto,
    Fanotify,
    Inotify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSensorConfig {
    pub mode: Mode,
    /// Directories watched (their direct entries) under inotify, and where files are hashed
    /// under both modes. `*` in a path expands once at start, so `/home/*/.ssh` covers every
    /// user's.
    pub watch: Vec<String>,
    /// Directories watched (and hashed in) with everything below them.
    pub recursive: Vec<String>,
    /// Paths (and everything below them) never reported.
    pub exclude: Vec<String>,
    /// Files larger than this are reported without a hash.
    pub hash_max_bytes: u64,
}

impl Default for FileSensorConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect();
        Self {
            mode: Mode::Auto,
            watch: s(&[
                "/usr/bin",
                "/usr/sbin",
                "/usr/local/bin",
                "/root/.ssh",
                "/home/*/.ssh",
                "/tmp",
                "/dev/shm",
                "/var/spool/cron",
                "/var/spool/cron/crontabs",
                "/etc/systemd/system",
                "/lib/systemd/system",
                "/usr/lib/systemd/system",
            ]),
            recursive: s(&["/etc"]),
            exclude: Vec::new(),
            hash_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Expands one `*` path segment against the directories that exist now.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let Some((head, tail)) = pattern.split_once("/*/") else {
        return vec![PathBuf::from(pattern)];
    };
    std::fs::read_dir(head)
        .map(|entries| entries.flatten().map(|e| e.path().join(tail)).collect())
        .unwrap_or_default()
}

/// Where files are hashed: the configured directories (their direct entries, or everything
/// below them), or everywhere (inotify watches nothing else).
#[derive(Debug, Clone, Default)]
pub struct HashScope {
    direct: Vec<PathBuf>,
    below: Vec<PathBuf>,
    everywhere: bool,
}

impl HashScope {
    fn configured(cfg: &FileSensorConfig) -> Self {
        let all = |v: &[String]| v.iter().flat_map(|p| expand(p)).collect();
        Self {
            direct: all(&cfg.watch),
            below: all(&cfg.recursive),
            everywhere: false,
        }
    }

    fn contains(&self, path: &Path) -> bool {
        self.everywhere
            || self.below.iter().any(|d| path.starts_with(d))
            || path
                .parent()
                .is_some_and(|p| self.direct.iter().any(|d| d == p))
    }
}

/// A running file sensor; dropping it stops it.
pub struct FileSensor {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// "fanotify" or "inotify".
    pub mode: &'static str,
    /// One line for heartbeats: the mode and what it covers.
    pub status: String,
}

/// How often the sensor thread looks at its stop flag while nothing changes.
const IDLE_WAKE: Duration = Duration::from_millis(500);
/// How long a fanotify event waits before its process is looked up: the process sensor's
/// record of the writer's exec may still be on its way (until then the table holds the
/// parent it forked from).
const ATTRIBUTION_DELAY: Duration = Duration::from_millis(100);
/// Most events waiting for attribution; past it they are named at once.
const PENDING_MAX: usize = 1 << 16;

impl FileSensor {
    /// Starts the configured mode. `own` (the agent's state) is always excluded. `table` is
    /// the process sensor's (None when it is off: processes are then read from /proc alone).
    pub fn start(
        cfg: &FileSensorConfig,
        own: &Path,
        emit: Emitter,
        table: Option<Arc<ProcessTable>>,
    ) -> std::io::Result<Self> {
        let mut exclude: Vec<PathBuf> = cfg.exclude.iter().map(PathBuf::from).collect();
        exclude.push(own.to_path_buf());
        if let Ok(c) = own.canonicalize() {
            exclude.push(c);
        }
        if cfg.mode == Mode::Inotify {
            return Self::start_inotify(cfg, exclude, emit);
        }
        match fanotify::Group::open(exclude.clone()) {
            Ok(group) => Self::start_fanotify(cfg, group, emit, table),
            Err(e) if cfg.mode == Mode::Fanotify => Err(std::io::Error::other(e)),
            Err(e) => {
                tracing::warn!(error = %e, "file sensor falls back to inotify");
                emit.notice(
                    "sensor_degraded",
                    format!(
                        "file sensor in inotify mode ({e}): only the configured directories \
                         are watched, writers are not named, attribute changes are not seen"
                    ),
                );
                let mut s = Self::start_inotify(cfg, exclude, emit)?;
                s.status = format!("{} (fanotify unavailable: {e})", s.status);
                Ok(s)
            }
        }
    }

    fn start_fanotify(
        cfg: &FileSensorConfig,
        mut group: fanotify::Group,
        emit: Emitter,
        table: Option<Arc<ProcessTable>>,
    ) -> std::io::Result<Self> {
        let mut status = format!("fanotify: {} filesystems", group.marked.len());
        if !group.refused.is_empty() {
            let refused = group.refused.join("; ");
            tracing::warn!(%refused, "filesystems refused a fanotify mark");
            emit.notice(
                "sensor_degraded",
                format!("file sensor: changes on these filesystems are not seen: {refused}"),
            );
            status = format!("{status} (not marked: {refused})");
        }
        let scope = HashScope::configured(cfg);
        let hash_max = cfg.hash_max_bytes;
        let names = Names::new(table);
        let mut pending: VecDeque<(Instant, u32, FileEvent)> = VecDeque::new();
        let step = move |emit: &Emitter, last: bool| {
            let wait = match pending.front() {
                Some((at, ..)) => ATTRIBUTION_DELAY.saturating_sub(at.elapsed()),
                None => IDLE_WAKE,
            };
            for seen in group.read(wait.max(Duration::from_millis(1)))? {
                match seen {
                    fanotify::Seen::Change(c) => pending.push_back((
                        Instant::now(),
                        c.pid,
                        fanotify_event(c, &scope, hash_max),
                    )),
                    fanotify::Seen::Overflow => emit.lost(
                        0,
                        "file sensor: the fanotify queue overflowed; an unknown number of file \
                         changes were lost"
                            .into(),
                    ),
                    fanotify::Seen::Malformed(why) => {
                        emit.lost(0, format!("file sensor: unreadable fanotify events: {why}"))
                    }
                }
            }
            while let Some((at, ..)) = pending.front()
                && (last || pending.len() > PENDING_MAX || at.elapsed() >= ATTRIBUTION_DELAY)
            {
                let Some((_, pid, mut fe)) = pending.pop_front() else {
                    break;
                };
                fe.process = Some(names.process(pid));
                emit.emit(event::Body::File(fe));
            }
            Ok(())
        };
        Self::spawn("fanotify", status, emit, step)
    }

    fn start_inotify(
        cfg: &FileSensorConfig,
        exclude: Vec<PathBuf>,
        emit: Emitter,
    ) -> std::io::Result<Self> {
        let mut watcher = Watcher::new(exclude.clone())?;
        let targets = cfg
            .watch
            .iter()
            .flat_map(|p| expand(p).into_iter().map(|p| (p, false)))
            .chain(
                cfg.recursive
                    .iter()
                    .flat_map(|p| expand(p).into_iter().map(|p| (p, true))),
            );
        let hash_max = cfg.hash_max_bytes;
        for (path, recursive) in targets {
            if path.is_dir()
                && let Err(change) = watcher.watch(&path, recursive)
            {
                report(change, &exclude, hash_max, &emit);
            }
        }
        let status = format!("inotify: watching {} directories", watcher.watched());
        let step = move |emit: &Emitter, _last: bool| {
            for change in watcher.read(IDLE_WAKE)? {
                report(change, &exclude, hash_max, emit);
            }
            Ok(())
        };
        Self::spawn("inotify", status, emit, step)
    }

    /// Runs `step` on the sensor thread until stopped, then once more with `last` set so
    /// nothing read is left behind. A failed read stops the sensor, with a notice.
    fn spawn(
        mode: &'static str,
        status: String,
        emit: Emitter,
        mut step: impl FnMut(&Emitter, bool) -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::Builder::new()
            .name("file-sensor".into())
            .spawn(move || {
                let mut last = false;
                loop {
                    if let Err(e) = step(&emit, last) {
                        tracing::error!(error = %e, mode, "file sensor stopped: reading failed");
                        emit.notice(
                            "sensor_degraded",
                            format!("file sensor stopped: reading {mode} failed: {e}"),
                        );
                        return;
                    }
                    if last {
                        return;
                    }
                    last = halt.load(Ordering::Relaxed);
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            mode,
            status,
        })
    }
}

impl Drop for FileSensor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Names the process behind an event by pid.
pub(crate) struct Names {
    /// The process sensor's table, or a private one that is only read through (nothing
    /// would forget its entries, and a reused pid would then name the wrong process).
    table: Arc<ProcessTable>,
    cached: bool,
}

impl Names {
    pub(crate) fn new(table: Option<Arc<ProcessTable>>) -> Self {
        match table {
            Some(table) => Self {
                table,
                cached: true,
            },
            None => Self {
                table: Arc::new(ProcessTable::new(
                    crate::sys::procfs::Proc::default(),
                    crate::sensors::process::ProcessSensorConfig::default().argv_max_bytes,
                )),
                cached: false,
            },
        }
    }

    pub(crate) fn process(&self, pid: u32) -> ProcessRef {
        let known = if self.cached {
            self.table.lookup(pid, None)
        } else {
            self.table.read_proc(pid, None)
        };
        let mut r = ProcessRef {
            pid,
            ..Default::default()
        };
        if let Some(k) = known {
            r.start_ticks = k.start_ns.map(ns_to_ticks).unwrap_or_default();
            r.exe = k.exe;
            r.argv = k.argv;
        }
        r
    }
}

/// A fanotify change as an event (without its process yet).
fn fanotify_event(c: fanotify::Change, scope: &HashScope, hash_max: u64) -> FileEvent {
    let old_path = c
        .old_path
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let hash = (!c.unresolved && scope.contains(&c.path)).then_some(hash_max);
    let mut fe = describe(c.kind, &c.path, old_path, hash);
    if c.unresolved {
        fe.hash_skipped = "its directory could not be named (gone, or mounted after the \
                           sensor started); path is the entry's name alone"
            .into();
    }
    fe.source = "fanotify".into();
    fe
}

/// An event for `path` as it is now: mode, owner and size, and the SHA-256 if `hash` gives
/// a size bound (else `hash_skipped` says why not).
fn describe(kind: Kind, path: &Path, old_path: String, hash: Option<u64>) -> FileEvent {
    let mut fe = FileEvent {
        kind: kind as i32,
        path: path.display().to_string(),
        old_path,
        ..Default::default()
    };
    if kind == Kind::Delete {
        return fe;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        fe.hash_skipped = "gone".into();
        return fe;
    };
    fe.size = meta.len();
    fe.mode = meta.mode();
    fe.uid = meta.uid();
    fe.gid = meta.gid();
    fe.setuid = meta.mode() & 0o4000 != 0;
    fe.setgid = meta.mode() & 0o2000 != 0;
    match hash {
        Some(max) => match super::hash::sha256_file(path, max) {
            Ok((_, h)) => fe.sha256 = h,
            Err(why) => fe.hash_skipped = why,
        },
        None => {
            fe.hash_skipped =
                "outside the directories configured for hashing (files.watch, files.recursive)"
                    .into()
        }
    }
    fe
}

fn report(change: Change, exclude: &[PathBuf], hash_max: u64, emit: &Emitter) {
    let (kind, path, old_path) = match change {
        Change::Overflow => {
            // The kernel's inotify queue overflowed: it does not say how much was lost.
            emit.lost(
                0,
                "file sensor: the inotify queue overflowed; an unknown number of file changes \
                 were lost"
                    .into(),
            );
            return;
        }
        Change::OutOfWatches(path) => {
            tracing::error!(path = %path.display(), "out of inotify watches");
            emit.notice(
                "sensor_degraded",
                format!(
                    "file sensor: out of inotify watches at {}; changes there are not seen \
                     (raise fs.inotify.max_user_watches)",
                    path.display()
                ),
            );
            return;
        }
        Change::Create(p) => (Kind::Create, p, String::new()),
        Change::Modify(p) => (Kind::Modify, p, String::new()),
        Change::Delete(p) => (Kind::Delete, p, String::new()),
        Change::Rename { from, to } => (Kind::Rename, to, from.display().to_string()),
    };
    if exclude.iter().any(|x| path.starts_with(x)) {
        return;
    }
    let mut fe = describe(kind, &path, old_path, Some(hash_max));
    fe.source = "inotify".into();
    emit.emit(event::Body::File(fe));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setuid_and_setgid_are_named_and_hashing_keeps_to_the_configured_directories() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o6755)).unwrap();
        let scope = HashScope {
            direct: vec![dir.path().to_path_buf()],
            ..Default::default()
        };
        let change = |path: &Path| fanotify::Change {
            pid: 1,
            kind: Kind::Attrib,
            path: path.to_path_buf(),
            old_path: None,
            unresolved: false,
        };
        let fe = fanotify_event(change(&file), &scope, 1024);
        assert!(fe.setuid && fe.setgid, "{fe:?}");
        assert_eq!(fe.mode & 0o7777, 0o6755);
        assert_eq!(fe.source, "fanotify");
        assert_eq!(fe.sha256.len(), 64, "hashed in a configured directory");

        let deeper = dir.path().join("sub");
        std::fs::create_dir(&deeper).unwrap();
        let other = deeper.join("f");
        std::fs::write(&other, b"y").unwrap();
        let fe = fanotify_event(change(&other), &scope, 1024);
        assert!(!fe.setuid && fe.sha256.is_empty(), "{fe:?}");
        assert!(fe.hash_skipped.contains("outside"), "{fe:?}");
        let below = HashScope {
            below: vec![dir.path().to_path_buf()],
            ..Default::default()
        };
        assert_eq!(
            fanotify_event(change(&other), &below, 1024).sha256.len(),
            64
        );
    }

    #[test]
    fn an_inotify_overflow_is_reported_as_lost_events() {
        let (emit, mut rx) = Emitter::channel(4);
        report(Change::Overflow, &[], 1024, &emit);
        let Some(event::Body::Notice(n)) = rx.try_recv().ok().and_then(|e| e.body) else {
            panic!("no notice")
        };
        assert_eq!(n.kind, "events_lost");
        assert!(
            n.message.contains("inotify queue overflowed"),
            "{}",
            n.message
        );
    }
}
