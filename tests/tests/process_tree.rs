//! `cordonctl events tree` and the incident report's process tree, with the real binaries: a
//! chain of shells run on the agent's host is drawn from the outer shell down through the
//! middle one (the event asked for, marked) to the command it ran and how that ended, in text
//! and in JSON; an event that is not a process event, an event never stored and a malformed
//! event id are each refused saying why; and the report of the incident the middle shell
//! raised carries the same tree.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_proto::{EventRecord, ProcessEvent, event, process_event::Kind};
use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::repo::{marker, own_rule};
use cordon_tests::{poll, require_root};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Runs `sh -c` (outer) running `sh -c` (mid) running `/bin/echo` (leaf); each command line
/// carries one marker only (the mid's reaches the leaf through the environment).
fn run_chain(base: &str) {
    let out = Command::new("/bin/sh")
        .args(["-c", &format!("/bin/sh -c \"$MID\"; true {base}-outer")])
        .env("MID", format!("/bin/echo \"$LEAF\"; true {base}-mid"))
        .env("LEAF", format!("{base}-leaf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The first stored event of `agent` that `pick` accepts (process events with their body).
fn stored(
    d: &Deployment,
    agent: &AgentHandle,
    what: &str,
    pick: impl Fn(&EventRecord) -> bool,
) -> EventRecord {
    poll(WAIT, || d.stored_events(&agent.id).into_iter().find(&pick))
        .unwrap_or_else(|| panic!("{what} was not stored"))
}

fn process(e: &EventRecord) -> Option<&ProcessEvent> {
    match e.event.as_ref()?.body.as_ref()? {
        event::Body::Process(p) => Some(p),
        _ => None,
    }
}

/// The exec event of the middle shell.
fn mid_exec(d: &Deployment, agent: &AgentHandle, base: &str) -> EventRecord {
    let mid = format!("{base}-mid");
    stored(d, agent, "the middle shell's exec", |e| {
        process(e).is_some_and(|p| {
            p.kind() == Kind::Exec
                && p.argv.first().is_some_and(|a| a.ends_with("sh"))
                && p.argv.join(" ").contains(&mid)
        })
    })
}

fn command(node: &Value) -> &str {
    node["command"].as_str().unwrap_or_default()
}

/// The tree as JSON once the leaf's exit is in it.
fn tree_json(d: &Deployment, event: &str, leaf: &str) -> Value {
    let found = poll(WAIT, || {
        let t = d.ctl_json(&["events", "tree", event]);
        let kids = t["process"]["children"].as_array()?;
        let done = kids
            .iter()
            .any(|c| command(c).contains(leaf) && c["exited"] == true);
        done.then_some(t)
    });
    found.unwrap_or_else(|| {
        let t = d.ctl(&["events", "tree", event, "--json"]);
        panic!("no exited {leaf} under the process: {t}")
    })
}

/// The text tree: the outer shell above the marked middle one, the leaf below it.
fn check_text(text: &str, base: &str, pid: u32) {
    let line = |m: &str| {
        text.lines()
            .position(|l| l.contains(m))
            .unwrap_or_else(|| panic!("{m} in\n{text}"))
    };
    let (outer, mid, leaf) = (line("-outer"), line("-mid"), line(&format!("{base}-leaf")));
    assert!(outer < mid && mid < leaf, "{text}");
    let lines: Vec<_> = text.lines().collect();
    assert!(
        lines[mid].contains(&format!("▶ pid {pid}  started ")),
        "{text}"
    );
    assert!(lines[leaf].contains("[exited 0"), "{text}");
}

#[test]
fn an_exec_has_its_tree_and_other_events_are_refused_saying_why() {
    if !require_root("an_exec_has_its_tree_and_other_events_are_refused_saying_why") {
        return;
    }
    let d = Deployment::loopback("");
    let watched = d.dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let mut agent = d.enroll_agent("tree", &[]);
    let dir = toml::Value::from(watched.display().to_string());
    agent.configure(&format!(
        "[files]\nmode = \"inotify\"\nwatch = [{dir}]\nrecursive = []\n"
    ));
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let base = marker("tree");
    let rule = own_rule(&d, &format!("{base}-mid"));

    run_chain(&base);
    let mid = mid_exec(&d, &agent, &base);
    let pid = process(&mid).unwrap().pid;
    // By a prefix of the agent's id, as `events query` shows it.
    let id = format!("{}:{}", &agent.id[..12], mid.seq);
    let leaf = format!("{base}-leaf");
    let t = tree_json(&d, &id, &leaf);
    assert_eq!(
        (t["agent_id"].as_str(), t["seq"].as_u64()),
        (Some(agent.id.as_str()), Some(mid.seq))
    );
    assert_eq!(t["process"]["pid"], pid);
    let parent = t["ancestors"].as_array().unwrap().last().cloned().unwrap();
    assert!(command(&parent).contains(&format!("{base}-outer")), "{t}");
    assert_eq!(t["process"]["ppid"], parent["pid"], "{t}");
    let child = &t["process"]["children"][0];
    assert_eq!(
        (child["exit_code"].as_i64(), child["exit_signal"].as_u64()),
        (Some(0), Some(0)),
        "{t}"
    );
    check_text(&d.ctl(&["events", "tree", &id]), &base, pid);

    refusals(&d, &agent, &watched, &base);
    report_has_the_tree(&d, &agent, &rule, &base, pid);
}

/// A file event, an event never stored and malformed ids are refused, each saying why.
fn refusals(d: &Deployment, agent: &AgentHandle, watched: &std::path::Path, base: &str) {
    let name = format!("{base}-file");
    std::fs::write(watched.join(&name), b"x").unwrap();
    let file = stored(d, agent, "the file event", |e| {
        e.kind == "file" && e.summary.contains(&name)
    });
    let err = d.ctl_refused(&["events", "tree", &format!("{}:{}", agent.id, file.seq)]);
    assert!(
        err.contains("is a file event, not a process event"),
        "{err}"
    );
    let err = d.ctl_refused(&["events", "tree", &format!("{}:999999999", agent.id)]);
    assert!(
        err.contains("no event") && err.contains("NotFound"),
        "{err}"
    );
    for (bad, why) in [
        ("foo", "\"foo\" is not an event: use AGENT:SEQ"),
        ("a:b", "\"b\" is not a sequence number"),
    ] {
        let err = d.ctl_refused(&["events", "tree", bad]);
        assert!(err.contains(why), "{bad}: {err}");
    }
    let err = d.ctl_refused(&["events", "tree"]);
    assert!(err.contains("<EVENT>"), "{err}");
}

/// The report of the incident the middle shell raised carries its tree, in both formats.
fn report_has_the_tree(d: &Deployment, agent: &AgentHandle, rule: &str, base: &str, pid: u32) {
    let incident = poll(WAIT, || {
        let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id]);
        let a = alerts
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == rule)?
            .clone();
        Some(a["incident_id"].as_str()?.to_string())
    })
    .unwrap_or_else(|| panic!("no alert of {rule}"));
    let r: Value =
        serde_json::from_str(&d.ctl(&["incidents", "report", &incident, "--format", "json"]))
            .unwrap();
    let t = &r["process_tree"];
    assert_eq!(t["process"]["pid"], pid, "{r:#}");
    assert!(
        command(&t["process"]).contains(&format!("{base}-mid")),
        "{t}"
    );
    let md = d.ctl(&["incidents", "report", &incident]);
    assert!(md.contains("## Process tree"), "{md}");
    let tree = &md[md
        .find("```text")
        .unwrap_or_else(|| panic!("a tree in\n{md}"))..];
    check_text(&tree[..tree[7..].find("```").unwrap() + 7], base, pid);
}
