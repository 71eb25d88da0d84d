//! Several controllers on one PostgreSQL store (a private cluster the tests start): a
//! command issued through one replica reaches an agent connected to the other, revocation
//! through one holds on both, singleton work runs on one replica, and the agents of a
//! replica that died are marked offline by another, and a playbook run a replica that died
//! was waiting on is finished by another, once.

#![allow(clippy::unwrap_used)]

use cordon_tests::burst::{Burst, assert_all_stored_once, logs, online_watching};
use cordon_tests::replicas::{Replica, on_postgres};
use cordon_tests::repo::{
    apply, approval_playbook, detection_config as detection, marker, own_rule,
};
use cordon_tests::{poll, require_root, within};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_command_issued_through_one_replica_reaches_an_agent_on_the_other() {
    let Some((d, _)) = on_postgres("replicas_command", "") else {
        return;
    };
    let b = Replica::beside(&d);
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    assert_eq!(b.ctl_json(&["agents", "show", &agent.id])["online"], true);

    // Through B, to the agent whose stream is open on A; the result is on both.
    let pong = b.ctl_json(&["ping", &agent.id]);
    assert_eq!(pong["agent_id"], agent.id.as_str());
    let id = pong["command_id"].as_str().unwrap().to_string();
    assert_eq!(
        d.ctl_json(&["commands", "show", &id])["status"],
        "succeeded"
    );
    assert_eq!(
        b.ctl_json(&["commands", "show", &id])["status"],
        "succeeded"
    );

    // Revoked through B: A closes the stream and refuses the agent's reconnection.
    b.ctl(&["agents", "revoke", &agent.id]);
    let refused = within(Duration::from_secs(15), || {
        std::fs::read_to_string(d.controller_log())
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("refused handshake from a revoked agent") && l.contains(&agent.id))
    });
    assert!(
        refused,
        "A never refused the revoked agent:\n{}",
        agent.log_text()
    );
    // The closed stream's end is recorded as it unwinds, which may trail the refusal.
    assert!(
        within(
            Duration::from_secs(10),
            || d.agent_record(&agent.id)["online"] == false
        ),
        "the revoked agent is still shown online"
    );

    // A person revoked through B is refused by A at once.
    let bob = d.member("bob", "analyst", &[]);
    assert!(
        d.try_ctl_as(&bob.credential(), &["agents", "list"])
            .status
            .success()
    );
    b.ctl(&["users", "revoke", "bob"]);
    let shut_out = within(Duration::from_secs(5), || {
        !d.try_ctl_as(&bob.credential(), &["agents", "list"])
            .status
            .success()
    });
    assert!(shut_out, "A still serves a person revoked through B");
}

#[test]
fn an_agent_fails_over_to_the_other_replica_when_its_dies_mid_burst_losing_nothing() {
    let Some((mut d, _)) = on_postgres("replicas_failover", "") else {
        return;
    };
    let b = Replica::beside(&d);
    let (agent, watch) = online_watching(&d, &[&d.url, &b.url]);

    const N: usize = 3000;
    let Burst {
        files,
        maker,
        flowing,
    } = Burst::start(&d, &agent, &watch, N);
    d.kill9_controller();
    let killed = Instant::now();
    assert!(flowing, "events never flowed\n{}", logs(&d, &agent));
    // Connected to B: a ping through B is answered (B holds the stream; A is gone).
    let answered = within(Duration::from_secs(30), || {
        b.try_ctl(&["ping", &agent.id, "--wait", "3"])
            .status
            .success()
    });
    assert!(
        answered,
        "the agent never came online through B:\n{}",
        agent.log_text()
    );
    eprintln!(
        "agent online through B {:?} after A was killed",
        killed.elapsed()
    );
    assert_eq!(maker.join().unwrap(), N);
    // A comes back as a replica too; every event is in the shared store once.
    d.start_controller();
    assert_all_stored_once(&d, &agent, &files, N);
}

#[test]
fn command_expiry_runs_on_one_replica_at_a_time() {
    let Some((d, _)) = on_postgres("replicas_expiry", "command_ttl_secs = 1") else {
        return;
    };
    let b = Replica::beside(&d);
    let agent = d.enroll_agent("offline", &[]);
    // Queued through either replica for an agent that never connects: each expires.
    let mut ids = Vec::new();
    for (i, replica_b) in [false, true, false, true].into_iter().enumerate() {
        let args = ["ping", agent.id.as_str(), "--wait", "1"];
        let out = if replica_b {
            b.try_ctl(&args)
        } else {
            d.try_ctl(&args)
        };
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let id = err
            .split_whitespace()
            .find(|w| w.starts_with("cmd-"))
            .unwrap_or_else(|| panic!("command {i}: {err}"))
            .trim_end_matches([',', '.', ':'])
            .to_string();
        ids.push(id);
    }
    for id in &ids {
        let expired = poll(Duration::from_secs(15), || {
            let c = b.ctl_json(&["commands", "show", id]);
            (c["status"] == "expired").then_some(())
        });
        assert!(expired.is_some(), "{id} never expired");
    }
    // One replica held the expiry lease throughout: every expiry is logged there, once.
    let logs = [
        std::fs::read_to_string(d.controller_log()).unwrap(),
        b.log_text(),
    ];
    let counts: Vec<Vec<usize>> = logs
        .iter()
        .map(|log| {
            ids.iter()
                .map(|id| {
                    log.lines()
                        .filter(|l| l.contains("command expired") && l.contains(id.as_str()))
                        .count()
                })
                .collect()
        })
        .collect();
    let once = vec![1; ids.len()];
    let none = vec![0; ids.len()];
    assert!(
        (counts[0] == once && counts[1] == none) || (counts[0] == none && counts[1] == once),
        "expiries logged per replica: {counts:?}"
    );
}

#[test]
fn the_agents_of_a_replica_that_died_are_marked_offline_by_another() {
    let Some((mut d, _)) = on_postgres("replicas_presence", "agent_idle_timeout_secs = 5") else {
        return;
    };
    let b = Replica::beside(&d);
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    d.kill9_controller();
    // A never said goodbye; B sees the agent silent past the idle timeout.
    let offline = poll(Duration::from_secs(30), || {
        let rec = b.ctl_json(&["agents", "show", &agent.id]);
        (rec["online"] == false).then_some(())
    });
    assert!(
        offline.is_some(),
        "B still shows the agent online:\n{}",
        b.log_text()
    );
    assert!(b.log_text().contains("silent past the idle timeout"));
}

#[test]
fn a_run_waiting_on_a_replica_that_died_is_taken_over_and_completes_once() {
    if !require_root("a_run_waiting_on_a_replica_that_died_is_taken_over_and_completes_once") {
        return;
    }
    let Some((mut d, _)) = on_postgres("replicas_run", &detection("")) else {
        return;
    };
    let b = Replica::beside(&d);
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    // Rule and playbook go in through A; B learns of both through the store.
    let m = marker("takeover");
    let rule = own_rule(&d, &m);
    apply(&d, "patient", &approval_playbook("patient", &rule, 300));
    let listed = b.ctl_list(&["playbooks", "list"]);
    assert!(listed.to_string().contains("\"patient\""), "{listed}");
    let _ = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("echo aWQK | base64 -d | sh >/dev/null # {m}"),
        ])
        .status();
    let pending = poll(Duration::from_secs(30), || {
        b.ctl_list(&["approvals", "list"])
            .as_array()?
            .first()
            .cloned()
    })
    .expect("an approval pending");
    let (id, incident) = (
        pending["id"].as_str().unwrap(),
        pending["incident_id"].as_str().unwrap(),
    );

    // A dies with the run waiting; B takes it over once its claim lapses.
    d.kill9_controller();
    b.ctl(&["approvals", "approve", id]);
    let text = poll(Duration::from_secs(60), || {
        let t = timeline(&b.ctl_json(&["incidents", "show", incident]));
        t.contains("playbook patient finished").then_some(t)
    })
    .unwrap_or_else(|| panic!("the run was never finished by B:\n{}", b.log_text()));
    assert_eq!(
        b.ctl_json(&["incidents", "show", incident])["severity"],
        "critical"
    );
    for once in [
        "playbook patient started",
        "playbook patient finished",
        "step 2 set_incident",
    ] {
        assert_eq!(text.matches(once).count(), 1, "{once}:\n{text}");
    }
    assert!(
        b.log_text().contains("took over playbook runs"),
        "{}",
        b.log_text()
    );
}

fn timeline(inc: &serde_json::Value) -> String {
    inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} {} {}\n", t["kind"], t["actor"], t["text"]))
        .collect()
}
