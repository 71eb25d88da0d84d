//! The file sensor: inotify on the configured paths. Reports creation, modification (when a
//! file written to is closed), deletion and renames (old and new path), with the SHA-256 of
//! regular files up to a size bound. Excluded paths and the agent's own state are never
//! reported; running out of inotify watches and a lost inotify queue are reported, not silent.
//!
//! The kernel is asked only for the events reported (see `watch`): the `notify` crate
//! subscribes to every open and write too, and on a busy host (every exec opens files under
//! /etc and /usr/bin) that cost the agent about a quarter of its CPU.

mod watch;

use crate::telemetry::Emitter;
use cordon_proto::{FileEvent, event, file_event::Kind};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use watch::{Change, Watcher};

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
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Directories watched when it started.
    pub watched: usize,
}

/// How often the sensor thread looks at its stop flag while nothing changes.
const IDLE_WAKE: Duration = Duration::from_millis(500);

impl FileSensor {
    /// Starts watching. `own` (the agent's state) is always excluded.
    pub fn start(cfg: &FileSensorConfig, own: &Path, emit: Emitter) -> std::io::Result<Self> {
        let mut exclude: Vec<PathBuf> = cfg.exclude.iter().map(PathBuf::from).collect();
        exclude.push(own.to_path_buf());
        if let Ok(c) = own.canonicalize() {
            exclude.push(c);
        }
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
        for (path, recursive) in targets {
            if path.is_dir()
                && let Err(change) = watcher.watch(&path, recursive)
            {
                report(change, &exclude, cfg.hash_max_bytes, &emit);
            }
        }
        let watched = watcher.watched();
        let stop = Arc::new(AtomicBool::new(false));
        let hash_max = cfg.hash_max_bytes;
        let halt = stop.clone();
        let thread = std::thread::Builder::new()
            .name("file-sensor".into())
            .spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    match watcher.read(IDLE_WAKE) {
                        Ok(changes) => {
                            for change in changes {
                                report(change, &exclude, hash_max, &emit);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "file sensor stopped: reading inotify failed");
                            emit.notice(
                                "sensor_degraded",
                                format!("file sensor stopped: reading inotify failed: {e}"),
                            );
                            return;
                        }
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            watched,
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
        report(Change::Overflow, &[], 1024, &emit);
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
