//! Killing processes without hitting a recycled pid. A target is (pid, start time); a thread
//! id stands for its whole thread group, which is what a kill reaches. The decision layer
//! refuses pid 1, kernel threads, the agent itself (any of its threads too) and protected
//! executables, known by device and inode, never by a name the process chose;
//! the real signaller opens a pidfd, re-checks the start time, and signals through the pidfd,
//! so the signal can only reach the process that was checked. A tree is frozen (SIGSTOP)
//! before it is killed, so it cannot fork away.

use super::protect::{FileId, Protected};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the kernel says about one process (from /proc/PID/stat and /proc/PID/exe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    /// The thread group (process) this id belongs to; equal to `pid` for a process.
    pub tgid: u32,
    pub ppid: u32,
    /// Field 22 of /proc/PID/stat: clock ticks after boot.
    pub start_time: u64,
    pub comm: String,
    pub exe: String,
    /// Device and inode of the executable it runs (`/proc/PID/exe`), if readable.
    pub exe_id: Option<FileId>,
    pub kernel_thread: bool,
    /// Zombie or dead: already gone for every purpose but its parent's wait().
    pub dead: bool,
}

pub trait ProcessTable: Send + Sync {
    fn get(&self, pid: u32) -> Option<ProcInfo>;
    fn all(&self) -> Vec<ProcInfo>;
}

/// Sends a signal to exactly the process described, or fails.
pub trait Signaller: Send + Sync {
    fn signal(&self, target: &ProcInfo, sig: Sig) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    Stop,
    Kill,
}

pub struct Policy {
    pub self_pid: u32,
    /// Executables whose processes are never killed.
    pub protected: Protected,
}

/// Why a kill was refused.
pub fn refusal(p: &ProcInfo, policy: &Policy) -> Option<String> {
    if p.pid <= 1 {
        return Some(format!("refusing to kill pid {}: init", p.pid));
    }
    if p.kernel_thread || p.pid == 2 || p.ppid == 2 {
        return Some(format!(
            "refusing to kill pid {} ({}): a kernel thread",
            p.pid, p.comm
        ));
    }
    if p.pid == policy.self_pid || p.tgid == policy.self_pid {
        return Some(format!(
            "refusing to kill pid {}: the Cordon agent itself",
            p.pid
        ));
    }
    let protected = p.exe_id.and_then(|id| policy.protected.matching(id));
    protected.map(|exe| {
        format!(
            "refusing to kill pid {} ({}): it runs {}, a protected executable",
            p.pid,
            p.comm,
            exe.display()
        )
    })
}

/// The process a kill of `given` reaches: itself, or for a thread id its thread group.
fn thread_group(
    table: &dyn ProcessTable,
    policy: &Policy,
    given: ProcInfo,
) -> Result<ProcInfo, String> {
    if given.tgid == given.pid || given.tgid == 0 {
        return Ok(given);
    }
    if given.tgid == policy.self_pid {
        return Err(format!(
            "refusing to kill pid {}: a thread of the Cordon agent itself (pid {})",
            given.pid, given.tgid
        ));
    }
    tracing::info!(
        tid = given.pid,
        pid = given.tgid,
        "a thread id: the kill takes its process"
    );
    table.get(given.tgid).ok_or_else(|| {
        format!(
            "no process {} (the thread group of {})",
            given.tgid, given.pid
        )
    })
}

/// Chooses what to kill: the target (checked against its start time) and, for a tree, its
/// descendants. Any refused process in the set refuses the whole kill.
pub fn plan(
    table: &dyn ProcessTable,
    policy: &Policy,
    pid: u32,
    start_time: u64,
    tree: bool,
) -> Result<Vec<ProcInfo>, String> {
    let given = table.get(pid).ok_or_else(|| format!("no process {pid}"))?;
    if start_time != 0 && given.start_time != start_time {
        return Err(format!(
            "pid {pid} now belongs to another process (start time {} instead of {start_time}); not killing it",
            given.start_time
        ));
    }
    let target = thread_group(table, policy, given)?;
    if let Some(why) = refusal(&target, policy) {
        return Err(why);
    }
    let root = target.pid;
    let mut targets = vec![target];
    if tree {
        targets.extend(descendants(&table.all(), root));
    }
    if let Some(why) = targets.iter().find_map(|p| refusal(p, policy)) {
        return Err(format!(
            "the process tree holds a process that may not be killed: {why}"
        ));
    }
    Ok(targets)
}

fn descendants(all: &[ProcInfo], root: u32) -> Vec<ProcInfo> {
    let mut children: BTreeMap<u32, Vec<&ProcInfo>> = BTreeMap::new();
    for p in all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    let mut seen = BTreeSet::from([root]);
    while let Some(pid) = stack.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if seen.insert(child.pid) {
                out.push((*child).clone());
                stack.push(child.pid);
            }
        }
    }
    out
}

/// Kills `targets` (from [`plan`]); with a tree, freezes it first and picks up children born
/// meanwhile. Returns the processes killed, once they are gone.
pub fn execute(
    table: &dyn ProcessTable,
    signaller: &dyn Signaller,
    policy: &Policy,
    mut targets: Vec<ProcInfo>,
    tree: bool,
) -> Result<Vec<ProcInfo>, String> {
    if tree {
        let mut stopped = BTreeSet::new();
        // Bounded: a fork bomb cannot keep this loop going.
        for _ in 0..5 {
            for t in targets.iter().filter(|t| !stopped.contains(&t.pid)) {
                // A process that died meanwhile is fine; it is checked below.
                let _ = signaller.signal(t, Sig::Stop);
            }
            stopped.extend(targets.iter().map(|t| t.pid));
            let all = table.all();
            let known: BTreeSet<u32> = targets.iter().map(|t| t.pid).collect();
            let born: Vec<ProcInfo> = targets
                .iter()
                .flat_map(|t| descendants(&all, t.pid))
                .filter(|p| !known.contains(&p.pid) && refusal(p, policy).is_none())
                .collect();
            if born.is_empty() {
                break;
            }
            targets.extend(born);
        }
    }
    let mut killed = Vec::new();
    for t in &targets {
        match signaller.signal(t, Sig::Kill) {
            Ok(()) => killed.push(t.clone()),
            Err(e) if t.pid == targets[0].pid => return Err(e),
            Err(e) => tracing::warn!(pid = t.pid, error = %e, "could not kill a descendant"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while killed.iter().any(|k| alive(table, k)) {
        if Instant::now() > deadline {
            return Err("processes were signalled but still run after 5 seconds".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(killed)
}

fn alive(table: &dyn ProcessTable, p: &ProcInfo) -> bool {
    table
        .get(p.pid)
        .is_some_and(|now| now.start_time == p.start_time && !now.dead)
}

/// The real process table: /proc.
pub struct ProcFs {
    pub root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/proc"),
        }
    }
}

/// Reads a process from a /proc/PID/stat line.
pub fn parse_stat(pid: u32, stat: &str) -> Option<ProcInfo> {
    let s = crate::sys::procfs::parse_stat(stat)?;
    const PF_KTHREAD: u64 = 0x0020_0000;
    Some(ProcInfo {
        pid,
        tgid: pid,
        ppid: s.ppid,
        start_time: s.start_ticks,
        kernel_thread: s.flags & PF_KTHREAD != 0,
        dead: matches!(s.state.as_str(), "Z" | "X" | "x"),
        comm: s.comm,
        exe: String::new(),
        exe_id: None,
    })
}

/// The `Tgid:` line of /proc/PID/status.
fn parse_tgid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

impl ProcessTable for ProcFs {
    fn get(&self, pid: u32) -> Option<ProcInfo> {
        let dir = self.root.join(pid.to_string());
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let mut info = parse_stat(pid, &stat)?;
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        info.tgid = parse_tgid(&status)?;
        info.exe = std::fs::read_link(dir.join("exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        info.exe_id = FileId::of_path(&dir.join("exe"));
        Some(info)
    }

    fn all(&self) -> Vec<ProcInfo> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
            .filter_map(|pid| self.get(pid))
            .collect()
    }
}

/// Signals through a pidfd after re-checking the start time.
pub struct Pidfd {
    pub table: ProcFs,
}

impl Signaller for Pidfd {
    fn signal(&self, target: &ProcInfo, sig: Sig) -> Result<(), String> {
        use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
        let pid =
            Pid::from_raw(target.pid as i32).ok_or_else(|| format!("bad pid {}", target.pid))?;
        let fd =
            pidfd_open(pid, PidfdFlags::empty()).map_err(|e| format!("pid {}: {e}", target.pid))?;
        // The pidfd now pins whatever process holds the pid; make sure it is the one we mean.
        match self.table.get(target.pid) {
            Some(now) if now.start_time == target.start_time => {}
            _ => {
                return Err(format!(
                    "pid {} was reused before it could be signalled; not signalling",
                    target.pid
                ));
            }
        }
        let signal = match sig {
            Sig::Stop => Signal::STOP,
            Sig::Kill => Signal::KILL,
        };
        pidfd_send_signal(&fd, signal).map_err(|e| format!("signalling pid {}: {e}", target.pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::fakes::FakeProcesses as Fake;

    /// A protected executable, and the policy protecting it.
    struct Rig {
        _dir: tempfile::TempDir,
        sshd: FileId,
        lookalike: FileId,
        policy: Policy,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let sshd = dir.path().join("sshd");
        std::fs::write(&sshd, b"the real one").unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let lookalike = dir.path().join("tmp/sshd");
        std::fs::copy(&sshd, &lookalike).unwrap();
        Rig {
            sshd: FileId::of_path(&sshd).unwrap(),
            lookalike: FileId::of_path(&lookalike).unwrap(),
            policy: Policy {
                self_pid: 500,
                protected: Protected::new(vec![sshd]),
            },
            _dir: dir,
        }
    }

    fn policy() -> Policy {
        rig().policy
    }

    fn table() -> Fake {
        Fake::with(&[
            (1, 0, 1, "systemd", false),
            (2, 0, 1, "kthreadd", true),
            (40, 2, 5, "kworker/0:1", true),
            (100, 1, 1000, "bash", false),
            (101, 100, 1001, "sleep", false),
            (102, 101, 1002, "sleep", false),
            (200, 1, 2000, "sshd", false),
            (500, 1, 5000, "cordon-agent", false),
        ])
    }

    #[test]
    fn init_kernel_threads_the_agent_and_protected_executables_are_refused() {
        let r = rig();
        let t = table();
        t.set_exe(200, r.sshd);
        t.add_thread(501, 500, 5003);
        for (pid, why) in [
            (1, "init"),
            (2, "kernel thread"),
            (40, "kernel thread"),
            (500, "agent itself"),
            (501, "a thread of the Cordon agent itself (pid 500)"),
            (200, "a protected executable"),
        ] {
            let err = plan(&t, &r.policy, pid, 0, false).unwrap_err();
            assert!(err.contains(why), "pid {pid}: {err}");
        }
        assert!(t.sent.lock().unwrap().is_empty());
    }

    #[test]
    fn a_name_is_no_protection_only_the_executable_is() {
        let r = rig();
        // Named like protected programs, running a copy: killable.
        let t = Fake::with(&[
            (300, 1, 3000, "sshd", false),
            (301, 1, 3001, "cordon-agent", false),
        ]);
        t.set_exe(300, r.lookalike);
        for pid in [300, 301] {
            let targets = plan(&t, &r.policy, pid, 0, false).unwrap();
            execute(&t, &t, &r.policy, targets, false).unwrap();
            assert!(t.get(pid).is_none(), "pid {pid} survived");
        }
    }

    #[test]
    fn a_thread_id_stands_for_its_process() {
        let t = table();
        t.add_thread(103, 101, 1005);
        let targets = plan(&t, &policy(), 103, 1005, false).unwrap();
        assert_eq!(targets.iter().map(|p| p.pid).collect::<Vec<_>>(), [101]);
        // A tree from a thread is the tree of its process.
        let targets = plan(&t, &policy(), 103, 0, true).unwrap();
        let pids: BTreeSet<u32> = targets.iter().map(|p| p.pid).collect();
        assert_eq!(pids, BTreeSet::from([101, 102]));
    }

    #[test]
    fn a_recycled_pid_is_never_signalled() {
        let t = table();
        let err = plan(&t, &policy(), 101, 999, false).unwrap_err();
        assert!(err.contains("another process"), "{err}");
        assert!(t.sent.lock().unwrap().is_empty());
    }

    #[test]
    fn a_tree_is_frozen_then_killed_whole() {
        let t = table();
        let policy = policy();
        let targets = plan(&t, &policy, 100, 1000, true).unwrap();
        let killed = execute(&t, &t, &policy, targets, true).unwrap();
        let pids: BTreeSet<u32> = killed.iter().map(|k| k.pid).collect();
        assert_eq!(pids, BTreeSet::from([100, 101, 102]));
        let sent = t.sent.lock().unwrap();
        let first_kill = sent.iter().position(|(_, s)| *s == Sig::Kill).unwrap();
        assert!(
            sent[..first_kill].iter().all(|(_, s)| *s == Sig::Stop),
            "{sent:?}"
        );
        assert!(t.get(200).is_some() && t.get(1).is_some());
    }

    #[test]
    fn the_real_table_knows_a_thread_by_its_group_and_a_process_by_its_executable() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            // /proc/thread-self -> PID/task/TID
            let link = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = link.file_name().unwrap().to_str().unwrap().parse::<u32>();
            tx.send(tid.unwrap()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let table = ProcFs::default();
        let thread = table.get(tid).unwrap();
        done_tx.send(()).unwrap();
        worker.join().unwrap();
        assert_eq!((thread.pid, thread.tgid), (tid, std::process::id()));
        let me = table.get(std::process::id()).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.exe_id, FileId::of_path(&exe));
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let p = parse_stat(4242, line).unwrap();
        assert_eq!(
            (p.comm.as_str(), p.ppid, p.start_time, p.kernel_thread),
            ("a b) c)", 1, 987654, false)
        );
    }
}
