//! The `sockets` collector: every TCP and UDP socket, IPv4 and IPv6, listening, connected
//! or unconnected, of the agent's network namespace, from the kernel's sock_diag netlink
//! interface ([`diag`]; not by parsing `ss` or /proc/net), each with the processes holding
//! it: their open file descriptors under <proc>/PID/fd that link to `socket:[INODE]`. The
//! sockets are those of the network namespace the agent started in (the host's), also when
//! it runs in another one (`--netns`).
//!
//! Rows: `protocol` (tcp, udp), `family` (ipv4, ipv6), `state`, `local_address`,
//! `local_port`, `remote_address`, `remote_port`, `inode`, `uid`, and `processes`
//! (`pid`, `comm`, `exe`), empty when no process holds it (a socket in time_wait) or the
//! agent may not look.

pub mod diag;

#[cfg(test)]
mod tests;

use super::{Args, ArgsError, Flow, Host, Sink, os_value, row};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The most descriptors looked at per process.
const MAX_FDS: usize = 1 << 20;

/// Checks `args` (this collector takes none).
pub fn check(args: &Args) -> Result<(), ArgsError> {
    args.only(&[])
}

/// Runs the collector.
pub fn sockets(host: &Host, sink: &mut Sink) {
    let _ = collect(host, sink);
}

fn collect(host: &Host, sink: &mut Sink) -> Flow {
    let owners = owners(&host.proc, sink)?;
    for which in diag::DUMPS {
        let socket = match diag::open_in_host() {
            Ok(s) => s,
            Err(e) => {
                sink.error(e.to_string());
                return Flow::Continue(());
            }
        };
        let mut flow = Flow::Continue(());
        let done = diag::dump(&socket, which, |sock| {
            flow = sink.push(sock_row(&sock, &owners));
            flow
        });
        flow?;
        if let Err(e) = done {
            sink.error(e.to_string());
        }
    }
    Flow::Continue(())
}

fn sock_row(sock: &diag::Sock, owners: &HashMap<u64, Vec<Value>>) -> Value {
    let family = if sock.local.0.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    };
    let processes = owners
        .get(&u64::from(sock.inode))
        .cloned()
        .unwrap_or_default();
    row([
        ("protocol", json!(sock.protocol)),
        ("family", json!(family)),
        ("state", json!(sock.state)),
        ("local_address", json!(sock.local.0.to_string())),
        ("local_port", json!(sock.local.1)),
        ("remote_address", json!(sock.remote.0.to_string())),
        ("remote_port", json!(sock.remote.1)),
        ("inode", json!(sock.inode)),
        ("uid", json!(sock.uid)),
        ("processes", Value::Array(processes)),
    ])
}

/// The socket inode a descriptor link names (`socket:[INODE]`).
fn socket_inode(link: &Path) -> Option<u64> {
    let text = link.as_os_str().as_bytes();
    let inner = text.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// Every process under `proc`, by socket inode: `{pid, comm, exe}` of each process with a
/// descriptor on that socket (once per process). Processes that end or may not be looked at
/// meanwhile are skipped.
fn owners(proc: &Path, sink: &mut Sink) -> std::ops::ControlFlow<(), HashMap<u64, Vec<Value>>> {
    let mut owners: HashMap<u64, Vec<Value>> = HashMap::new();
    let entries = match std::fs::read_dir(proc) {
        Ok(e) => e,
        Err(e) => {
            sink.error(format!("{}: {e}", proc.display()));
            return std::ops::ControlFlow::Continue(owners);
        }
    };
    for entry in entries.flatten() {
        sink.check()?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let dir = entry.path();
        let mut inodes = process_sockets(&dir);
        inodes.sort_unstable();
        inodes.dedup();
        if inodes.is_empty() {
            continue;
        }
        let process = process(pid, &dir);
        for inode in inodes {
            owners.entry(inode).or_default().push(process.clone());
        }
    }
    std::ops::ControlFlow::Continue(owners)
}

/// The socket inodes process directory `dir` has descriptors on.
fn process_sockets(dir: &Path) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
        return Vec::new();
    };
    fds.take(MAX_FDS)
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| socket_inode(&link))
        .collect()
}

/// `{pid, comm, exe}` of the process in `dir` (comm and exe left out when unreadable).
fn process(pid: u32, dir: &Path) -> Value {
    let comm = std::fs::read(dir.join("comm")).ok().map(|mut c| {
        if c.last() == Some(&b'\n') {
            c.pop();
        }
        os_value(std::ffi::OsStr::from_bytes(&c))
    });
    let exe = std::fs::read_link(dir.join("exe"))
        .ok()
        .map(|e| os_value(e.as_os_str()));
    row([
        ("pid", json!(pid)),
        ("comm", comm.unwrap_or_default()),
        ("exe", exe.unwrap_or_default()),
    ])
}
