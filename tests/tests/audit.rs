//! End-to-end: the audit log with the real binaries. Admin actions (and an enrolment) show up
//! in `cordonctl audit` with who did them and how they went; `cordonctl audit verify` passes;
//! an entry edited in the controller's SQLite file (around the triggers) is named by
//! `audit verify`, which exits non-zero.

#![allow(clippy::unwrap_used)]

use cordon_tests::deploy::Deployment;
use serde_json::Value;
use std::time::Duration;

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// (actor, action, outcome) of each entry.
fn summary(entries: &[Value]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (s("actor"), s("action"), s("outcome"))
        })
        .collect()
}

#[test]
fn admin_actions_are_audited_and_verify_catches_an_edited_entry() {
    let mut d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    d.ctl_json(&["ping", &agent.id]);
    let unknown = d.try_ctl(&["agents", "revoke", "ffffffffffffffffffffffffffffffff"]);
    assert!(!unknown.status.success());
    d.ctl(&["agents", "revoke", &agent.id]);

    let listed = d.ctl_list(&["audit"]);
    let entries = listed.as_array().unwrap();
    let own = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary(entries),
        [
            own("admin", "token.create", "ok"),
            own("enrolment", "agent.enroll", "ok"),
            own("admin", "command.ping", "succeeded"),
            own(
                "admin",
                "agent.revoke",
                "refused: no agent \"ffffffffffffffffffffffffffffffff\""
            ),
            own("admin", "agent.revoke", "ok"),
        ],
        "{listed:#}"
    );
    let agent_target = format!("agent:{}", agent.id);
    let token_target = entries[0]["target"].as_str().unwrap();
    assert!(token_target.starts_with("token:"), "{token_target}");
    assert_eq!(entries[1]["target"], agent_target.as_str());
    assert_eq!(entries[1]["detail"]["token"], token_target);
    let ping = &entries[2];
    assert_eq!(ping["target"], agent_target.as_str());
    let command_id = ping["detail"]["command_id"].as_str().unwrap();
    assert_eq!(
        d.ctl_json(&["commands", "show", command_id])["kind"],
        "ping"
    );
    assert_eq!(entries[4]["target"], agent_target.as_str());
    assert_eq!(entries[4]["detail"]["was_online"], true);
    // Numbered from 1 without gaps, each holding the hash of the one before.
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
        if i > 0 {
            assert_eq!(e["prev_hash"], entries[i - 1]["hash"]);
        }
    }
    // --since keeps the entries from a time on.
    let since = ping["time_ms"].as_i64().unwrap().to_string();
    let later = d.ctl_list(&["audit", "--since", &since]);
    let later_seqs: Vec<u64> = later
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(later_seqs, [3, 4, 5]);
    let table = d.ctl(&["audit"]);
    assert!(
        table.contains("command.ping") && table.contains(command_id),
        "{table}"
    );

    let verified = d.ctl(&["audit", "verify"]);
    assert!(verified.starts_with("ok: 5 entries"), "{verified}");

    // Edit the ping's detail in the database file: the trigger refuses, so drop it first.
    d.stop_controller();
    let db = rusqlite::Connection::open(d.data_dir.join("cordon.db")).unwrap();
    let refused = db
        .execute(
            "UPDATE audit SET detail = '{\"command_id\":\"cmd-forged\"}' WHERE seq = 3",
            [],
        )
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    db.execute_batch(
        "DROP TRIGGER audit_no_update;
         UPDATE audit SET detail = '{\"command_id\":\"cmd-forged\"}' WHERE seq = 3;",
    )
    .unwrap();
    drop(db);
    d.start_controller();

    let failed = d.try_ctl(&["audit", "verify"]);
    assert!(!failed.status.success(), "{}", text(&failed.stdout));
    let why = text(&failed.stderr);
    assert!(
        why.contains("at entry 3: its hash does not match its content"),
        "{why}"
    );
    let report = d.try_ctl(&["audit", "verify", "--json"]);
    assert!(!report.status.success());
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad_seq"], 3);
    assert_eq!(report["entries_checked"], 3);

    // The log goes on after the edit, and verify keeps naming the edited entry.
    d.ctl(&["token", "create"]);
    let after = d.ctl_list(&["audit", "--limit", "1"]);
    assert_eq!(after[0]["seq"], 6);
    assert_eq!(after[0]["action"], "token.create");
    let again = d.try_ctl(&["audit", "verify"]);
    assert!(text(&again.stderr).contains("at entry 3:"));
}

#[test]
fn a_command_is_audited_even_when_the_admin_hangs_up_while_waiting() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    // The agent is not running: the command waits, and the admin gives up.
    let mut ping = cordon_tests::binaries::Proc::spawn(
        "cordonctl ping",
        {
            let mut cmd = std::process::Command::new(cordon_tests::binaries::bin("cordonctl"));
            cmd.env("CORDON_ADMIN", d.data_dir.join("admin.toml"))
                .args(["ping", &agent.id, "--wait", "60"]);
            cmd
        },
        d.dir.path().join("ping.log"),
    );
    let queued = cordon_tests::poll(Duration::from_secs(10), || {
        let c = d.ctl_list(&["commands", "list"]);
        (c.as_array().unwrap().len() == 1).then_some(())
    });
    assert!(queued.is_some(), "the ping was never queued");
    ping.kill9();

    d.start_agent(&mut agent);
    let entry = cordon_tests::poll(Duration::from_secs(20), || {
        let all = d.ctl_list(&["audit"]);
        all.as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "command.ping")
            .cloned()
    })
    .unwrap_or_else(|| panic!("no audit entry for the ping: {}", d.ctl(&["audit"])));
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["outcome"], "succeeded");
    d.ctl(&["audit", "verify"]);
}
