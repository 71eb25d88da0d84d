//! Reading one process's facts from /proc: stat fields, argv, ids, links, cgroup. Shared by
//! the process sensor (enrichment) and the kill responder (identity by pid + start time).
//! Every reader returns None when the process is gone or the file is unreadable.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The fields of /proc/PID/stat Cordon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    /// R, S, D, Z, ...
    pub state: String,
    pub ppid: u32,
    pub session: u32,
    /// Controlling terminal as (major << 8 | minor, with the minor's high bits above), 0 if none.
    pub tty_nr: u32,
    pub flags: u64,
    /// Field 22: clock ticks after boot.
    pub start_ticks: u64,
}

/// Parses /proc/PID/stat. The command name is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted from the last ')'.
pub fn parse_stat(stat: &str) -> Option<Stat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        comm,
        state: field(3)?.to_string(),
        ppid: field(4)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        tty_nr: field(7)?.parse::<i64>().ok()? as u32,
        flags: field(9)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// Splits a NUL-separated argument block (as in /proc/PID/cmdline or the kernel's arg area).
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The name of a controlling terminal from its device number: "pts/3", "tty1", "ttyS0".
pub fn tty_name(tty_nr: u32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("tty({major}:{minor})"),
    })
}

/// /proc (or a stand-in for tests).
#[derive(Debug, Clone)]
pub struct Proc {
    root: PathBuf,
}

impl Default for Proc {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Proc {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, pid: u32, file: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(file)
    }

    pub fn stat(&self, pid: u32) -> Option<Stat> {
        parse_stat(&std::fs::read_to_string(self.path(pid, "stat")).ok()?)
    }

    /// The argument list, cut at `max` bytes (the flag says whether it was cut).
    pub fn cmdline(&self, pid: u32, max: usize) -> Option<(Vec<String>, bool)> {
        let file = std::fs::File::open(self.path(pid, "cmdline")).ok()?;
        let mut buf = Vec::with_capacity(256);
        file.take(max as u64 + 1).read_to_end(&mut buf).ok()?;
        let truncated = buf.len() > max;
        buf.truncate(max);
        Some((split_args(&buf), truncated))
    }

    /// A symlink under /proc/PID ("exe", "cwd"), as text.
    pub fn link(&self, pid: u32, name: &str) -> Option<String> {
        std::fs::read_link(self.path(pid, name))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Real uid, effective uid and real gid from /proc/PID/status.
    pub fn ids(&self, pid: u32) -> Option<(u32, u32, u32)> {
        let status = std::fs::read_to_string(self.path(pid, "status")).ok()?;
        let nums = |key: &str| -> Option<Vec<u32>> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line[key.len()..]
                .split_whitespace()
                .map(|n| n.parse().ok())
                .collect()
        };
        let uids = nums("Uid:")?;
        let gids = nums("Gid:")?;
        Some((*uids.first()?, *uids.get(1)?, *gids.first()?))
    }

    /// The cgroup v2 path ("0::/system.slice/x.service" gives "/system.slice/x.service").
    pub fn cgroup(&self, pid: u32) -> Option<String> {
        let text = std::fs::read_to_string(self.path(pid, "cgroup")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_string)
    }

    /// The inodes of the sockets the process holds open (its fd links "socket:[INODE]").
    pub fn socket_inodes(&self, pid: u32) -> Vec<u64> {
        let Ok(fds) = std::fs::read_dir(self.path(pid, "fd")) else {
            return Vec::new();
        };
        let inode = |link: std::path::PathBuf| {
            let link = link.to_str()?.strip_prefix("socket:[")?;
            link.strip_suffix(']')?.parse().ok()
        };
        fds.flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(inode)
            .collect()
    }

    /// Every numeric entry: the pids alive now.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (a (b) c) S 1 4242 4242 34816 4242 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state, "S");
        assert_eq!(s.ppid, 1);
        assert_eq!(s.session, 4242);
        assert_eq!(tty_name(s.tty_nr).as_deref(), Some("pts/0"));
        assert_eq!(s.start_ticks, 987654);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn argument_blocks_split_on_nul() {
        assert_eq!(split_args(b"ls\0-la\0/tmp\0"), vec!["ls", "-la", "/tmp"]);
        assert_eq!(split_args(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert!(split_args(b"").is_empty());
        assert_eq!(tty_name(0x0401).as_deref(), Some("tty1"));
        assert_eq!(tty_name(0), None);
    }

    #[test]
    fn this_process_reads_back() {
        let p = Proc::default();
        let me = std::process::id();
        let stat = p.stat(me).unwrap();
        assert_eq!(
            stat.ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
        );
        assert!(["R", "S"].contains(&stat.state.as_str()), "{}", stat.state);
        let (argv, truncated) = p.cmdline(me, 1 << 20).unwrap();
        assert!(!truncated);
        assert_eq!(argv.len(), std::env::args().count());
        let (short, truncated) = p.cmdline(me, 3).unwrap();
        assert!(truncated);
        assert!(short.concat().len() <= 3);
        let (uid, euid, _) = p.ids(me).unwrap();
        assert_eq!(uid, rustix::process::getuid().as_raw());
        assert_eq!(euid, rustix::process::geteuid().as_raw());
        assert_eq!(
            p.link(me, "exe").unwrap(),
            std::env::current_exe().unwrap().to_string_lossy()
        );
        assert!(p.pids().contains(&me));
        assert!(p.stat(u32::MAX).is_none());
    }
}
