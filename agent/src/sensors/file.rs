//! The file sensor: inotify (through `notify`) on the configured paths. Reports creation,
//! modification (when a file written to is closed), deletion and renames (old and new path),
//! with the SHA-256 of regular files up to a size bound. Excluded paths and the agent's own
//! state are never reported; running out of inotify watches is reported, not silent.

use crate::telemetry::Emitter;
use cordon_proto::{FileEvent, event, file_event::Kind};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSensorConfig {
    /// Directories watched (their direct entries). `*` in a path expands once at start, so
    /// `/home/*/.ssh` covers every user's.
    pub watch: Vec<String>,
    /// Directories watched with everything below them.
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

/// A running file sensor; dropping it stops the watches.
pub struct FileSensor {
    _watcher: notify::RecommendedWatcher,
    pub watched: usize,
}

impl FileSensor {
    /// Starts watching. `own` (the agent's state) is always excluded.
    pub fn start(cfg: &FileSensorConfig, own: &Path, emit: Emitter) -> Result<Self, notify::Error> {
        let mut exclude: Vec<PathBuf> = cfg.exclude.iter().map(PathBuf::from).collect();
        exclude.push(own.to_path_buf());
        if let Ok(c) = own.canonicalize() {
            exclude.push(c);
        }
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)?;
        let mut watched = 0;
        let targets = cfg
            .watch
            .iter()
            .flat_map(|p| {
                expand(p)
                    .into_iter()
                    .map(|p| (p, RecursiveMode::NonRecursive))
            })
            .chain(
                cfg.recursive
                    .iter()
                    .flat_map(|p| expand(p).into_iter().map(|p| (p, RecursiveMode::Recursive))),
            );
        for (path, mode) in targets {
            if !path.is_dir() || exclude.iter().any(|x| path.starts_with(x)) {
                continue;
            }
            match watcher.watch(&path, mode) {
                Ok(()) => watched += 1,
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    tracing::error!(path = %path.display(), "out of inotify watches");
                    emit.notice(
                        "sensor_degraded",
                        format!("file sensor: out of inotify watches at {} (raise fs.inotify.max_user_watches)", path.display()),
                    );
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot watch"),
            }
        }
        let hash_max = cfg.hash_max_bytes;
        std::thread::Builder::new()
            .name("file-sensor".into())
            .spawn(move || {
                for res in rx {
                    match res {
                        Ok(ev) => report(ev, &exclude, hash_max, &emit),
                        Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => emit
                            .notice(
                                "sensor_degraded",
                                "file sensor: out of inotify watches; some changes are not seen"
                                    .into(),
                            ),
                        Err(e) => tracing::warn!(error = %e, "file sensor error"),
                    }
                }
            })
            .map_err(notify::Error::io)?;
        Ok(Self {
            _watcher: watcher,
            watched,
        })
    }
}

fn report(ev: notify::Event, exclude: &[PathBuf], hash_max: u64, emit: &Emitter) {
    if ev.need_rescan() {
        // The kernel's inotify queue overflowed: it does not say how much was lost.
        emit.lost(
            0,
            "file sensor: the inotify queue overflowed; an unknown number of file changes \
             were lost"
                .into(),
        );
        return;
    }
    let kind = match ev.kind {
        EventKind::Create(_) => Kind::Create,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Kind::Modify,
        EventKind::Remove(_) => Kind::Delete,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => Kind::Rename,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Kind::Delete,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Kind::Create,
        _ => return,
    };
    let (path, old_path) = match (kind, ev.paths.as_slice()) {
        (Kind::Rename, [from, to, ..]) => (to.clone(), from.display().to_string()),
        (_, [p, ..]) => (p.clone(), String::new()),
        _ => return,
    };
    if exclude.iter().any(|x| path.starts_with(x)) {
        return;
    }
    let mut fe = FileEvent {
        kind: kind as i32,
        path: path.display().to_string(),
        old_path,
        ..Default::default()
    };
    if kind != Kind::Delete {
        hash(&path, hash_max, &mut fe);
    }
    emit.emit(event::Body::File(fe));
}

/// Fills size and SHA-256 (or why not) without following a symlink.
fn hash(path: &Path, max: u64, fe: &mut FileEvent) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        fe.size = meta.len();
    }
    match super::hash::sha256_file(path, max) {
        Ok((_, h)) => fe.sha256 = h,
        Err(why) => fe.hash_skipped = why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inotify_overflow_is_reported_as_lost_events() {
        let (emit, mut rx) = Emitter::channel(4);
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        report(overflow, &[], 1024, &emit);
        let Ok((_, event::Body::Notice(n))) = rx.try_recv() else {
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
