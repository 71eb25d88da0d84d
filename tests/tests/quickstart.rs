//! The README's start command, run as a user would: `scripts/quickstart.sh` with a private
//! data directory and port, on the binaries this build made. It must load Cordon's rules and
//! playbooks, catch the base64-to-shell command the README suggests (alert and incident, seen
//! through cordonctl), and stop cleanly on SIGINT (Ctrl-C) and on SIGTERM: the script exits,
//! the controller and agent it started are gone, and the port is free. Run again on the same
//! data, it picks up where it left off (same agent, rules and playbooks loaded again).
//!
//! The agent runs in the root network namespace and its eBPF sensor sees every process on the
//! machine, so the shipped playbooks (which kill, quarantine and isolate for real) are loaded
//! from a copy with `dry_run: true`: nothing this test or anything else on the machine runs
//! can make it contain this host.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::binaries::bin;
use cordon_tests::repo::{path, rule_id};
use cordon_tests::{poll, require_root};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The quickstart script, in its own process group (so every process it starts can be found
/// and, should the test fail, killed with it).
struct Quickstart {
    child: Child,
    log: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Quickstart {
    fn start(dir: &Path, playbooks: &Path, port: u16) -> Self {
        let data = dir.join("data");
        let log = dir.join("quickstart.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("bash")
            .arg(Path::new(&path("scripts")).join("quickstart.sh"))
            .env("CORDON_DATA", &data)
            .env("CORDON_PORT", port.to_string())
            .env("CORDON_BIN", bin("cordon-agent").parent().unwrap())
            .env("CORDON_PLAYBOOKS_DIR", playbooks)
            .env_remove("CORDON_RULES_DIR")
            .env_remove("CORDON_ADMIN")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap();
        Self {
            child,
            log,
            data,
            port,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits until the script says Cordon is running.
    fn wait_running(&mut self) {
        let ready = poll(Duration::from_secs(120), || {
            if self.log_text().contains("Cordon is running") {
                return Some(true);
            }
            self.child.try_wait().unwrap().map(|_| false)
        });
        assert_eq!(ready, Some(true), "quickstart:\n{}", self.log_text());
    }

    fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new(bin("cordonctl"))
            .env("CORDON_ADMIN", self.data.join("controller/admin.toml"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "cordonctl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn agent_id(&self) -> String {
        let state = std::fs::read_to_string(self.data.join("agent/agent.toml")).unwrap();
        let table: toml::Table = toml::from_str(&state).unwrap();
        table["agent_id"].as_str().unwrap().to_string()
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Only the group this test created: the script and what it started.
            let _ = killpg(Pid::from_raw(self.pgid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A free port whose successor (the web console's) is free too.
fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// (pid, command name) of every process in process group `pgid`.
fn group_members(pgid: i32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // gone meanwhile
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let pgrp = stat[close + 1..].split_whitespace().nth(2);
        if pgrp.and_then(|g| g.parse::<i32>().ok()) == Some(pgid) {
            found.push((pid, stat[open + 1..close].to_string()));
        }
    }
    found
}

/// cordonctl's `--json` output as values: one document, or one per line.
fn json_values(text: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return vec![v];
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every JSON object anywhere in `v` whose `key` is the string `want`.
fn objects_with<'a>(v: &'a Value, key: &str, want: &str, found: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            if map.get(key).and_then(Value::as_str) == Some(want) {
                found.push(v);
            }
            map.values().for_each(|c| objects_with(c, key, want, found));
        }
        Value::Array(items) => items.iter().for_each(|c| objects_with(c, key, want, found)),
        _ => {}
    }
}

/// The shipped playbooks copied into `dir` with `dry_run: true`; returns their names.
fn dry_run_playbooks(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path("playbooks")).unwrap().flatten() {
        let file = entry.path();
        if file.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("dry_run:")),
            "{} sets dry_run itself",
            file.display()
        );
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name: "))
            .unwrap()
            .trim()
            .to_string();
        std::fs::write(
            dir.join(file.file_name().unwrap()),
            format!("dry_run: true\n{text}"),
        )
        .unwrap();
        names.push(name);
    }
    assert!(!names.is_empty(), "the checkout ships playbooks");
    names
}

/// The ids of the rules the checkout ships in rules/.
fn shipped_rule_ids() -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(Path::new(&path("rules")).join("linux"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("id: ")) {
            ids.push(id.trim().to_string());
        }
    }
    assert!(ids.len() >= 20, "the checkout ships its rule pack: {ids:?}");
    ids
}

fn loads_rules_and_playbooks(q: &Quickstart, playbooks: &[String]) {
    let rules = q.ctl(&["rules", "list"]);
    for id in shipped_rule_ids() {
        let line = rules.lines().find(|l| l.contains(&id));
        assert!(
            line.is_some_and(|l| l.contains("enabled")),
            "rule {id} loaded and enabled:\n{rules}"
        );
    }
    let listed = q.ctl(&["playbooks", "list"]);
    for name in playbooks {
        let line = listed.lines().find(|l| l.contains(name.as_str()));
        assert!(
            line.is_some_and(|l| l.contains("dry-run")),
            "playbook {name} loaded, in dry run:\n{listed}"
        );
    }
}

fn base64_to_shell_raises_an_alert_and_an_incident(q: &Quickstart) {
    let agent = q.agent_id();
    let out = Command::new("sh")
        .args(["-c", "echo aWQK | base64 -d | sh"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("uid="),
        "{out:?}"
    );

    let rule = rule_id("base64_decode_to_shell");
    let alert = poll(Duration::from_secs(30), || {
        let text = q.ctl(&["alerts", "list", "--agent", &agent, "--json"]);
        let values = json_values(&text);
        let mut found = Vec::new();
        values
            .iter()
            .for_each(|v| objects_with(v, "rule_id", &rule, &mut found));
        found.first().map(|a| (*a).clone())
    })
    .unwrap_or_else(|| panic!("no alert for {rule}; log:\n{}", q.log_text()));
    assert_eq!(alert["level"], "high", "{alert}");

    let incidents = q.ctl(&["incidents", "list", "--json"]);
    let values = json_values(&incidents);
    let mut found = Vec::new();
    values
        .iter()
        .for_each(|v| objects_with(v, "agent_id", &agent, &mut found));
    assert!(
        found
            .iter()
            .any(|i| i.to_string().contains("Base64 Decoded Into a Shell")),
        "an incident for the agent names the alert: {incidents}"
    );
}

/// Sends `signal` to the script alone, as `kill` would, and checks that it exits with
/// `code` and leaves nothing behind.
fn signal_stops_everything(mut q: Quickstart, signal: Signal, code: i32) {
    let members = group_members(q.pgid());
    // Command names are cut at 15 bytes: cordon-controll.
    for name in ["cordon-contr", "cordon-agent"] {
        assert!(
            members.iter().any(|(_, comm)| comm.starts_with(name)),
            "{name} runs in the script's group: {members:?}"
        );
    }
    kill(Pid::from_raw(q.pgid()), signal).unwrap();
    let status = poll(Duration::from_secs(30), || q.child.try_wait().unwrap())
        .unwrap_or_else(|| panic!("the script did not stop on {signal}:\n{}", q.log_text()));
    assert_eq!(status.code(), Some(code), "{}", q.log_text());
    let left = poll(Duration::from_secs(5), || {
        let m = group_members(q.pgid());
        m.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "left running: {:?}",
        group_members(q.pgid())
    );
    std::net::TcpListener::bind(("127.0.0.1", q.port)).expect("the controller's port is free");
    let agent_log = std::fs::read_to_string(q.data.join("agent.log")).unwrap();
    assert!(agent_log.contains("agent stopping"), "{agent_log}");
    let controller_log = std::fs::read_to_string(q.data.join("controller.log")).unwrap();
    assert!(controller_log.contains("shutting down"), "{controller_log}");
    assert!(!q.log_text().contains("panicked"), "{}", q.log_text());
}

#[test]
fn quickstart_loads_rules_and_playbooks_catches_base64_to_shell_and_stops_cleanly() {
    if !require_root(
        "quickstart_loads_rules_and_playbooks_catches_base64_to_shell_and_stops_cleanly",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pb_dir = dir.path().join("playbooks");
    let playbooks = dry_run_playbooks(&pb_dir);
    let port = free_port();
    let mut q = Quickstart::start(dir.path(), &pb_dir, port);
    q.wait_running();
    loads_rules_and_playbooks(&q, &playbooks);
    base64_to_shell_raises_an_alert_and_an_incident(&q);
    let agent = q.agent_id();
    signal_stops_everything(q, Signal::SIGINT, 130);

    // Again on the same data: no new enrolment, everything loaded again; then SIGTERM.
    let mut q = Quickstart::start(dir.path(), &pb_dir, port);
    q.wait_running();
    assert!(!q.log_text().contains("enrolling"), "{}", q.log_text());
    assert_eq!(q.agent_id(), agent);
    loads_rules_and_playbooks(&q, &playbooks);
    signal_stops_everything(q, Signal::SIGTERM, 143);
}
