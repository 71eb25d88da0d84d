//! The `persistence` collector: what makes code run again after a reboot or a login. Cron
//! and at jobs of every user, systemd units and timers (system and per user), shell rc and
//! profile files, `authorized_keys` of every user, `/etc/ld.so.preload`, udev rules, the
//! loaded kernel modules, and the setuid and setgid files under the given roots.
//!
//! Each entry is a row with its `kind`, and for a file its path, owner, mode, mtime and
//! SHA-256 (`file.rs`). Files whose lines are the persistence itself (crontabs, keys,
//! preload) give one row per meaningful line too, with the line's number and text, so a hunt
//! can ask which hosts have this key or this cron line.

use super::file::file_row;
use super::walk::walk;
use super::{Args, ArgsError, Flow, Host, Sink, users};
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The largest file whose lines are read.
const MAX_LINES_FILE: u64 = 4 << 20;

/// Where setuid and setgid files are looked for when no root is given.
const SETUID_ROOTS: [&str; 5] = ["/usr", "/opt", "/tmp", "/var/tmp", "/dev/shm"];

/// System-wide places, as (kind, host path glob, whether each line is an entry).
const SYSTEM: [(&str, &str, bool); 17] = [
    ("cron", "/etc/crontab", true),
    ("cron", "/etc/cron.d/*", true),
    ("cron", "/etc/cron.hourly/*", false),
    ("cron", "/etc/cron.daily/*", false),
    ("cron", "/etc/cron.weekly/*", false),
    ("cron", "/etc/cron.monthly/*", false),
    ("cron", "/var/spool/cron/crontabs/*", true),
    ("at", "/var/spool/cron/atjobs/*", false),
    ("shell_profile", "/etc/profile", false),
    ("shell_profile", "/etc/profile.d/*", false),
    ("shell_profile", "/etc/bash.bashrc", false),
    ("shell_profile", "/etc/environment", false),
    ("shell_profile", "/etc/zsh/zshrc", false),
    ("ld_preload", "/etc/ld.so.preload", true),
    ("udev_rule", "/etc/udev/rules.d/*", false),
    ("udev_rule", "/lib/udev/rules.d/*", false),
    ("udev_rule", "/usr/lib/udev/rules.d/*", false),
];

/// Trees of systemd units, system-wide.
const SYSTEMD: [&str; 5] = [
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/system",
    "/etc/systemd/user",
];

/// Per user, under the home directory: (kind, relative path, whether each line is an entry).
const PER_USER: [(&str, &str, bool); 8] = [
    ("authorized_keys", ".ssh/authorized_keys", true),
    ("authorized_keys", ".ssh/authorized_keys2", true),
    ("shell_profile", ".bashrc", false),
    ("shell_profile", ".profile", false),
    ("shell_profile", ".bash_profile", false),
    ("shell_profile", ".bash_login", false),
    ("shell_profile", ".bash_logout", false),
    ("shell_profile", ".zshrc", false),
];

/// What the collector was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to look for setuid and setgid files (host paths).
    pub setuid_roots: Vec<String>,
}

impl Options {
    pub fn from(args: &Args) -> Result<Self, ArgsError> {
        args.only(&["root"])?;
        let roots: Vec<String> = args.all("root").into_iter().map(String::from).collect();
        if let Some(bad) = roots.iter().find(|r| !r.starts_with('/')) {
            return Err(Args::bad("root", bad, "not an absolute path"));
        }
        Ok(Self {
            setuid_roots: if roots.is_empty() {
                SETUID_ROOTS.map(String::from).to_vec()
            } else {
                roots
            },
        })
    }
}

pub fn collect(host: &Host, options: &Options, sink: &mut Sink) {
    let _ = gather(host, options, sink);
}

fn gather(host: &Host, options: &Options, sink: &mut Sink) -> Flow {
    // A directory reached twice (/lib is /usr/lib on a merged-usr host) is read once.
    let mut seen = std::collections::HashSet::new();
    let mut first_time = |dir: &Path| dir.canonicalize().map_or(true, |c| seen.insert(c));
    for (kind, pattern, lines) in SYSTEM {
        let dir = host.path(pattern.rsplit_once('/').map_or("/", |(d, _)| d));
        if pattern.ends_with('*') && !first_time(&dir) {
            continue;
        }
        for path in expand(host, pattern) {
            entry(host, kind, &path, None, lines, sink)?;
        }
    }
    for dir in SYSTEMD {
        let dir = host.path(dir);
        if first_time(&dir) {
            units(host, &dir, None, sink)?;
        }
    }
    for user in users::all(host) {
        if user.home.is_empty() || user.home == "/" || !user.home.starts_with('/') {
            continue;
        }
        let home = host.path(&user.home);
        for (kind, rel, lines) in PER_USER {
            entry(host, kind, &home.join(rel), Some(&user.name), lines, sink)?;
        }
        units(
            host,
            &home.join(".config/systemd/user"),
            Some(&user.name),
            sink,
        )?;
    }
    modules(host, sink)?;
    for root in &options.setuid_roots {
        setuid(host, &host.path(root), sink)?;
    }
    Flow::Continue(())
}

/// The paths matching host glob `pattern` under the root, sorted.
fn expand(host: &Host, pattern: &str) -> Vec<PathBuf> {
    let root = glob::Pattern::escape(&host.root.to_string_lossy());
    let full = format!(
        "{}/{}",
        root.trim_end_matches('/'),
        pattern.trim_start_matches('/')
    );
    let mut found: Vec<PathBuf> = glob::glob(&full)
        .map(|paths| paths.flatten().collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// A row for the file at `path` (if it exists), and with `lines`, one per meaningful line.
fn entry(
    host: &Host,
    kind: &str,
    path: &Path,
    user: Option<&str>,
    lines: bool,
    sink: &mut Sink,
) -> Flow {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Flow::Continue(());
    };
    let mut row = file_row(host, path, &meta, meta.is_file());
    row["kind"] = json!(kind);
    if let Some(user) = user {
        row["user"] = json!(user);
    }
    let line_rows = if lines && meta.is_file() && meta.len() <= MAX_LINES_FILE {
        line_rows(&row, path)
    } else {
        Vec::new()
    };
    sink.push(row)?;
    for r in line_rows {
        sink.push(r)?;
    }
    Flow::Continue(())
}

/// A row per non-blank, non-comment line of the file at `path`, each with the file's path,
/// kind and user from `file` and `kind` suffixed `_line`.
fn line_rows(file: &Value, path: &Path) -> Vec<Value> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let kind = format!("{}_line", file["kind"].as_str().unwrap_or_default());
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let mut r = json!({ "kind": kind, "path": file["path"], "line": i + 1, "text": l });
            if let Some(user) = file.get("user") {
                r["user"] = user.clone();
            }
            r
        })
        .collect()
}

/// A row per systemd unit file under `dir`, with the commands and schedules it sets.
fn units(host: &Host, dir: &Path, user: Option<&str>, sink: &mut Sink) -> Flow {
    if !dir.is_dir() {
        return Flow::Continue(());
    }
    walk(dir, sink, |path, meta, sink| {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            return Flow::Continue(());
        };
        let kind = match ext {
            "service" => "systemd_service",
            "timer" => "systemd_timer",
            "socket" | "path" | "mount" | "target" => "systemd_unit",
            _ => return Flow::Continue(()),
        };
        let mut row = file_row(host, path, meta, meta.is_file());
        row["kind"] = json!(kind);
        if let Some(user) = user {
            row["user"] = json!(user);
        }
        let settings = unit_settings(path, meta);
        if !settings.is_empty() {
            row["settings"] = json!(settings);
        }
        sink.push(row)
    })
}

/// The lines of a unit file that say what runs and when (`Exec*=`, `On*=`, `Unit=`).
fn unit_settings(path: &Path, meta: &std::fs::Metadata) -> Vec<String> {
    if !meta.is_file() || meta.len() > MAX_LINES_FILE {
        return Vec::new();
    }
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Exec") || l.starts_with("On") || l.starts_with("Unit="))
        .map(String::from)
        .collect()
}

/// A row per loaded kernel module, from /proc/modules.
fn modules(host: &Host, sink: &mut Sink) -> Flow {
    let Ok(text) = std::fs::read_to_string(host.proc.join("modules")) else {
        return Flow::Continue(());
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = f.first() else { continue };
        sink.push(json!({
            "kind": "kernel_module",
            "name": name,
            "size": f.get(1).and_then(|s| s.parse::<u64>().ok()),
            "state": f.get(4),
            "taint": f.get(6).map(|t| t.trim_matches(|c| c == '(' || c == ')')),
        }))?;
    }
    Flow::Continue(())
}

/// A row per setuid or setgid regular file under `root`.
fn setuid(host: &Host, root: &Path, sink: &mut Sink) -> Flow {
    walk(root, sink, |path, meta, sink| {
        let bits = meta.mode() & 0o6000;
        if !meta.is_file() || bits == 0 {
            return Flow::Continue(());
        }
        let mut row = file_row(host, path, meta, true);
        row["kind"] = json!(match bits {
            0o6000 => "setuid_setgid",
            0o4000 => "setuid",
            _ => "setgid",
        });
        sink.push(row)
    })
}
