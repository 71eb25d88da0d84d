//! For the migration's tests: a SQLite store filled through the store traits with rows of
//! every table, and everything a backend's traits show, in one comparable value.

use crate::policy::audit::AuditEntry;
use crate::policy::people::Kind as PrincipalKind;
use crate::policy::roles::Role;
use crate::store::conformance::{enrolled, event, exec};
use crate::store::{
    Agent, ApprovalRow, ApprovalStatus, Backend, Beat, CommandRow, CommandStatus, EventFilter,
    Finding, IncidentStatus, Invitation, PlaybookRow, PrincipalChange, RuleRow, RunRow, RunStatus,
    StepRow, StepStatus, TimelineRow,
};
use crate::store::{FetchedFileRow, FileChunkRow, RowFilter};
use std::time::Duration;

/// The token hashes and invite code hashes `fill` makes.
pub(super) const TOKENS: [&str; 3] = ["token-h1", "token-h2", "tok-spare"];
pub(super) const CODES: [&str; 2] = ["code-bob", "code-svc"];

fn finding(rule: &str) -> Finding {
    Finding {
        rule: cordon_detect::RuleIdentity {
            rule_id: rule.into(),
            title: format!("rule {rule}"),
            level: "high".into(),
            tags: vec!["attack.t1059".into()],
            author: "someone".into(),
        },
        source: "sigma".into(),
        detail: "matched".into(),
    }
}

/// A hunt on h1 that returned a row.
async fn hunt<S: Backend>(s: &S) {
    let command = CommandRow {
        id: "cmd-hunt".into(),
        agent_id: "h1".into(),
        kind: "collect".into(),
        envelope: vec![4, 2],
        created_at_ms: 120,
        expires_at_ms: 9_000,
        status: CommandStatus::Succeeded,
        delivered_at_ms: Some(121),
        completed_at_ms: Some(122),
        error: String::new(),
        result: Some(vec![1]),
        created_by: "admin".into(),
    };
    let hunt = crate::store::HuntRow {
        id: "hunt-1".into(),
        collector: "files".into(),
        args: vec!["root=/etc".into()],
        selector: "all".into(),
        created_by: "admin".into(),
        created_at_ms: 120,
        expires_at_ms: 9_000,
        cancelled_at_ms: Some(130),
    };
    s.create_hunt(hunt, vec![command]).await.expect("hunt");
    let row = r#"{"path":"/etc/é","size":3}"#.to_string();
    s.add_collection_rows("cmd-hunt".into(), "h1".into(), 0, vec![row])
        .await
        .expect("rows");
}

/// Fills `s` with rows of every kind, through its traits; returns the audit entries made.
pub(super) async fn fill<S: Backend>(s: &S) -> u64 {
    fleet(s).await;
    investigation(s).await;
    let incident = telemetry(s).await;
    detection(s).await;
    response(s, &incident).await;
    people(s).await;
    hunt(s).await;
    let mut made = 0;
    for (i, action) in ["token.create", "agent.revoke", "rule.disable"]
        .iter()
        .enumerate()
    {
        let entry = AuditEntry::new("admin", *action, format!("x:{i}"))
            .detail(serde_json::json!({ "n": i, "bytes": "\u{e9}\u{1f600}" }));
        s.append_audit(entry, 1_000 + i as i64)
            .await
            .expect("audit");
        made += 1;
    }
    made
}

/// A collection's row and a fetched file with its chunk, on commands `fleet` made, and an
/// edge policy's version.
async fn investigation<S: Backend>(s: &S) {
    let row = vec![r#"{"port":4444}"#.to_string()];
    s.add_collection_rows("cmd-2".into(), "h2".into(), 0, row)
        .await
        .expect("rows");
    let chunk = FileChunkRow {
        index: 0,
        offset: 0,
        data: vec![0, 255, 7],
    };
    s.add_file_chunk("cmd-3".into(), "h1".into(), chunk)
        .await
        .expect("chunk");
    let file = FetchedFileRow {
        id: "cmd-3".into(),
        agent_id: "h1".into(),
        path: "/tmp/x".into(),
        size: 3,
        sha256: "00".repeat(32),
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 5,
        fetched_at_ms: 6,
    };
    s.record_fetched_file(file).await.expect("file");
    for digest in ["d1", "d2"] {
        let id = "playbook:reverse-shell";
        s.edge_version("h1".into(), id.into(), digest.into())
            .await
            .expect("edge version");
    }
}

async fn fleet<S: Backend>(s: &S) {
    for id in ["h1", "h2"] {
        enrolled(s, id).await;
    }
    let labels = [("team".to_string(), "web".to_string())].into();
    assert!(
        s.set_agent_labels("h1".into(), labels)
            .await
            .expect("labels")
    );
    let hb = cordon_proto::Heartbeat {
        process_sensor: "ebpf".into(),
        containment: Some(cordon_proto::ContainmentState {
            isolation_desired: true,
            isolation_ruleset_hash: "ab".into(),
            ..Default::default()
        }),
        metrics: Some(cordon_proto::AgentMetrics {
            cpu_percent: 0.5,
            rss_bytes: 1 << 20,
            ..Default::default()
        }),
        ..Default::default()
    };
    let beat = Beat {
        agent_id: "h1".into(),
        now_ms: 50,
        heartbeat: hb,
    };
    s.agent_heartbeats(vec![beat]).await.expect("heartbeat");
    s.set_isolation_desired("h1".into(), true)
        .await
        .expect("isolate");
    s.agent_renewed("h1".into(), "02".into(), 99)
        .await
        .expect("renew");
    s.create_token(
        TOKENS[2].into(),
        5,
        500,
        3,
        Default::default(),
        "admin".into(),
    )
    .await
    .expect("token");
    for (id, agent) in [("cmd-1", "h1"), ("cmd-2", "h2"), ("cmd-3", "h1")] {
        let row = CommandRow {
            id: id.into(),
            agent_id: agent.into(),
            kind: "isolate".into(),
            envelope: vec![0, 1, 2, 255],
            created_at_ms: 10,
            expires_at_ms: 1_000,
            status: CommandStatus::Pending,
            delivered_at_ms: None,
            completed_at_ms: None,
            error: String::new(),
            result: None,
            created_by: "admin".into(),
        };
        s.insert_command(row).await.expect("command");
    }
    s.mark_delivered("cmd-1".into(), 11)
        .await
        .expect("delivered");
    let done = s.complete_command(
        "cmd-1".into(),
        "h1".into(),
        CommandStatus::Succeeded,
        String::new(),
        vec![9, 0, 9],
        12,
    );
    done.await.expect("complete");
    s.revoke_agent("h2".into(), 60).await.expect("revoke");
}

/// Events (a process tree, one before the epoch and one years ahead), with findings that
/// raise alerts in an incident; returns the incident.
async fn telemetry<S: Backend>(s: &S) -> String {
    let batch = vec![
        exec("h1", 1, (100, 1, 5), "/bin/sh -c id"),
        exec("h1", 2, (101, 100, 6), "id"),
        event("h1", 3, -86_400_001, "file", "create /tmp/old"),
        event(
            "h1",
            4,
            40_000_000_000_000,
            "network",
            "connect 10.0.0.1:443",
        ),
    ];
    let findings = vec![
        vec![finding("r1")],
        vec![finding("r1"), finding("r2")],
        vec![],
        vec![],
    ];
    let grouping = crate::policy::grouping::Grouping {
        alert_window_ms: i64::MAX / 4,
        incident_window_ms: i64::MAX / 4,
    };
    let ingested = s
        .ingest(batch, findings, Some(grouping))
        .await
        .expect("ingest");
    let incident = ingested.1[0].incident_id.clone();
    let note = TimelineRow {
        at_ms: 70,
        kind: "note".into(),
        actor: "admin".into(),
        text: "looking".into(),
        reference: "cmd-1".into(),
    };
    s.add_timeline(incident.clone(), note).await.expect("note");
    s.set_incident_severity(incident.clone(), "critical".into())
        .await
        .expect("severity");
    let status = s.set_incident_status(
        incident.clone(),
        IncidentStatus::Contained,
        "admin".into(),
        80,
    );
    status.await.expect("status");
    incident
}

async fn detection<S: Backend>(s: &S) {
    let rule = |id: &str| RuleRow {
        id: id.into(),
        title: format!("rule {id}"),
        level: "high".into(),
        status: "stable".into(),
        author: "someone".into(),
        tags: vec!["attack.t1059".into()],
        logsource: "linux/process_creation".into(),
        origin: format!("rules/{id}.yml"),
        source: format!("title: rule {id}\n"),
        enabled: true,
        imported_at_ms: 5,
    };
    s.upsert_rules(vec![rule("r1"), rule("r2")])
        .await
        .expect("rules");
    s.set_rule_enabled("r2".into(), false)
        .await
        .expect("disable");
    let values = vec!["10.0.0.1".to_string(), "192.0.2.7".to_string()];
    s.add_iocs("ip".into(), "bad".into(), values, 6)
        .await
        .expect("iocs");
    s.add_iocs("sha256".into(), "miners".into(), vec!["ab".repeat(32)], 6)
        .await
        .expect("iocs");
    s.mark_block_list("sha256".into(), "miners".into())
        .await
        .expect("block list");
}

async fn response<S: Backend>(s: &S, incident: &str) {
    let playbook = PlaybookRow {
        name: "contain".into(),
        origin: "playbooks/contain.yml".into(),
        source: "steps: []".into(),
        enabled: true,
        updated_at_ms: 7,
    };
    s.upsert_playbook(playbook).await.expect("playbook");
    let run = RunRow {
        id: "run-1".into(),
        playbook: "contain".into(),
        source: "steps: []".into(),
        alert_id: "alr-1".into(),
        incident_id: incident.into(),
        agent_id: "h1".into(),
        dry_run: true,
        status: RunStatus::Running,
        step: 0,
        started_at_ms: 90,
        updated_at_ms: 90,
    };
    assert!(s.create_run(run).await.expect("run"));
    let step = StepRow {
        idx: 0,
        name: "isolate".into(),
        action: "isolate".into(),
        status: StepStatus::Succeeded,
        detail: "done".into(),
        command_id: "cmd-3".into(),
        started_at_ms: 91,
        finished_at_ms: 92,
    };
    s.put_step("run-1".into(), step).await.expect("step");
    s.set_run("run-1".into(), RunStatus::WaitingApproval, 1, 93)
        .await
        .expect("set");
    let wait = Duration::from_secs(60);
    let mut asked = ApprovalRow::pending(
        "playbook:contain".into(),
        "h1".into(),
        "kill".into(),
        "r1".into(),
        94,
        wait,
    );
    (asked.run_id, asked.idx, asked.incident_id) = ("run-1".into(), 1, incident.into());
    s.request_approval(asked).await.expect("approval");
    let mut person = ApprovalRow::pending(
        "alice".into(),
        "h1".into(),
        "release".into(),
        "ok".into(),
        95,
        wait,
    );
    person.action = Some(vec![8, 1]);
    let person = s.request_approval(person).await.expect("request");
    let decided = s.decide_approval(
        person.id,
        ApprovalStatus::Approved,
        "admin".into(),
        "fine".into(),
        96,
    );
    decided.await.expect("decide");
}

async fn people<S: Backend>(s: &S) {
    for (name, kind, code) in [
        ("bob", PrincipalKind::User, CODES[0]),
        ("svc", PrincipalKind::Service, CODES[1]),
    ] {
        let invite = Invitation {
            name: name.into(),
            kind,
            role: Role::Responder,
            expires_at_ms: Some(10_000),
            created_by: "admin".into(),
            code_hash: code.into(),
            code_expires_at_ms: 5_000,
        };
        assert!(s.invite(invite, 100).await.expect("invite"));
    }
    s.redeem_invite(CODES[0].into(), "0a".into(), 101)
        .await
        .expect("redeem")
        .expect("redeemed");
    let changes = [
        (
            "bob",
            PrincipalChange::SetPassword("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA".into()),
        ),
        (
            "bob",
            PrincipalChange::SetTotp(Some("JBSWY3DPEHPK3PXP".into())),
        ),
        ("svc", PrincipalChange::Revoke),
    ];
    for (name, change) in changes {
        s.change_principal(name.into(), change, 102)
            .await
            .expect("change")
            .expect("changed");
    }
}

/// What a store shows through its traits. Rows that lack `PartialEq` are compared by their
/// `Debug` text (none of them holds a map, whose order could differ).
#[derive(Debug, PartialEq)]
pub(super) struct Contents {
    agents: Vec<Agent>,
    shown: Vec<(&'static str, String)>,
}

pub(super) async fn contents<S: Backend>(s: &S) -> Contents {
    let mut shown = Vec::new();
    let mut show = |what, v: &dyn std::fmt::Debug| shown.push((what, format!("{v:#?}")));
    show("revoked", &s.revoked_agent_ids().await.expect("revoked"));
    for t in TOKENS {
        show("token", &s.check_token(t.into(), 10).await.expect("token"));
    }
    show("commands", &s.commands(None, 100).await.expect("commands"));
    let rows = RowFilter {
        command_ids: vec!["cmd-2".into()],
        limit: 10,
        ..Default::default()
    };
    show("rows", &s.collection_rows(rows).await.expect("rows"));
    show(
        "chunk",
        &s.file_chunk("cmd-3".into(), 0).await.expect("chunk"),
    );
    show("files", &s.fetched_files(None, 10).await.expect("files"));
    let edge = s.edge_versions("h1".into()).await.expect("edge versions");
    show("edge versions", &edge);
    let all = EventFilter {
        limit: 100,
        ..Default::default()
    };
    show("events", &s.query_events(all).await.expect("events"));
    show(
        "alerts",
        &s.alerts(i64::MIN, 0, None, 100).await.expect("alerts"),
    );
    let incidents = s.incidents(None, 100).await.expect("incidents");
    for i in &incidents {
        show(
            "incident",
            &s.incident(i.id.clone()).await.expect("incident"),
        );
    }
    show("incidents", &incidents);
    show("rules", &s.rules().await.expect("rules"));
    show("iocs", &s.iocs().await.expect("iocs"));
    show("blocked", &s.blocked_sha256().await.expect("blocked"));
    show("playbooks", &s.playbooks().await.expect("playbooks"));
    show("runs", &s.recent_runs(100).await.expect("runs"));
    show(
        "approvals",
        &s.approvals(true, None).await.expect("approvals"),
    );
    let principals = s.principals().await.expect("principals");
    for p in &principals {
        show(
            "secrets",
            &s.sign_in_secrets(p.name.clone()).await.expect("secrets"),
        );
    }
    show("principals", &principals);
    for c in CODES {
        show("invite", &s.invited_name(c.into()).await.expect("invite"));
    }
    show("audit", &s.audit(i64::MIN, 100, None).await.expect("audit"));
    show("hunts", &s.hunts(100).await.expect("hunts"));
    show(
        "hunt commands",
        &s.hunt_commands("hunt-1".into()).await.expect("hunt"),
    );
    let rows = crate::store::RowFilter {
        hunt_id: Some("hunt-1".into()),
        limit: 100,
        ..Default::default()
    };
    show("rows", &s.collection_rows(rows).await.expect("rows"));
    Contents {
        agents: s.agents().await.expect("agents"),
        shown,
    }
}
