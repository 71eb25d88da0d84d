//! Prevention in the kernel: the exec of a file whose SHA-256 is on the block list is refused
//! with EPERM before it runs, and (tamper protection) opens for write of the agent's binary
//! and state by other processes are refused. The BPF LSM does not load on the kernels this
//! was built on (trampoline programs are refused at load), so both use fanotify permission
//! events (see `group`), answered by one dedicated thread (see `verdict`). Signals, ptrace
//! and detaching the agent's BPF programs cannot be refused without the BPF LSM, and the
//! mode string says so.

mod group;
mod hasher;
mod report;
pub mod tamper;
#[cfg(test)]
mod tests;
mod verdict;
pub mod verdicts;

use crate::sensors::file::Names;
use crate::sensors::process::ProcessTable;
use crate::swap::Swap;
use crate::telemetry::Emitter;
use serde::Deserialize;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use verdict::Shared;
use verdicts::{Blocklist, HashCache};

/// How exec prevention runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Fanotify permission events where the kernel has them; else reported unavailable.
    Auto,
    Fanotify,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreventionConfig {
    pub mode: Mode,
    /// Largest file hashed while its exec waits; a larger one runs unchecked, reported.
    pub hash_max_bytes: u64,
    /// File versions whose hash is remembered.
    pub cache_entries: usize,
}

impl PreventionConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.hash_max_bytes == 0 || self.cache_entries == 0 {
            return Err("prevention.hash_max_bytes and cache_entries must be positive".into());
        }
        Ok(())
    }
}

impl Default for PreventionConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            hash_max_bytes: 32 * 1024 * 1024,
            cache_entries: 65_536,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TamperConfig {
    /// Refuse opens for write of the agent's binary and state directory by other processes.
    pub protect: bool,
}

impl Default for TamperConfig {
    fn default() -> Self {
        Self { protect: true }
    }
}

/// Open files the agent may hold at once (soft limit, up to the hard one). The kernel opens a
/// descriptor into the agent for every permission event it reads; when it cannot (the agent
/// at its limit), it answers the event itself, with a denial: every exec on the host would
/// fail while the agent sat at the usual soft limit of 1024.
const OPEN_FILES: u64 = 65_536;

fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let want = lim.maximum.map_or(OPEN_FILES, |m| m.min(OPEN_FILES));
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(want);
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(error = %e, "could not raise the open files limit");
        }
    }
}

/// `dir` and the directories below it (at most 256), each protected for its direct entries:
/// fanotify inode marks do not reach further down.
pub fn directories(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() && out.len() < 256 {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            out.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    out.truncate(256);
    out
}

/// What tamper protection can and cannot do here, for the mode string.
const TAMPER: &str = "tamper: writes to the agent's binary and state denied; signals, ptrace, \
                      BPF detach: not enforceable (BPF LSM unavailable)";

/// The running prevention (or why it does not run).
pub struct Prevention {
    shared: Option<Arc<Shared>>,
    mode: String,
}

impl Prevention {
    /// Nothing enforced.
    pub fn off(why: &str) -> Self {
        Self {
            shared: None,
            mode: why.into(),
        }
    }

    /// Starts the permission thread; `protect` lists the agent's binary and state
    /// directories (tamper protection, if on).
    pub fn start(
        cfg: &PreventionConfig,
        tamper: &TamperConfig,
        protect: &[PathBuf],
        emit: Emitter,
        table: Option<Arc<ProcessTable>>,
    ) -> Self {
        let exec = cfg.mode != Mode::Off;
        if !exec && !tamper.protect {
            return Self::off("off");
        }
        match Self::spawn(cfg, exec, tamper.protect.then_some(protect), emit, table) {
            Ok(p) => p,
            Err(why) => Self::off(&format!("unavailable: {why}")),
        }
    }

    fn spawn(
        cfg: &PreventionConfig,
        exec: bool,
        protect: Option<&[PathBuf]>,
        emit: Emitter,
        table: Option<Arc<ProcessTable>>,
    ) -> Result<Self, String> {
        raise_open_files();
        let group = group::Group::open().map_err(|e| e.to_string())?;
        let refused: Vec<String> = protect
            .unwrap_or_default()
            .iter()
            .filter_map(|p| group.protect(p).err().map(|e| e.to_string()))
            .collect();
        let wake: OwnedFd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| format!("eventfd: {e}"))?;
        let cache = Arc::new(Mutex::new(HashCache::new(cfg.cache_entries)));
        let shared = Arc::new(Shared {
            blocklist: Swap::new(Blocklist::default()),
            cache: cache.clone(),
            stop: AtomicBool::new(false),
            wake,
            applied: Mutex::new(0),
            applied_cv: Condvar::new(),
            generation: AtomicU64::new(0),
            exec,
            hash_max: cfg.hash_max_bytes,
            denied: AtomicU64::new(0),
        });
        let covered = group.covered();
        let thread = verdict::Thread {
            group,
            protected: protect.unwrap_or_default().to_vec(),
            shared: shared.clone(),
            emit: report::Reporter::start(emit).map_err(|e| format!("report thread: {e}"))?,
            names: Names::new(table),
            worker: hasher::Worker::start(cache, cfg.hash_max_bytes)
                .map_err(|e| format!("hash thread: {e}"))?,
            own_pid: std::process::id(),
        };
        std::thread::Builder::new()
            .name("prevent".into())
            .spawn(move || thread.run())
            .map_err(|e| format!("permission thread: {e}"))?;
        let mut mode = Vec::new();
        if exec {
            mode.push("fanotify (exec deny)".to_string());
            tracing::info!(filesystems = ?covered, "exec prevention ready");
        }
        match protect {
            Some(_) if refused.is_empty() => mode.push(TAMPER.to_string()),
            Some(_) => mode.push(format!("tamper: unavailable: {}", refused.join("; "))),
            None => {}
        }
        Ok(Self {
            shared: Some(shared),
            mode: mode.join("; "),
        })
    }

    /// Puts a new block list in force (empty: nothing is denied, and execs are not even
    /// checked). Returns once the kernel marks match it (bounded wait).
    pub fn set_blocklist(&self, digests: Vec<[u8; 32]>) {
        let Some(s) = &self.shared else { return };
        s.blocklist.store(Blocklist::new(digests));
        let generation = s.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let _ = rustix::io::write(&s.wake, &1u64.to_ne_bytes());
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut applied = s.applied.lock().unwrap_or_else(|p| p.into_inner());
        while *applied < generation {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("the permission thread did not take the block list in time");
                return;
            }
            applied = match s.applied_cv.wait_timeout(applied, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// What runs: "fanotify (exec deny)", "off", "unavailable: <why>", with what tamper
    /// protection can do.
    pub fn mode(&self) -> String {
        self.mode.clone()
    }

    /// Opens refused since start.
    pub fn denied(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |s| s.denied.load(Ordering::Relaxed))
    }
}

impl Drop for Prevention {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            // The thread ends and closes the group; the kernel allows what was pending.
            s.stop.store(true, Ordering::Relaxed);
            let _ = rustix::io::write(&s.wake, &1u64.to_ne_bytes());
        }
    }
}
