//! Stage one: what must be read from /proc the moment an exec is seen, before the process can
//! exit or exec again. Anything the source already supplied is kept; a pid whose start time no
//! longer matches belongs to another process and is not read at all.

use super::clock::{ns_to_ticks, ticks_to_ns};
use super::{RawExec, stdio};
use crate::sys::procfs::{Proc, tty_name};

pub fn exec(proc: &Proc, e: &mut RawExec, argv_max: usize) {
    let pid = e.pid;
    // The eBPF source supplies all of stat's facts: it needs no /proc reads at all.
    let have_stat =
        e.start_ns.is_some() && e.comm.is_some() && e.tty.is_some() && e.session.is_some();
    if !have_stat {
        if let Some(stat) = proc.stat(pid) {
            if let Some(ns) = e.start_ns
                // /proc counts in ticks: compare at that resolution.
                && ns_to_ticks(ns) != stat.start_ticks
            {
                return;
            }
            e.start_ns.get_or_insert(ticks_to_ns(stat.start_ticks));
            if e.ppid == 0 {
                e.ppid = stat.ppid;
            }
            e.session.get_or_insert(stat.session);
            if e.tty.is_none() {
                e.tty = Some(tty_name(stat.tty_nr).unwrap_or_default());
            }
            e.comm.get_or_insert(stat.comm);
        } else if e.start_ns.is_none() {
            // Gone before anything could be read.
            return;
        }
    }
    if e.exe.is_none() {
        e.exe = exe_path(proc, e);
    }
    if e.cwd.is_none() {
        e.cwd = proc.link(pid, "cwd");
    }
    if e.argv.is_none()
        && let Some((argv, truncated)) = proc.cmdline(pid, argv_max)
    {
        e.argv = Some(argv);
        e.argv_truncated = truncated;
    }
    if e.ids.is_none() {
        e.ids = proc.ids(pid);
    }
    if e.stdio.is_none() {
        e.stdio = stdio::from_proc(proc, pid);
    }
    // Only a socket of the parent's matters (see `peers`); it is read while the child is young.
    if e.parent_stdio.is_none() && e.ppid != 0 {
        e.parent_stdio = stdio::from_proc(proc, e.ppid);
    }
    // A cgroup id (eBPF) is resolved to its path in stage two.
    if e.cgroup.is_none() && e.cgroup_id.is_none() {
        e.cgroup = proc.cgroup(pid);
    }
}

/// The executable's real path. The path exec was given is the truth at exec time (the process
/// may have exec'd again since); it is resolved like /proc/PID/exe resolves it. Relative paths
/// and /dev/fd/N (execveat on a descriptor) need /proc/PID/exe.
fn exe_path(proc: &Proc, e: &RawExec) -> Option<String> {
    if let Some(f) = &e.filename
        && f.starts_with('/')
        && !f.starts_with("/dev/fd/")
        && !f.starts_with("/proc/")
    {
        return Some(
            std::fs::canonicalize(f)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| f.clone()),
        );
    }
    proc.link(e.pid, "exe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_read_whole_and_a_gone_one_not_at_all() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let proc = Proc::default();
        // spawn() returns once exec is past its point of no return, a moment before the
        // kernel has set up the new argument area.
        for _ in 0..100 {
            if proc
                .cmdline(child.id(), 64)
                .is_some_and(|(a, _)| !a.is_empty())
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut e = RawExec {
            pid: child.id(),
            ..Default::default()
        };
        exec(&proc, &mut e, 4096);
        assert_eq!(
            e.argv.as_deref(),
            Some(&["sleep".to_string(), "30".into()][..])
        );
        assert!(e.exe.as_deref().unwrap().ends_with("/sleep"));
        assert_eq!(
            e.cwd.as_deref(),
            Some(std::env::current_dir().unwrap().to_str().unwrap())
        );
        assert_eq!(e.ppid, std::process::id());
        assert!(e.start_ns.is_some() && e.ids.is_some() && e.comm.is_some());

        // The same pid with another start time is another process: nothing is read.
        let mut other = RawExec {
            pid: child.id(),
            start_ns: Some(e.start_ns.unwrap() + 10_000_000_000),
            ..Default::default()
        };
        exec(&proc, &mut other, 4096);
        assert!(other.argv.is_none() && other.exe.is_none() && other.cwd.is_none());

        child.kill().unwrap();
        child.wait().unwrap();
        let mut gone = RawExec {
            pid: child.id(),
            ..Default::default()
        };
        exec(&proc, &mut gone, 4096);
        assert!(gone.argv.is_none() && gone.exe.is_none());
    }
}
