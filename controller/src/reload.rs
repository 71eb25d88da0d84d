//! Hot reload: watches `[detection] rules_dir` and `[playbooks] dir` (each unless its
//! `reload = false`) with `notify` and hands each file that changed to the core
//! (`core/reload.rs`) once the directory has been quiet for [`DEBOUNCE`] (at most
//! [`MAX_DELAY`] after the first change). Started by `api::serve`, stopped when the
//! [`Watching`] it returns is dropped.

use crate::core::Controller;
use ::notify::event::{AccessKind, AccessMode};
use ::notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a directory must be quiet before its changes are applied.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// The longest a change waits while others keep coming.
pub const MAX_DELAY: Duration = Duration::from_millis(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rules,
    Playbooks,
}

/// The running watch; dropping it stops it.
pub struct Watching {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the directories could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("watching {dir} for changes: {source}")]
pub struct WatchError {
    dir: String,
    #[source]
    source: ::notify::Error,
}

/// Starts watching the configured directories; `None` when there is nothing to watch.
pub fn start(ctl: Arc<Controller>) -> Result<Option<Watching>, WatchError> {
    let (det, pb) = (&ctl.config.detection, &ctl.config.playbooks);
    let dirs: Vec<(PathBuf, Kind)> = [
        (det.reload, &det.rules_dir, Kind::Rules),
        (pb.reload, &pb.dir, Kind::Playbooks),
    ]
    .into_iter()
    .filter(|(on, dir, _)| *on && !dir.is_empty())
    .map(|(_, dir, kind)| (PathBuf::from(dir), kind))
    .collect();
    if dirs.is_empty() {
        return Ok(None);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |event: ::notify::Result<::notify::Event>| {
        let _ = tx.send(event);
    };
    let failed = |dir: &Path, source| WatchError {
        dir: dir.display().to_string(),
        source,
    };
    let mut watcher = ::notify::recommended_watcher(handler).map_err(|e| failed(&dirs[0].0, e))?;
    for (dir, kind) in &dirs {
        let mode = match kind {
            Kind::Rules => RecursiveMode::Recursive,
            Kind::Playbooks => RecursiveMode::NonRecursive,
        };
        watcher.watch(dir, mode).map_err(|e| failed(dir, e))?;
        tracing::info!(dir = %dir.display(), ?kind, "watching for changes");
    }
    let task = tokio::spawn(run(ctl, dirs, rx));
    Ok(Some(Watching {
        _watcher: watcher,
        task,
    }))
}

/// Gathers changed paths and applies them once the directories are quiet.
async fn run(
    ctl: Arc<Controller>,
    dirs: Vec<(PathBuf, Kind)>,
    mut rx: mpsc::UnboundedReceiver<::notify::Result<::notify::Event>>,
) {
    for path in startup_changes(&ctl, &dirs).await {
        apply(&ctl, &dirs, &path, false).await;
    }
    let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
    let mut first = Instant::now();
    loop {
        let next = if pending.is_empty() {
            rx.recv().await
        } else {
            let wait = DEBOUNCE.min(MAX_DELAY.saturating_sub(first.elapsed()));
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    for path in std::mem::take(&mut pending) {
                        apply(&ctl, &dirs, &path, true).await;
                    }
                    continue;
                }
            }
        };
        match next {
            None => return,
            Some(Err(e)) => tracing::warn!(error = %e, "watching rule and playbook directories"),
            Some(Ok(event)) if changes(&event.kind) => {
                tracing::debug!(kind = ?event.kind, paths = ?event.paths, "directory changed");
                if pending.is_empty() {
                    first = Instant::now();
                }
                pending.extend(event.paths);
            }
            Some(Ok(_)) => {}
        }
    }
}

/// What may have changed between loading the directories and watching them: every file in
/// them (unchanged ones are skipped by the core) and every stored origin under them that is
/// gone.
async fn startup_changes(ctl: &Controller, dirs: &[(PathBuf, Kind)]) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    for (dir, kind) in dirs {
        let origins: Vec<String> = match kind {
            Kind::Rules => {
                paths.extend(cordon_detect::yaml_files(dir).0);
                let rules = ctl.rules().await.unwrap_or_default();
                rules.into_iter().map(|r| r.origin).collect()
            }
            Kind::Playbooks => {
                let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
                paths.extend(entries.map(|e| e.path()).filter(|p| is_yaml(p)));
                let playbooks = ctl.list_playbooks().await.unwrap_or_default();
                playbooks.into_iter().map(|p| p.origin).collect()
            }
        };
        let gone = origins
            .into_iter()
            .map(PathBuf::from)
            .filter(|p| p.starts_with(dir) && !p.exists());
        paths.extend(gone);
    }
    paths
}

/// Whether an event may have changed what a file holds (reads and opens do not).
fn changes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "yml" || x == "yaml")
}

/// Applies what is now at `path`: a file, a directory of rules, or nothing (gone).
/// `written`: it changed while watched (not merely found at start).
async fn apply(ctl: &Controller, dirs: &[(PathBuf, Kind)], path: &Path, written: bool) {
    let Some(kind) = dirs
        .iter()
        .filter(|(dir, _)| path.starts_with(dir) && path != dir)
        .map(|(_, kind)| *kind)
        .next()
    else {
        return;
    };
    let origin = path.display().to_string();
    if !path.exists() {
        let result = match kind {
            Kind::Rules => ctl.rule_file_removed(&origin).await,
            Kind::Playbooks => ctl.playbook_file_removed(&origin).await,
        };
        if let Err(e) = result {
            tracing::error!(file = %origin, "applying a removed file: {}", e.public_message());
        }
        return;
    }
    let files = match kind {
        Kind::Rules if path.is_dir() => cordon_detect::yaml_files(path).0,
        _ if path.is_file() && is_yaml(path) => vec![path.to_path_buf()],
        _ => return,
    };
    for file in files {
        let origin = file.display().to_string();
        let yaml = match std::fs::read_to_string(&file) {
            Ok(yaml) => yaml,
            Err(e) => {
                tracing::warn!(file = %origin, error = %e, "changed file not read");
                continue;
            }
        };
        // Refusals are logged and audited by the core.
        let _ = match kind {
            Kind::Rules => ctl.reload_rule_file(&origin, &yaml, written).await,
            Kind::Playbooks => ctl.reload_playbook_file(&origin, &yaml).await,
        };
    }
}
