//! The `processes` collector: every process, as a tree (parents before their children, each
//! row with its depth): pid, parent pid, start time, executable with its SHA-256, argv, cwd,
//! user, terminal, cgroup and the inodes of its sockets (which the `sockets` collector's
//! rows carry too). Each executable is hashed once however many processes run it (through
//! /proc/PID/exe, so a binary deleted since it started is hashed too).

use super::file::{MAX_HASH, sha256_through};
use super::{Args, ArgsError, Flow, Host, Sink, row};
use crate::sys::procfs::{Proc, tty_name};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;

/// The most bytes of a command line kept.
const MAX_ARGV: usize = 32 * 1024;

/// One process as read from /proc.
struct Seen {
    ppid: u32,
    row: Value,
}

/// The `processes` collector takes no arguments.
pub fn check(args: &Args) -> Result<(), ArgsError> {
    args.only(&[])
}

pub fn collect(host: &Host, sink: &mut Sink) {
    let proc = Proc::at(&host.proc);
    let users = super::users::names(host);
    let mut hashes = HashMap::new();
    let mut seen = BTreeMap::new();
    for pid in proc.pids() {
        if sink.check().is_break() {
            return;
        }
        if let Some(p) = read(&proc, pid, &users, &mut hashes) {
            seen.insert(pid, p);
        }
    }
    let _ = emit_tree(seen, sink);
}

/// Reads process `pid`, or None if it is gone.
fn read(
    proc: &Proc,
    pid: u32,
    users: &HashMap<u32, String>,
    hashes: &mut HashMap<(u64, u64), Value>,
) -> Option<Seen> {
    let stat = proc.stat(pid)?;
    let (argv, cut) = proc.cmdline(pid, MAX_ARGV).unwrap_or_default();
    let ids = proc.ids(pid);
    let exe = proc.link(pid, "exe");
    let sha = exe
        .as_ref()
        .map_or(Value::Null, |_| exe_hash(proc, pid, hashes));
    let uid = ids.map(|i| i.0);
    let row = row([
        ("pid", json!(pid)),
        ("ppid", json!(stat.ppid)),
        ("start_ticks", json!(stat.start_ticks)),
        ("comm", json!(stat.comm)),
        ("state", json!(stat.state)),
        ("exe", json!(exe)),
        ("sha256", sha),
        ("argv", json!(argv)),
        (
            "argv_truncated",
            if cut { json!(true) } else { Value::Null },
        ),
        ("cwd", json!(proc.link(pid, "cwd"))),
        ("uid", json!(uid)),
        ("euid", json!(ids.map(|i| i.1))),
        ("user", json!(uid.and_then(|u| users.get(&u)))),
        ("tty", json!(tty_name(stat.tty_nr))),
        ("cgroup", json!(proc.cgroup(pid))),
        ("sockets", json!(proc.socket_inodes(pid))),
    ]);
    Some(Seen {
        ppid: stat.ppid,
        row,
    })
}

/// The SHA-256 of process `pid`'s executable, by its file identity, hashed once.
fn exe_hash(proc: &Proc, pid: u32, hashes: &mut HashMap<(u64, u64), Value>) -> Value {
    let path = proc.root().join(pid.to_string()).join("exe");
    let Ok(meta) = std::fs::metadata(&path) else {
        return Value::Null;
    };
    let key = (meta.dev(), meta.ino());
    hashes
        .entry(key)
        .or_insert_with(|| sha256_through(&path, MAX_HASH).map_or(Value::Null, Value::String))
        .clone()
}

/// Pushes the processes parents first, depth first from each root (a process whose parent
/// is not listed is a root), each row with its `depth`.
fn emit_tree(mut seen: BTreeMap<u32, Seen>, sink: &mut Sink) -> Flow {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (&pid, p) in &seen {
        children.entry(p.ppid).or_default().push(pid);
    }
    let roots: Vec<u32> = seen
        .iter()
        .filter(|(pid, p)| p.ppid == 0 || p.ppid == **pid || !seen.contains_key(&p.ppid))
        .map(|(&pid, _)| pid)
        .collect();
    let mut stack: Vec<(u32, u64)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    while let Some((pid, depth)) = stack.pop() {
        let Some(mut p) = seen.remove(&pid) else {
            continue; // already emitted (a cycle through a reused pid)
        };
        p.row["depth"] = json!(depth);
        sink.push(p.row)?;
        let kids = children.remove(&pid).unwrap_or_default();
        stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
    }
    Flow::Continue(())
}
