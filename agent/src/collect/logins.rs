//! The `logins` collector: who is logged in (utmp, kind `session`), who logged in before
//! (wtmp, `login`), who failed to (btmp, `failed`), which users have a login shell
//! (`shell_user`) and what sudo grants (`sudoers`, every rule line of /etc/sudoers and
//! /etc/sudoers.d/*, with file and line number).
//!
//! Every file is opened without following a symlink and without blocking, must be a regular
//! file, and is read within a bound: the accounting files record by record (the sink checked
//! at each), the text files up to [`MAX_TEXT`] bytes. A missing or cut accounting file is an
//! `error` row (a wiped wtmp is a finding); other unreadable files are the outcome's errors.

pub mod utmp;

#[cfg(test)]
mod tests;

use super::file::open_regular;
use super::{Args, ArgsError, Flow, Host, Sink, os_value, row};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The most bytes read of a text file (passwd, shells, a sudoers file).
pub const MAX_TEXT: u64 = 16 << 20;

/// The most files read from /etc/sudoers.d.
const MAX_SUDOERS_FILES: usize = 1000;

/// The accounting files and the kind of their rows.
const ACCOUNTING: [(&str, &str); 3] = [
    ("/var/run/utmp", "session"),
    ("/var/log/wtmp", "login"),
    ("/var/log/btmp", "failed"),
];

/// Checks `args` (this collector takes none).
pub fn check(args: &Args) -> Result<(), ArgsError> {
    args.only(&[])
}

/// Runs the collector.
pub fn logins(host: &Host, sink: &mut Sink) {
    let _ = collect(host, sink);
}

fn collect(host: &Host, sink: &mut Sink) -> Flow {
    for (path, kind) in ACCOUNTING {
        accounting(host, path, kind, sink)?;
    }
    shell_users(host, sink)?;
    sudoers(host, sink)
}

/// The text file at `path` (under the root), up to [`MAX_TEXT`] bytes; `None` (recorded as
/// an error) when it cannot be read.
fn read_text(host: &Host, path: &Path, sink: &mut Sink) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let read = open_regular(path).and_then(|f| f.take(MAX_TEXT).read_to_end(&mut buf));
    match read {
        Ok(_) => Some(buf),
        Err(e) => {
            sink.error(format!("{}: {e}", host.host_path(path).display()));
            None
        }
    }
}

fn bytes_value(b: &[u8]) -> Value {
    os_value(OsStr::from_bytes(b))
}

/// The rows of one accounting file: one per record but the empty ones.
fn accounting(host: &Host, path: &str, kind: &str, sink: &mut Sink) -> Flow {
    let error = |why: String| {
        row([
            ("kind", json!("error")),
            ("file", json!(path)),
            ("error", json!(why)),
        ])
    };
    let file = match open_regular(&host.path(path)) {
        Ok(f) => f,
        Err(e) => return sink.push(error(format!("{kind} records: {e}"))),
    };
    for record in utmp::Records::new(std::io::BufReader::new(file)) {
        sink.check()?;
        match record {
            Ok(r) if r.kind == 0 => {}
            Ok(r) => sink.push(record_row(kind, &r))?,
            Err(e) => sink.push(error(e.to_string()))?,
        }
    }
    Flow::Continue(())
}

fn record_row(kind: &str, r: &utmp::Record) -> Value {
    row([
        ("kind", json!(kind)),
        ("type", json!(utmp::type_name(r.kind))),
        ("user", bytes_value(&r.user)),
        ("line", bytes_value(&r.line)),
        ("host", bytes_value(&r.host)),
        ("pid", json!(r.pid)),
        ("time", json!(r.time)),
        ("address", json!(r.addr.map(|a| a.to_string()))),
    ])
}

/// The shells /etc/shells lists.
fn listed_shells(host: &Host, sink: &mut Sink) -> HashSet<Vec<u8>> {
    let text = read_text(host, &host.path("/etc/shells"), sink).unwrap_or_default();
    text.split(|&c| c == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Whether `shell` lets a user log in: listed in /etc/shells, or not a refusing one.
fn login_shell(shell: &[u8], listed: &HashSet<Vec<u8>>) -> bool {
    let base = shell.rsplit(|&c| c == b'/').next().unwrap_or_default();
    listed.contains(shell) || !matches!(base, b"nologin" | b"false")
}

/// One `shell_user` row per /etc/passwd user whose shell lets them log in.
fn shell_users(host: &Host, sink: &mut Sink) -> Flow {
    let listed = listed_shells(host, sink);
    let Some(passwd) = read_text(host, &host.path("/etc/passwd"), sink) else {
        return Flow::Continue(());
    };
    for line in passwd.split(|&c| c == b'\n') {
        sink.check()?;
        let fields: Vec<&[u8]> = line.split(|&c| c == b':').collect();
        let [user, _, uid, gid, _, home, shell] = fields[..] else {
            continue;
        };
        // An empty shell field means /bin/sh.
        let shell = if shell.is_empty() { b"/bin/sh" } else { shell };
        if !login_shell(shell, &listed) {
            continue;
        }
        let number = |f: &[u8]| {
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
        };
        sink.push(row([
            ("kind", json!("shell_user")),
            ("user", bytes_value(user)),
            ("uid", json!(number(uid))),
            ("gid", json!(number(gid))),
            ("home", bytes_value(home)),
            ("shell", bytes_value(shell)),
            ("listed", json!(listed.contains(shell))),
        ]))?;
    }
    Flow::Continue(())
}

/// Whether sudo reads a file of /etc/sudoers.d: not if its name ends in `~` or has a `.`.
fn sudo_reads(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.ends_with(b"~") && !b.contains(&b'.')
}

/// The `sudoers` rows of /etc/sudoers and of every regular file in /etc/sudoers.d (sorted by
/// name, as sudo reads them; those sudo skips are marked `ignored_by_sudo`).
fn sudoers(host: &Host, sink: &mut Sink) -> Flow {
    sudoers_file(host, &host.path("/etc/sudoers"), true, sink)?;
    let dir = host.path("/etc/sudoers.d");
    let mut names = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries.take(MAX_SUDOERS_FILES).flatten() {
                names.push(entry.file_name());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => sink.error(format!("/etc/sudoers.d: {e}")),
    }
    names.sort();
    for name in names {
        sudoers_file(host, &dir.join(&name), sudo_reads(&name), sink)?;
    }
    Flow::Continue(())
}

/// One row per rule line of a sudoers file: not blank, not a comment (`#include` and
/// `#includedir` are directives, not comments).
fn sudoers_file(host: &Host, path: &Path, read_by_sudo: bool, sink: &mut Sink) -> Flow {
    let Some(text) = read_text(host, path, sink) else {
        return Flow::Continue(());
    };
    let file = os_value(host.host_path(path).as_os_str());
    for (n, line) in text.split(|&c| c == b'\n').enumerate() {
        sink.check()?;
        let line = line.trim_ascii();
        let directive = line.starts_with(b"#include");
        if line.is_empty() || (line.starts_with(b"#") && !directive) {
            continue;
        }
        sink.push(row([
            ("kind", json!("sudoers")),
            ("file", file.clone()),
            ("line_number", json!(n + 1)),
            ("line", bytes_value(line)),
            (
                "ignored_by_sudo",
                (!read_by_sudo).then_some(json!(true)).unwrap_or_default(),
            ),
        ]))?;
    }
    Flow::Continue(())
}
