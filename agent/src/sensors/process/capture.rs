//! Stage one: what must be read from /proc the moment an exec is seen, before the process can
//! exit or exec again. Anything the source already supplied is kept; a pid whose start time no
//! longer matches belongs to another process and is not read at all.

use super::RawExec;
use super::clock::ticks_to_ns;
use crate::sys::procfs::{Proc, tty_name};

pub fn exec(proc: &Proc, e: &mut RawExec, argv_max: usize) {
    let pid = e.pid;
    if let Some(stat) = proc.stat(pid) {
        let start = ticks_to_ns(stat.start_ticks);
        let same = match e.start_ns {
            // /proc counts in ticks: compare at that resolution.
            Some(ns) => ns / super::clock::ns_per_tick() == stat.start_ticks,
            None => true,
        };
        if !same {
            return;
        }
        e.start_ns.get_or_insert(start);
        if e.ppid == 0 {
            e.ppid = stat.ppid;
        }
        e.session.get_or_insert(stat.session);
        if e.tty.is_none() {
            e.tty = tty_name(stat.tty_nr).or_else(|| Some(String::new()));
        }
        e.comm.get_or_insert(stat.comm);
    } else if e.start_ns.is_none() {
        // Gone before anything could be read.
        return;
    }
    e.exe = exe_path(proc, e);
    e.cwd = proc.link(pid, "cwd");
    if e.argv.is_none()
        && let Some((argv, truncated)) = proc.cmdline(pid, argv_max)
    {
        e.argv = Some(argv);
        e.argv_truncated = truncated;
    }
    if e.ids.is_none() {
        e.ids = proc.ids(pid);
    }
    if e.cgroup.is_none() {
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
