//! The collectors against fixtures with known content (a planted root for persistence,
//! packages and files; this test's own child process and socket for processes), the limits,
//! and the hostile file-system cases: symlink loops, FIFOs and devices, odd names, a
//! directory with a million entries, a file that changes while it is hashed.

use super::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;

pub(super) fn write(root: &Path, path: &str, text: &str) -> PathBuf {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    p
}

pub(super) fn fixture_host(root: &Path) -> Host {
    Host {
        root: root.to_path_buf(),
        proc: root.join("proc"),
    }
}

pub(super) fn collect(name: &str, args: &[(&str, &str)], host: &Host) -> Outcome {
    let args = Args::new(args.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    run(name, &args, host, Limits::default()).expect("collect")
}

/// The rows whose `key` is `value`.
pub(super) fn with<'a>(rows: &'a [Value], key: &str, value: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r[key] == value).collect()
}

pub(super) fn sha_of(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanted planted@attacker";

fn plant_persistence(root: &Path) {
    write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    );
    write(
        root,
        "/etc/crontab",
        "# m h dom mon dow user command\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    );
    write(
        root,
        "/etc/cron.d/updater",
        "*/5 * * * * root /tmp/.x/updater >/dev/null 2>&1\n",
    );
    write(
        root,
        "/var/spool/cron/crontabs/alice",
        "@reboot /home/alice/.cache/kworker\n",
    );
    write(
        root,
        "/etc/systemd/system/updater.service",
        "[Service]\nExecStart=/tmp/.x/updater --quiet\n",
    );
    write(
        root,
        "/etc/systemd/system/updater.timer",
        "[Timer]\nOnCalendar=*:0/10\nUnit=updater.service\n",
    );
    write(
        root,
        "/home/alice/.ssh/authorized_keys",
        &format!("# keys\n{KEY}\n"),
    );
    write(root, "/home/alice/.bashrc", "alias ls='ls --color'\n");
    write(root, "/etc/ld.so.preload", "/usr/lib/libhook.so\n");
    write(
        root,
        "/proc/modules",
        "diamorphine 16384 0 - Live 0x0000000000000000 (OE)\next4 1036288 1 - Live 0x0000000000000000\n",
    );
    let suid = write(root, "/usr/bin/helper", "#!/bin/sh\n");
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let sgid = write(root, "/usr/bin/grouped", "#!/bin/sh\n");
    fs::set_permissions(&sgid, fs::Permissions::from_mode(0o2755)).unwrap();
    write(root, "/usr/bin/plain", "#!/bin/sh\n");
}

#[test]
fn persistence_finds_what_was_planted() {
    let dir = tempfile::tempdir().unwrap();
    plant_persistence(dir.path());
    let out = collect(
        "persistence",
        &[("root", "/usr")],
        &fixture_host(dir.path()),
    );
    assert_eq!(out.truncated, None);
    let rows = &out.rows;

    let cron = with(rows, "kind", "cron_line");
    let texts: Vec<&str> = cron.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert!(
        texts.contains(&"*/5 * * * * root /tmp/.x/updater >/dev/null 2>&1"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"@reboot /home/alice/.cache/kworker"),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.starts_with('#')),
        "comments are not entries"
    );
    let crontab = with(rows, "path", "/etc/cron.d/updater");
    let file = crontab
        .iter()
        .find(|r| r["kind"] == "cron")
        .expect("the crontab's file row");
    assert_eq!(
        file["sha256"],
        sha_of("*/5 * * * * root /tmp/.x/updater >/dev/null 2>&1\n")
    );
    assert_eq!(
        (file["uid"].clone(), file["mode"].clone()),
        (json!(0), json!("0644"))
    );

    let timer = with(rows, "kind", "systemd_timer");
    assert_eq!(timer.len(), 1);
    assert_eq!(timer[0]["path"], "/etc/systemd/system/updater.timer");
    assert_eq!(
        timer[0]["settings"],
        json!(["OnCalendar=*:0/10", "Unit=updater.service"])
    );
    let service = with(rows, "path", "/etc/systemd/system/updater.service");
    assert_eq!(
        service[0]["settings"],
        json!(["ExecStart=/tmp/.x/updater --quiet"])
    );

    let keys = with(rows, "kind", "authorized_keys_line");
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0]["text"].as_str(), keys[0]["user"].as_str()),
        (Some(KEY), Some("alice"))
    );
    assert_eq!(keys[0]["path"], "/home/alice/.ssh/authorized_keys");
    assert_eq!(
        with(rows, "kind", "ld_preload_line")[0]["text"],
        "/usr/lib/libhook.so"
    );
    assert_eq!(
        with(rows, "kind", "shell_profile")[0]["path"],
        "/home/alice/.bashrc"
    );

    let modules = with(rows, "kind", "kernel_module");
    assert_eq!(modules[0]["name"], "diamorphine");
    assert_eq!(modules[0]["taint"], "OE");
    let setuid: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["kind"].as_str().is_some_and(|k| k.starts_with("set")))
        .map(|r| (r["path"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    let mut setuid = setuid;
    setuid.sort();
    assert_eq!(
        setuid,
        [
            ("/usr/bin/grouped", "setgid"),
            ("/usr/bin/helper", "setuid")
        ]
    );
}

const STATUS: &str = "Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u3
Description: secure shell (SSH) server
 a continuation line: Package: not-a-package

Package: old-tool
Status: deinstall ok config-files
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u9
";

#[test]
fn packages_lists_what_dpkg_has_installed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "/var/lib/dpkg/status", STATUS);
    let out = collect("packages", &[], &fixture_host(dir.path()));
    assert_eq!(
        out.rows,
        [
            json!({"name": "openssh-server", "version": "1:9.2p1-2+deb12u3", "architecture": "amd64", "source": "openssh"}),
            json!({"name": "libc6", "version": "2.36-9+deb12u9", "architecture": "amd64"}),
        ]
    );
    let missing = collect("packages", &[], &fixture_host(&dir.path().join("none")));
    assert!(missing.rows.is_empty());
    assert!(
        missing.errors[0].contains("var/lib/dpkg/status"),
        "{:?}",
        missing.errors
    );
}

#[test]
fn arguments_a_collector_does_not_take_are_refused() {
    let host = Host::default();
    let bad = |name: &str, args: &[(&str, &str)]| {
        let args = Args::new(args.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        run(name, &args, &host, Limits::default())
            .unwrap_err()
            .to_string()
    };
    assert!(bad("packages", &[("root", "/")]).contains("takes no arguments"));
    assert!(bad("files", &[("root", "etc")]).contains("not an absolute path"));
    assert!(bad("files", &[("sha256", "abc")]).contains("not 64 hex digits"));
    assert!(bad("files", &[("min_size", "big")]).contains("min_size"));
    assert!(bad("files", &[("glob", "a"), ("glob", "b")]).contains("more than once"));
    assert!(bad("nope", &[]).contains("the collectors are processes, sockets, logins"));
}

#[test]
fn print_writes_one_json_row_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "/x/needle.conf", "found");
    let root = dir.path().join("x").display().to_string();
    let args = Args::new([("root".into(), root), ("glob".into(), "needle.*".into())]);
    let mut out = Vec::new();
    print("files", args, Limits::default(), &mut out).expect("print");
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["path"], file.display().to_string());
    let refused = print("nope", Args::default(), Limits::default(), &mut Vec::new());
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("no collector is named")
    );
}
