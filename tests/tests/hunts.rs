//! Hunts end to end (issue #15), with real agents in a network namespace: a hunt by labels
//! reaches the agents online at once and an offline one when it returns; its results answer
//! "which hosts have this file"; a cancelled hunt is not run by an agent that returns later.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::{poll, require_root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn stop(agent: &mut AgentHandle) {
    if let Some(mut p) = agent.proc.take() {
        p.terminate();
    }
}

/// The hunt once `done` holds for it, within 30 s.
fn hunt_when(d: &Deployment, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll(Duration::from_secs(30), || {
        let h = d.ctl_json(&["hunts", "show", id]);
        done(&h).then_some(h)
    })
    .unwrap_or_else(|| panic!("hunt {id}: {}", d.ctl(&["hunts", "show", id])))
}

#[test]
fn a_hunt_reaches_every_chosen_agent_and_an_offline_one_on_its_return() {
    if !require_root("a_hunt_reaches_every_chosen_agent_and_an_offline_one_on_its_return") {
        return;
    }
    let d = Deployment::namespaces("");
    let mut blue1 = d.enroll_agent("blue1", &["team=blue"]);
    let mut blue2 = d.enroll_agent("blue2", &["team=blue"]);
    let mut red = d.enroll_agent("red", &["team=red"]);
    let mut late = d.enroll_agent("late", &["team=blue"]);
    for a in [&mut blue1, &mut blue2, &mut red] {
        d.start_agent(a);
        d.wait_online(a, true, Duration::from_secs(15));
    }

    let root = d.dir.path().join("planted");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("implant.bin"), b"not really malware\n").unwrap();
    let sha = "3849b75806d32556e6a71f8abb4c202c6820d3fb2263070e11bf663debf114fa"; // of the bytes above
    let root_arg = format!("root={}", root.display());
    let started = std::time::Instant::now();
    let created = d.ctl_json(&[
        "hunts",
        "create",
        "--collect",
        "files",
        &root_arg,
        "hash=true",
        "--labels",
        "team=blue",
    ]);
    let id = created["hunt_id"].as_str().unwrap().to_string();
    assert_eq!(created["targeted"], 3, "blue1, blue2 and late: {created}");
    assert_eq!(created["selector"], "labels:team=blue");

    let h = hunt_when(&d, &id, |h| h["answered"] == 2);
    // A figure for the closing note (`--nocapture`), polled every 100 ms through cordonctl.
    eprintln!(
        "figure: a hunt over 2 online real agents, from create to both answered: {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(h["pending"], 1, "late is offline: {h}");
    let pending: Vec<&Value> = h["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] != "succeeded")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["agent_id"], late.id.as_str());

    d.start_agent(&mut late);
    let h = hunt_when(&d, &id, |h| h["answered"] == 3);
    assert_eq!(
        (h["pending"].as_u64(), h["failed"].as_u64()),
        (Some(0), Some(0))
    );

    // Which hosts have this file hash: all three blue ones, none of the red.
    let rows = d.ctl(&["hunts", "results", &id, "--contains", sha, "--json"]);
    let hosts: BTreeSet<String> = rows
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["agent_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let blue: BTreeSet<String> = [&blue1.id, &blue2.id, &late.id]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(hosts, blue);
    assert_eq!(rows.lines().count(), 3, "one row per host: {rows}");
    let one = d.ctl(&["hunts", "results", &id, "--agent", &blue2.id, "--csv"]);
    assert!(one.starts_with("agent_id,command_id,row,"), "{one}");
    assert_eq!(
        one.lines().count(),
        2,
        "a header and blue2's one file: {one}"
    );
    let listed = d.ctl(&["hunts", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("3 answered"),
        "{listed}"
    );
    assert_eq!(d.audited("hunt.create").len(), 1);
}

#[test]
fn a_cancelled_hunt_is_not_run_by_an_agent_that_returns() {
    if !require_root("a_cancelled_hunt_is_not_run_by_an_agent_that_returns") {
        return;
    }
    let d = Deployment::namespaces("");
    let mut away = d.enroll_agent("away", &[]);
    let id = d.ctl_json(&[
        "hunts",
        "create",
        "--collect",
        "packages",
        "--agents",
        &away.id,
    ])["hunt_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cancelled = d.ctl_json(&["hunts", "cancel", &id]);
    assert_eq!(cancelled["expired"], 1, "{cancelled}");
    assert!(cancelled["cancelled_at_ms"].as_i64().unwrap() > 0);
    assert_eq!(d.audited("hunt.cancel").len(), 1);

    d.start_agent(&mut away);
    d.wait_online(&away, true, Duration::from_secs(15));
    // A round trip after the agent's hello: whatever was queued for it has gone out by now.
    d.ctl_json(&["ping", &away.id]);
    let h = d.ctl_json(&["hunts", "show", &id]);
    assert_eq!(
        (h["expired"].as_u64(), h["answered"].as_u64()),
        (Some(1), Some(0)),
        "{h}"
    );
    assert_eq!(h["agents"][0]["error"], "cancelled with its hunt");
    let rows = d.ctl(&["hunts", "results", &id, "--json"]);
    assert!(rows.is_empty(), "{rows}");
    stop(&mut away);

    let err = d.ctl_refused(&["hunts", "create", "--collect", "nothing", "--all"]);
    assert!(err.contains("no collector is named \"nothing\""), "{err}");
    let err = d.ctl_refused(&["hunts", "create", "--collect", "packages"]);
    assert!(err.contains("one way"), "{err}");
    let err = d.ctl_refused(&[
        "hunts",
        "create",
        "--collect",
        "packages",
        "--all",
        "--expires",
        "8d",
    ]);
    assert!(err.contains("at most 168 hours"), "{err}");
    let err = d.ctl_refused(&["hunts", "show", "hunt-nope"]);
    assert!(err.contains("no hunt"), "{err}");
}
