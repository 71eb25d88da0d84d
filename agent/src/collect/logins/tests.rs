//! The `logins` collector against a fixture root with generated accounting files, passwd,
//! shells and sudoers files of known content.

use super::utmp::{self, RECORD, Record, Records};
use crate::collect::{Host, Limits, Sink};
use serde_json::{Value, json};
use std::path::Path;

fn record(kind: i16, user: &str, line: &str, host: &str, time: u32, addr: &str) -> Record {
    Record {
        kind,
        pid: 4000 + i32::from(kind),
        line: line.into(),
        id: line.bytes().rev().take(4).collect(),
        user: user.into(),
        host: host.into(),
        time,
        usec: 12,
        addr: (!addr.is_empty()).then(|| addr.parse().expect("an address")),
        ..Default::default()
    }
}

/// A utmp file of `records`.
pub fn utmp_file(records: &[Record]) -> Vec<u8> {
    records.iter().flat_map(utmp::encode).collect()
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

fn fixture(root: &Path) {
    let session = [
        record(6, "LOGIN", "tty1", "", 1_700_000_000, ""),
        Record::default(),
        record(7, "alice", "pts/0", "192.0.2.7", 1_700_000_100, "192.0.2.7"),
    ];
    write(root, "var/run/utmp", &utmp_file(&session));
    let history = [
        record(2, "reboot", "~", "6.8.0", 1_699_999_000, ""),
        record(
            7,
            "bob",
            "pts/1",
            "db.example",
            1_699_999_500,
            "2001:db8::5",
        ),
        record(8, "", "pts/1", "", 1_699_999_900, ""),
    ];
    write(root, "var/log/wtmp", &utmp_file(&history));
    let failed = [record(
        6,
        "root",
        "ssh:notty",
        "203.0.113.9",
        1_700_000_200,
        "203.0.113.9",
    )];
    write(root, "var/log/btmp", &utmp_file(&failed));
    write(
        root,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
          sync:x:4:65534:sync:/bin:/bin/sync\nsvc:x:998:998::/srv:/bin/false\n\
          old:x:1001:1001::/home/old:\n",
    );
    write(
        root,
        "etc/shells",
        b"# valid login shells\n/bin/sh\n/bin/bash\n",
    );
    write(
        root,
        "etc/sudoers",
        b"# sudoers\nDefaults env_reset\n\nroot ALL=(ALL:ALL) ALL\n#includedir /etc/sudoers.d\n",
    );
    write(
        root,
        "etc/sudoers.d/admins",
        b"  # admins\n%admin ALL=(ALL) NOPASSWD: ALL\n",
    );
    write(root, "etc/sudoers.d/old.bak", b"mallory ALL=(ALL) ALL\n");
}

fn collect(root: &Path) -> Vec<Value> {
    let host = Host {
        root: root.to_path_buf(),
        proc: root.join("proc"),
    };
    let mut sink = Sink::new(Limits::default());
    super::logins(&host, &mut sink);
    sink.finish().rows
}

fn of_kind<'a>(rows: &'a [Value], kind: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn accounting_rows_are_the_records_but_the_empty_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let rows = collect(dir.path());
    let session = json!([
        {"kind": "session", "type": "login_process", "user": "LOGIN", "line": "tty1", "host": "",
         "pid": 4006, "time": 1_700_000_000u32},
        {"kind": "session", "type": "user_process", "user": "alice", "line": "pts/0",
         "host": "192.0.2.7", "pid": 4007, "time": 1_700_000_100u32, "address": "192.0.2.7"},
    ]);
    assert_eq!(json!(of_kind(&rows, "session")), session);
    let login = json!([
        {"kind": "login", "type": "boot_time", "user": "reboot", "line": "~", "host": "6.8.0",
         "pid": 4002, "time": 1_699_999_000u32},
        {"kind": "login", "type": "user_process", "user": "bob", "line": "pts/1",
         "host": "db.example", "pid": 4007, "time": 1_699_999_500u32, "address": "2001:db8::5"},
        {"kind": "login", "type": "dead_process", "user": "", "line": "pts/1", "host": "",
         "pid": 4008, "time": 1_699_999_900u32},
    ]);
    assert_eq!(json!(of_kind(&rows, "login")), login);
    let failed = json!([
        {"kind": "failed", "type": "login_process", "user": "root", "line": "ssh:notty",
         "host": "203.0.113.9", "pid": 4006, "time": 1_700_000_200u32, "address": "203.0.113.9"},
    ]);
    assert_eq!(json!(of_kind(&rows, "failed")), failed);
    assert!(of_kind(&rows, "error").is_empty(), "{rows:#?}");
}

#[test]
fn shell_users_are_those_who_can_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let rows = collect(dir.path());
    let users = json!([
        {"kind": "shell_user", "user": "root", "uid": 0, "gid": 0, "home": "/root",
         "shell": "/bin/bash", "listed": true},
        {"kind": "shell_user", "user": "sync", "uid": 4, "gid": 65534, "home": "/bin",
         "shell": "/bin/sync", "listed": false},
        {"kind": "shell_user", "user": "old", "uid": 1001, "gid": 1001, "home": "/home/old",
         "shell": "/bin/sh", "listed": true},
    ]);
    assert_eq!(json!(of_kind(&rows, "shell_user")), users);
}

#[test]
fn sudoers_rows_are_rule_lines_with_file_and_line_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let rows = collect(dir.path());
    let sudoers = json!([
        {"kind": "sudoers", "file": "/etc/sudoers", "line_number": 2, "line": "Defaults env_reset"},
        {"kind": "sudoers", "file": "/etc/sudoers", "line_number": 4,
         "line": "root ALL=(ALL:ALL) ALL"},
        {"kind": "sudoers", "file": "/etc/sudoers", "line_number": 5,
         "line": "#includedir /etc/sudoers.d"},
        {"kind": "sudoers", "file": "/etc/sudoers.d/admins", "line_number": 2,
         "line": "%admin ALL=(ALL) NOPASSWD: ALL"},
        {"kind": "sudoers", "file": "/etc/sudoers.d/old.bak", "line_number": 1,
         "line": "mallory ALL=(ALL) ALL", "ignored_by_sudo": true},
    ]);
    assert_eq!(json!(of_kind(&rows, "sudoers")), sudoers);
}

#[test]
fn a_cut_or_missing_accounting_file_is_an_error_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let mut cut = utmp_file(&[record(7, "eve", "pts/9", "", 1, "")]);
    cut.extend_from_slice(&[0xff; 100]);
    write(dir.path(), "var/log/wtmp", &cut);
    std::fs::remove_file(dir.path().join("var/log/btmp")).expect("rm btmp");
    let rows = collect(dir.path());
    assert_eq!(of_kind(&rows, "login").len(), 1);
    let errors: Vec<_> = of_kind(&rows, "error").into_iter().cloned().collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0]["file"], "/var/log/wtmp");
    assert_eq!(
        errors[0]["error"],
        "truncated record at byte 384: 100 of 384 bytes"
    );
    assert_eq!(errors[1]["file"], "/var/log/btmp");
    assert!(
        errors[1]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("failed records"))
    );
}

#[test]
fn garbage_parses_without_panic_and_reencodes_the_same() {
    let garbage: Vec<u8> = (0..RECORD * 3 + 7).map(|i| (i * 37 % 251) as u8).collect();
    let mut records = 0;
    for r in Records::new(garbage.as_slice()) {
        match r {
            Ok(r) => {
                records += 1;
                assert_eq!(utmp::parse(&utmp::encode(&r)), r);
            }
            Err(e) => assert!(e.to_string().starts_with("truncated record at byte 1152")),
        }
    }
    assert_eq!(records, 3);
}

#[test]
fn a_fifo_in_place_of_wtmp_is_not_waited_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let wtmp = dir.path().join("var/log/wtmp");
    std::fs::remove_file(&wtmp).expect("rm wtmp");
    nix::unistd::mkfifo(&wtmp, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let rows = collect(dir.path());
    let errors = of_kind(&rows, "error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"], "login records: not a regular file");
}

#[test]
fn logins_and_sockets_take_no_arguments() {
    use crate::collect::{Args, CollectError, run};
    let args = Args::new([("root".to_string(), "/".to_string())]);
    for name in ["logins", "sockets"] {
        let refused = run(name, &args, &Host::default(), Limits::default());
        assert!(
            matches!(refused, Err(CollectError::Args(_))),
            "{name}: {refused:?}"
        );
    }
}
