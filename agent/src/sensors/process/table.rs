//! The processes alive, and those that exited in the last seconds, shared between threads:
//! the process sensor's second stage keeps it (seeded from /proc, then kept by exec, fork and
//! exit records); the network and file sensors read it to name the process behind an event
//! (start time, exe, argv), falling back to /proc for a process it has not seen. A process
//! that lived a few milliseconds is still named here after it is gone from /proc.

use super::clock::{ns_to_ticks, ticks_to_ns};
use crate::sys::procfs::Proc;
use cordon_proto::secrets::redact_argv;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most processes tracked; past it the table is rebuilt from /proc.
const TABLE_MAX: usize = 1 << 17;

/// What is known of one process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    /// Start time, nanoseconds since boot (tick resolution when read from /proc).
    pub start_ns: Option<u64>,
    pub exe: String,
    pub argv: Vec<String>,
}

/// The shared table, keyed by pid.
#[derive(Debug)]
pub struct ProcessTable {
    map: RwLock<HashMap<u32, Known>>,
    proc: Proc,
    argv_max: usize,
    /// CLOCK_BOOTTIME ns up to which every exec, fork and exit is reflected (0: unknown).
    marked: AtomicU64,
}

impl ProcessTable {
    /// An empty table; /proc reads keep at most `argv_max` bytes of a command line.
    pub fn new(proc: Proc, argv_max: usize) -> Self {
        Self {
            map: RwLock::default(),
            proc,
            argv_max,
            marked: AtomicU64::new(0),
        }
    }

    /// Says that every exec, fork and exit the kernel made before `boot_ns` is in the table.
    pub fn mark(&self, boot_ns: u64) {
        self.marked.fetch_max(boot_ns, Ordering::Release);
    }

    /// Up to when the table is known to be current: another sensor's event from before this
    /// instant finds its process's exec here (None: the process sensor gives no such marks,
    /// as only the eBPF source can).
    pub fn current_to(&self) -> Option<u64> {
        match self.marked.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u32, Known>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u32, Known>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for `pid`, whatever its start time.
    pub fn get(&self, pid: u32) -> Option<Known> {
        self.read().get(&pid).cloned()
    }

    /// The process `pid` that started at `start_ns` (None: any start): from the table, or
    /// else from /proc while it is still there (and then remembered).
    pub fn lookup(&self, pid: u32, start_ns: Option<u64>) -> Option<Known> {
        if pid == 0 {
            return None;
        }
        if let Some(k) = self.get(pid)
            && same_start(k.start_ns, start_ns)
        {
            return Some(k);
        }
        let k = self.read_proc(pid, start_ns)?;
        self.insert(pid, k.clone());
        Some(k)
    }

    /// Reads `pid` from /proc, if it is the process that started at `start_ns`.
    pub fn read_proc(&self, pid: u32, start_ns: Option<u64>) -> Option<Known> {
        let stat = self.proc.stat(pid)?;
        let start = ticks_to_ns(stat.start_ticks);
        if !same_start(Some(start), start_ns) {
            return None;
        }
        Some(Known {
            start_ns: Some(start),
            exe: self.proc.link(pid, "exe").unwrap_or_default(),
            argv: self
                .proc
                .cmdline(pid, self.argv_max)
                .map(|(a, _)| redact_argv(a))
                .unwrap_or_default(),
        })
    }

    /// Replaces the whole table with the processes alive now.
    pub fn seed(&self) {
        let fresh: HashMap<u32, Known> = self
            .proc
            .pids()
            .into_iter()
            .filter_map(|pid| Some((pid, self.read_proc(pid, None)?)))
            .collect();
        *self.write() = fresh;
    }

    pub fn insert(&self, pid: u32, k: Known) {
        if self.len() >= TABLE_MAX {
            self.seed();
        }
        self.write().insert(pid, k);
    }

    /// Forgets `pid` if the entry is the process that started at `start` (or, with no start
    /// time known on either side, once the pid is gone from /proc).
    pub fn forget(&self, pid: u32, start: Option<u64>) {
        let gone = match (self.get(pid).map(|k| k.start_ns), start) {
            (None, _) => false,
            (Some(Some(known)), Some(start)) => ns_to_ticks(known) == ns_to_ticks(start),
            _ => self.proc.stat(pid).is_none(),
        };
        if gone {
            self.write().remove(&pid);
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Two start times name the same process (either unknown counts as the same). /proc's
/// resolution is one tick, so times are compared in ticks.
pub fn same_start(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => ns_to_ticks(a) == ns_to_ticks(b),
        _ => true,
    }
}
