//! Four eyes with the real binaries: with `[people] four_eyes = true`, a person's isolation of
//! a protected host becomes a pending approval recorded with who asked; the one who asked and
//! a service account cannot decide it; another approver's decision sends the command as the
//! one who asked, and the audit log names both. An unprotected host is contained at once.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::Deployment;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The approval id in a four-eyes refusal.
fn approval_id(o: &Output) -> String {
    let text = stderr(o);
    let at = text.find("approval apr-").expect("an approval id") + "approval ".len();
    text[at..].split([',', ' ']).next().unwrap().to_string()
}

#[test]
fn a_protected_host_is_contained_only_after_a_second_person_approves() {
    let d = Deployment::loopback("[people]\nfour_eyes = true\n");
    let token = d.token_with_labels(&["cordon.protected=true"]);
    let db = d.enroll_agent_with(&token, "db", &[]);
    let alice = d.member("alice", "approver", &[]);
    let bob = d.member("bob", "approver", &[]);
    let soar = d.member("soar", "admin", &["--service"]);

    let asked = d.try_ctl_as(&alice.credential(), &["isolate", &db.id, "--wait", "1"]);
    assert!(!asked.status.success());
    assert!(
        stderr(&asked).contains("waits for a second person"),
        "{}",
        stderr(&asked)
    );
    let id = approval_id(&asked);
    assert!(
        d.isolations(&db.id).is_empty(),
        "nothing is sent before the approval"
    );

    let pending = d.ctl_list(&["approvals", "list"]);
    let a = pending
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap();
    assert_eq!(a["requested_by"], "alice");
    assert!(
        a["may_decide"]
            .as_str()
            .unwrap()
            .contains("other than alice"),
        "{a}"
    );
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("cordon.protected=true"),
        "{a}"
    );

    let own = d.try_ctl_as(&alice.credential(), &["approvals", "approve", &id]);
    assert!(
        stderr(&own).contains("your own request"),
        "{}",
        stderr(&own)
    );
    let machine = d.try_ctl_as(&soar.credential(), &["approvals", "approve", &id]);
    assert!(
        stderr(&machine).contains("only a person decides"),
        "{}",
        stderr(&machine)
    );
    assert!(
        d.isolations(&db.id).is_empty(),
        "refused decisions send nothing"
    );

    let yes = d.try_ctl_as(&bob.credential(), &["approvals", "approve", &id]);
    assert!(yes.status.success(), "{}", stderr(&yes));
    let sent = d.isolations(&db.id);
    assert_eq!(sent.len(), 1, "the approved isolation is sent once");
    assert_eq!(sent[0]["created_by"], "alice");

    let audit = d.ctl_list(&["audit", "--limit", "1000"]);
    let audit = audit.as_array().unwrap();
    let cmd = audit
        .iter()
        .find(|e| e["action"] == "command.isolate" && e["detail"]["approved_by"] == "bob");
    assert_eq!(cmd.expect("the command is audited")["actor"], "alice");
    let refused = |who: &str| {
        audit.iter().any(|e| {
            e["action"] == "approval.approve"
                && e["actor"] == who
                && e["outcome"].as_str().unwrap().starts_with("refused")
        })
    };
    assert!(
        refused("alice") && refused("soar"),
        "refused four-eyes attempts are audited"
    );
    let asked_entry = audit.iter().find(|e| {
        e["action"] == "command.isolate" && e["outcome"].as_str().unwrap().starts_with("pending")
    });
    assert_eq!(
        asked_entry.expect("the request is audited")["actor"],
        "alice"
    );
}

#[test]
fn an_unprotected_host_is_contained_without_waiting() {
    let d = Deployment::loopback("[people]\nfour_eyes = true\n");
    let web = d.enroll_agent("web", &[]);
    let alice = d.member("alice", "responder", &[]);
    let out = d.try_ctl_as(&alice.credential(), &["isolate", &web.id, "--wait", "1"]);
    assert!(!stderr(&out).contains("second person"), "{}", stderr(&out));
    let sent = d.isolations(&web.id);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["created_by"], "alice");
}

/// The release of a host that a playbook isolated for a critical incident waits for a second
/// person; once the incident is resolved, a release goes out at once. (Through the core: the
/// incident, the run and its isolation are written to the store as the playbook engine
/// writes them.)
#[tokio::test]
async fn releasing_a_host_a_playbook_isolated_for_a_critical_incident_waits() {
    use cordon_controller::core::{Admin, CommandRequest, CoreError};
    use cordon_controller::policy::grouping::Grouping;
    use cordon_controller::store::*;
    use cordon_proto::action;
    let c = cordon_tests::inproc::TestController::start_configured("[people]\nfour_eyes = true\n")
        .await;
    let host = c.enroll().await.id;
    let (store, now) = (&c.ctl.store, cordon_proto::time::now_ms());
    let event = StoredEvent {
        agent_id: host.clone(),
        seq: 1,
        time_ms: now,
        kind: "process".into(),
        summary: "exec".into(),
        body: vec![],
        received_at_ms: now,
    };
    let finding = Finding {
        rule: cordon_detect::RuleIdentity {
            rule_id: "r".into(),
            title: "reverse shell".into(),
            level: "critical".into(),
            tags: vec![],
            author: "a".into(),
        },
        source: "sigma".into(),
        detail: String::new(),
    };
    let grouping = Grouping {
        alert_window_ms: 60_000,
        incident_window_ms: 60_000,
    };
    let ingested = store
        .ingest(vec![event], vec![vec![finding]], Some(grouping))
        .await;
    let change = ingested.unwrap().1.remove(0);
    let run = RunRow {
        id: "run-1".into(),
        playbook: "contain".into(),
        source: "steps: []".into(),
        alert_id: change.alert_id.clone(),
        incident_id: change.incident_id.clone(),
        agent_id: host.clone(),
        dry_run: false,
        status: RunStatus::Succeeded,
        step: 1,
        started_at_ms: now,
        updated_at_ms: now,
    };
    assert!(store.create_run(run).await.unwrap());
    let step = StepRow {
        idx: 0,
        name: "isolate".into(),
        action: "isolate_host".into(),
        status: StepStatus::Succeeded,
        detail: String::new(),
        command_id: String::new(),
        started_at_ms: now,
        finished_at_ms: now,
    };
    store.put_step("run-1".into(), step).await.unwrap();
    store
        .set_isolation_desired(host.clone(), true)
        .await
        .unwrap();

    let alice = Admin {
        name: "alice".into(),
        kind: cordon_controller::policy::people::Kind::User,
        role: cordon_controller::policy::roles::Role::Responder,
        serial: "01".into(),
    };
    let release = || CommandRequest {
        agent: host.clone(),
        action: Some(action::Kind::Release(Default::default())),
        ttl_secs: 0,
        wait_secs: 0,
    };
    let waits = c.ctl.submit_as(&alice, release()).await.unwrap_err();
    assert!(matches!(waits, CoreError::AwaitsSecondPerson(_)), "{waits}");
    let (_, timeline, _) = store
        .incident(change.incident_id.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(
        timeline
            .iter()
            .any(|t| t.text.contains("requested by alice"))
    );

    store
        .set_incident_status(
            change.incident_id,
            IncidentStatus::Resolved,
            "bob".into(),
            now,
        )
        .await
        .unwrap();
    let sent = c.ctl.submit_as(&alice, release()).await.unwrap();
    assert_eq!(sent.created_by, "alice");
}
