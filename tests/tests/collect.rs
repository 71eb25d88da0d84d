//! Collections end to end (issue #15): `cordonctl collect` sends a signed command to a real
//! agent, which runs the collector on its host and streams the rows back in chunks; the
//! controller stores each once and `cordonctl` prints them as text, JSON lines or CSV.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::Deployment;
use serde_json::Value;
use std::process::{Child, Command};
use std::time::Duration;

/// Stops the child the test started, however the test ends.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_collection_returns_the_hosts_processes_and_files_stored_once() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));

    // A process the test owns, with an argument no other process has.
    let marker = format!(
        "{}.{}",
        86_400 + std::process::id() % 1000,
        std::process::id()
    );
    let sleeper = Owned(Command::new("sleep").arg(&marker).spawn().unwrap());
    let out = d.ctl(&["collect", &agent.id, "processes", "--json"]);
    let rows = lines(&out);
    assert!(rows.len() > 3, "a host runs more than a few processes");
    let mine: Vec<_> = rows
        .iter()
        .filter(|r| r["data"]["argv"] == serde_json::json!(["sleep", marker]))
        .collect();
    assert_eq!(mine.len(), 1, "the test's sleep, once");
    assert_eq!(mine[0]["data"]["pid"], sleeper.0.id());
    assert_eq!(mine[0]["data"]["ppid"], std::process::id());
    assert_eq!(mine[0]["agent_id"], agent.id.as_str());
    let command = mine[0]["command_id"].as_str().unwrap().to_string();

    // The stored rows are the ones printed, each once, in order.
    let stored = lines(&d.ctl(&["collections", "rows", &command, "--json"]));
    assert_eq!(stored, rows);
    let numbers: Vec<u64> = stored.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..rows.len() as u64).collect::<Vec<_>>());
    let found = lines(&d.ctl(&[
        "collections",
        "rows",
        &command,
        "--contains",
        &marker,
        "--json",
    ]));
    assert_eq!(found.len(), 1);

    let shown = d.ctl_json(&["commands", "show", &command]);
    assert_eq!(shown["kind"], "collect");
    assert_eq!(shown["status"], "succeeded");
    let result = &shown["result"]["collection"];
    assert_eq!(result["rows"], rows.len() as u64);
    assert_eq!(result["collector"], "processes");
    let audited = d.audited("command.collect");
    assert_eq!(audited.len(), 1, "{audited:?}");

    // Files under a root the test made, hashed, as CSV.
    let root = d.dir.path().join("hunt-here");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/a,b.txt"), "hello\n").unwrap();
    let root_arg = format!("root={}", root.display());
    let csv = d.ctl(&[
        "collect",
        &agent.id,
        "files",
        &root_arg,
        "hash=true",
        "--csv",
    ]);
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("agent_id,command_id,row,"), "{header}");
    let sha_hello = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    let file_line = csv.lines().find(|l| l.contains("a,b.txt")).unwrap();
    assert!(file_line.contains(sha_hello), "{file_line}");
    assert!(
        file_line.contains(&format!("\"{}\"", root.join("sub/a,b.txt").display())),
        "a comma in a path is quoted: {file_line}"
    );
}

#[test]
fn a_bad_collection_fails_with_the_agents_reason() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));

    let err = d.ctl_refused(&["collect", &agent.id, "everything"]);
    assert!(
        err.contains("no collector is named \"everything\""),
        "{err}"
    );
    let err = d.ctl_refused(&["collect", &agent.id, "files", "root=relative"]);
    assert!(err.contains("not an absolute path"), "{err}");
    let err = d.ctl_refused(&["collect", &agent.id, "files", "noequals"]);
    assert!(err.contains("not KEY=VALUE"), "{err}");
}

#[test]
fn a_collect_step_attaches_the_hosts_processes_to_the_incident() {
    use cordon_tests::repo::{apply, detection_config, marker, own_rule};
    if !cordon_tests::require_root("a_collect_step_attaches_the_hosts_processes_to_the_incident") {
        return;
    }
    let d = Deployment::loopback(&detection_config(""));
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    let m = marker("collect-step");
    let rule = own_rule(&d, &m);
    let playbook = format!(
        "name: gather\ntrigger:\n  rules: [{rule}]\nsteps:\n  - action: collect\n    collector: processes\n"
    );
    apply(&d, "gather", &playbook);

    // A shell that stays (its first command is not its last), its command line marked.
    let _shell = Owned(
        Command::new("/bin/sh")
            .args(["-c", &format!("sleep 60; : {m}")])
            .spawn()
            .unwrap(),
    );
    let step = cordon_tests::poll(Duration::from_secs(30), || {
        let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id]);
        let alert = alerts
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == rule.as_str())?
            .clone();
        let inc = d.ctl_json(&["incidents", "show", alert["incident_id"].as_str()?]);
        let entry = inc["timeline"].as_array()?.iter().find(|t| {
            t["text"]
                .as_str()
                .is_some_and(|s| s.contains("collect (collect): succeeded"))
        })?;
        Some((
            inc["id"].as_str()?.to_string(),
            entry["text"].as_str()?.to_string(),
        ))
    });
    let (incident, text) = step.expect("the collect step ran and succeeded");
    assert!(text.contains("rows from processes"), "{text}");
    let command = text
        .split("cordonctl collections rows ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no command id in {text:?}"))
        .to_string();
    let rows = lines(&d.ctl(&["collections", "rows", &command, "--contains", &m, "--json"]));
    assert!(
        rows.iter().any(|r| r["data"]["argv"][2]
            .as_str()
            .is_some_and(|a| a.contains(&m))),
        "the marked shell is among the collected processes: {rows:?}"
    );
    let report = d.ctl(&["incidents", "report", &incident]);
    assert!(report.contains("rows from processes"), "{report}");
}
