//! The permission thread: reads the prevention group's events and answers every permission
//! event, whatever happens while deciding. A panic or an error while deciding allows the
//! open and is reported, because an unanswered event would hang every exec on the host.
//! Denials are named (path, digest, the process that tried) before the answer, while the
//! process is still blocked in its call, and handed to the reporting thread after it (see
//! `report`: emitting runs the edge policies, which this thread must never wait on).

use super::group::{Group, is_permission};
use super::hasher::{self, Worker};
use super::report::Reporter;
use super::tamper::{self, Access};
use super::verdicts::{Blocklist, HashCache};
use crate::sensors::file::Names;
use crate::swap::Swap;
use cordon_proto::{PreventionEvent, event, prevention_event::Kind};
use nix::sys::fanotify::{FanotifyEvent, MaskFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What the permission thread and the `Prevention` handle share.
pub struct Shared {
    pub blocklist: Swap<Blocklist>,
    pub cache: Arc<Mutex<HashCache>>,
    pub stop: AtomicBool,
    /// Written to wake the thread when the block list changes.
    pub wake: OwnedFd,
    /// The block list generation whose marks are in place.
    pub applied: Mutex<u64>,
    pub applied_cv: Condvar,
    pub generation: AtomicU64,
    /// Exec checks are asked for (`[prevention]` not off).
    pub exec: bool,
    pub hash_max: u64,
    pub denied: AtomicU64,
}

/// One refused attempt, as reported.
struct Denial {
    kind: Kind,
    attempt: &'static str,
    sha256: String,
    detail: String,
}

pub struct Thread {
    pub group: Group,
    /// What tamper protection marks (put back after inode marks are flushed).
    pub protected: Vec<std::path::PathBuf>,
    pub shared: Arc<Shared>,
    pub emit: Reporter,
    pub names: Names,
    pub worker: Worker,
    pub own_pid: u32,
}

impl Thread {
    pub fn run(mut self) {
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.apply_blocklist();
            self.group
                .wait(self.shared.wake.as_fd(), Duration::from_millis(250));
            let _ = rustix::io::read(&self.shared.wake, &mut [0u8; 8]);
            // Bounded, so a change of block list is seen on a busy host.
            for _ in 0..64 {
                let events = match self.group.read() {
                    Ok(v) if v.is_empty() => break,
                    Ok(v) => v,
                    Err(e) => {
                        self.emit.notice(
                            "prevention_error",
                            format!("reading permission events failed: {e}"),
                        );
                        std::thread::sleep(Duration::from_millis(100));
                        break;
                    }
                };
                for ev in events {
                    self.handle(&ev);
                }
            }
        }
    }

    /// Puts the exec marks in line with the block list, and says so to `set_blocklist`.
    fn apply_blocklist(&mut self) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        let mut applied = self
            .shared
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *applied == generation {
            return;
        }
        let on = self.shared.exec && !self.shared.blocklist.load().is_empty();
        if let Err(e) = self.group.set_exec_marks(on) {
            self.emit
                .notice("prevention_error", format!("exec marks: {e}"));
        }
        if let Err(e) = self.group.forget_allowed() {
            self.emit.notice("prevention_error", e);
        }
        for p in &self.protected {
            if let Err(e) = self.group.protect(p) {
                self.emit.notice("prevention_error", e.to_string());
            }
        }
        *applied = generation;
        self.shared.applied_cv.notify_all();
    }

    fn handle(&self, ev: &FanotifyEvent) {
        let Some(fd) = ev.fd() else {
            // Overflow: only notification events are ever dropped; permission events wait.
            self.emit.notice(
                "prevention_overflow",
                "written files were not queued for hashing; they are hashed at first exec".into(),
            );
            return;
        };
        let mask = ev.mask();
        let tid = u32::try_from(ev.pid()).unwrap_or_default();
        if !is_permission(mask) {
            if mask.contains(MaskFlags::FAN_CLOSE_WRITE) && self.shared.exec && !self.is_own(tid) {
                self.worker.written(fd);
            }
            return;
        }
        // Named inside the guard too: nothing here may stop the answer below.
        let decided = catch_unwind(AssertUnwindSafe(|| {
            self.decide(mask, tid, fd)
                .map(|d| self.describe(d, tid, fd))
        }));
        let event = match decided {
            Ok(e) => e,
            Err(_) => {
                self.emit.notice(
                    "prevention_error",
                    "deciding on an open panicked; it was allowed".into(),
                );
                None
            }
        };
        if let Err(e) = self.group.answer(fd, event.is_none()) {
            self.emit.notice(
                "prevention_error",
                format!("answering a permission event failed: {e}"),
            );
        }
        if let Some(pe) = event {
            self.shared.denied.fetch_add(1, Ordering::Relaxed);
            self.emit.emit(event::Body::Prevention(pe));
        }
    }

    /// Why the open is refused, if it is.
    fn decide(&self, mask: MaskFlags, tid: u32, fd: BorrowedFd<'_>) -> Option<Denial> {
        if mask.contains(MaskFlags::FAN_OPEN_EXEC_PERM)
            && let Some(d) = self.exec_denial(fd)
        {
            return Some(d);
        }
        if mask.contains(MaskFlags::FAN_OPEN_PERM)
            && !self.is_own(tid)
            && tamper::access_bounded(tid) == Access::Write
        {
            return Some(Denial {
                kind: Kind::TamperDenied,
                attempt: "open_write",
                sha256: String::new(),
                detail: "an open for write of the agent's binary or state was refused".into(),
            });
        }
        None
    }

    fn exec_denial(&self, fd: BorrowedFd<'_>) -> Option<Denial> {
        let list = self.shared.blocklist.load();
        if list.is_empty() {
            return None;
        }
        let (id, _) = hasher::file_id(fd)?;
        let (digest, fresh) =
            hasher::cached_digest(&self.shared.cache, id, fd, self.shared.hash_max);
        if !matches!(&digest, Ok(d) if list.blocks(d)) {
            self.group.allow_until_modified(fd);
        }
        match digest {
            Ok(d) if list.blocks(&d) => Some(Denial {
                kind: Kind::ExecDenied,
                attempt: "exec",
                sha256: hex::encode(d),
                detail: "its SHA-256 is on a block list".into(),
            }),
            Ok(_) => None,
            Err(why) => {
                // Once per file version: the cache remembers it.
                if fresh {
                    self.emit.notice(
                        "prevention_unchecked",
                        format!("{} was allowed to run unchecked: {why}", path_of(fd)),
                    );
                }
                None
            }
        }
    }

    /// The event for a denial: the file's path and the process that tried, read while it
    /// still waits for the answer.
    fn describe(&self, d: Denial, tid: u32, fd: BorrowedFd<'_>) -> PreventionEvent {
        PreventionEvent {
            kind: d.kind as i32,
            path: path_of(fd),
            sha256: d.sha256,
            process: Some(self.names.process(tgid(tid))),
            attempt: d.attempt.into(),
            mode: "fanotify".into(),
            detail: d.detail,
        }
    }

    /// Whether thread `tid` is one of the agent's own.
    fn is_own(&self, tid: u32) -> bool {
        tid == self.own_pid || std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
    }
}

/// The path of the file behind an event's descriptor.
fn path_of(fd: BorrowedFd<'_>) -> String {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The process (thread group) thread `tid` belongs to.
fn tgid(tid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(tid)
}
