//! The contract of the playbooks aggregate: playbooks with their time in force, runs (one
//! per playbook and alert) that round-trip with their steps, and approvals decided once.

use crate::store::{
    ApprovalRow, ApprovalStatus, PlaybookRow, PlaybookStore, RunRow, RunStatus, StepRow, StepStatus,
};

fn playbook(name: &str, source: &str, enabled: bool, at: i64) -> PlaybookRow {
    PlaybookRow {
        name: name.into(),
        origin: format!("playbooks/{name}.yml"),
        source: source.into(),
        enabled,
        updated_at_ms: at,
    }
}

/// Applying a playbook again unchanged keeps its time in force; a new text or a change of
/// enabled state restarts it; an unknown playbook cannot be enabled.
pub async fn playbooks<S: PlaybookStore>(s: &S) {
    let times = || async {
        let rows = s.playbooks().await.expect("playbooks");
        rows.into_iter()
            .map(|p| (p.name, p.enabled, p.updated_at_ms))
            .collect::<Vec<_>>()
    };
    let want = |v: &[(&str, bool, i64)]| {
        v.iter()
            .map(|(n, e, t)| (n.to_string(), *e, *t))
            .collect::<Vec<_>>()
    };
    s.upsert_playbook(playbook("z", "v1", true, 100))
        .await
        .expect("upsert");
    s.upsert_playbook(playbook("a", "v1", true, 100))
        .await
        .expect("upsert");
    s.upsert_playbook(playbook("z", "v1", true, 200))
        .await
        .expect("upsert");
    assert_eq!(
        times().await,
        want(&[("a", true, 100), ("z", true, 100)]),
        "by name"
    );
    s.upsert_playbook(playbook("z", "v2", true, 300))
        .await
        .expect("upsert");
    assert_eq!(times().await[1], want(&[("z", true, 300)])[0]);
    assert_eq!(s.playbooks().await.expect("playbooks")[1].source, "v2");

    assert!(
        s.set_playbook_enabled("a".into(), true, 400)
            .await
            .expect("enable")
    );
    assert!(
        s.set_playbook_enabled("z".into(), false, 500)
            .await
            .expect("disable")
    );
    assert_eq!(times().await, want(&[("a", true, 100), ("z", false, 500)]));
    assert!(
        !s.set_playbook_enabled("nope".into(), true, 600)
            .await
            .expect("enable")
    );
}

fn run(id: &str, alert: &str, started_at_ms: i64) -> RunRow {
    RunRow {
        id: id.into(),
        playbook: "contain".into(),
        source: "steps: []".into(),
        alert_id: alert.into(),
        incident_id: "inc-1".into(),
        agent_id: "h1".into(),
        dry_run: false,
        status: RunStatus::Running,
        step: 0,
        started_at_ms,
        updated_at_ms: started_at_ms,
    }
}

fn step(idx: usize, action: &str, status: StepStatus, at: i64) -> StepRow {
    StepRow {
        idx,
        name: format!("step {idx}"),
        action: action.into(),
        status,
        detail: String::new(),
        command_id: String::new(),
        started_at_ms: at,
        finished_at_ms: 0,
    }
}

/// A playbook runs once per alert; a run round-trips with its state; unfinished runs are
/// what is left to resume; an incident's runs, and the newest runs, come with their steps in
/// order.
pub async fn runs<S: PlaybookStore>(s: &S) {
    assert!(
        s.create_run(run("run-1", "alr-1", 10))
            .await
            .expect("create")
    );
    let twice = s
        .create_run(run("run-2", "alr-1", 11))
        .await
        .expect("create");
    assert!(!twice, "once per alert");
    assert!(
        s.create_run(run("run-3", "alr-2", 12))
            .await
            .expect("create")
    );
    s.put_step("run-1".into(), step(1, "notify", StepStatus::Running, 30))
        .await
        .expect("step");
    s.put_step("run-1".into(), step(0, "notify", StepStatus::Succeeded, 20))
        .await
        .expect("step");
    s.set_run("run-1".into(), RunStatus::Succeeded, 2, 40)
        .await
        .expect("set");

    let unfinished = s.unfinished_runs().await.expect("unfinished");
    assert_eq!(unfinished, [run("run-3", "alr-2", 12)]);
    let runs = s.runs_for_incident("inc-1".into()).await.expect("runs");
    let ids: Vec<&str> = runs.iter().map(|r| r.0.id.as_str()).collect();
    assert_eq!(ids, ["run-1", "run-3"], "oldest first");
    let ended = RunRow {
        status: RunStatus::Succeeded,
        step: 2,
        updated_at_ms: 40,
        ..run("run-1", "alr-1", 10)
    };
    assert_eq!(runs[0].0, ended);
    let steps: Vec<usize> = runs[0].1.iter().map(|s| s.idx).collect();
    assert_eq!(steps, [0, 1]);
    assert!(
        s.runs_for_incident("inc-2".into())
            .await
            .expect("runs")
            .is_empty()
    );
    let recent = s.recent_runs(1).await.expect("recent");
    let ids: Vec<&str> = recent.iter().map(|r| r.0.id.as_str()).collect();
    assert_eq!(ids, ["run-3"], "newest first, at most the limit");
    let all = s.recent_runs(10).await.expect("recent");
    assert_eq!((all.len(), all[1].1.len()), (2, 2), "with their steps");
}

/// A step's later writes change its outcome, not its name, action or start; automatic
/// steps are counted by action, status and start.
pub async fn steps<S: PlaybookStore>(s: &S) {
    for (id, alert) in [("run-1", "alr-1"), ("run-3", "alr-3")] {
        s.create_run(run(id, alert, 1)).await.expect("create");
    }
    let started = step(0, "isolate_host", StepStatus::Running, 20);
    s.put_step("run-1".into(), started.clone())
        .await
        .expect("step");
    let done = StepRow {
        name: "renamed".into(),
        status: StepStatus::Succeeded,
        detail: "isolated".into(),
        command_id: "cmd-1".into(),
        started_at_ms: 99,
        finished_at_ms: 25,
        ..started.clone()
    };
    s.put_step("run-1".into(), done.clone())
        .await
        .expect("step");
    let want = StepRow {
        name: started.name,
        started_at_ms: 20,
        ..done
    };
    assert_eq!(s.step("run-1".into(), 0).await.expect("step"), Some(want));
    assert_eq!(s.step("run-1".into(), 7).await.expect("step"), None);

    let failed = step(0, "isolate_host", StepStatus::Failed, 50);
    s.put_step("run-3".into(), failed).await.expect("step");
    let isolations = |since| async move {
        let counted = vec![StepStatus::Running, StepStatus::Succeeded];
        let n = s.count_steps("isolate_host".into(), counted, since).await;
        n.expect("count")
    };
    assert_eq!(isolations(0).await, 1, "failed ones do not count");
    assert_eq!(isolations(21).await, 0, "nor earlier ones");
}

fn approval(id: &str, run_id: &str, requested_at_ms: i64) -> ApprovalRow {
    ApprovalRow {
        id: id.into(),
        run_id: run_id.into(),
        idx: 1,
        incident_id: format!("inc-{run_id}"),
        agent_id: "h1".into(),
        what: "isolate h1".into(),
        reason: "critical alert".into(),
        status: ApprovalStatus::Pending,
        requested_at_ms,
        expires_at_ms: requested_at_ms + 1_000,
        decided_by: String::new(),
        decided_at_ms: 0,
        note: String::new(),
        requested_by: "playbook:contain".into(),
        action: None,
    }
}

/// A person's request: no run, the command to send once approved.
fn person_request(id: &str) -> ApprovalRow {
    ApprovalRow {
        run_id: String::new(),
        idx: 0,
        incident_id: String::new(),
        requested_by: "alice".into(),
        action: Some(vec![1, 2, 3]),
        ..approval(id, "", 40)
    }
}

/// Runs r1 and r2, each asking approval of its step 1: ap-1 at 10, ap-2 at 30.
async fn two_requests<S: PlaybookStore>(s: &S) {
    for (id, alert) in [("r1", "alr-1"), ("r2", "alr-2")] {
        s.create_run(run(id, alert, 1)).await.expect("create");
    }
    for (id, run_id, at) in [("ap-1", "r1", 10), ("ap-2", "r2", 30)] {
        let asked = s.request_approval(approval(id, run_id, at)).await;
        assert_eq!(asked.expect("request"), approval(id, run_id, at));
    }
}

/// Approval ids listed: pending ones only unless `all`, of one incident or all.
async fn listed<S: PlaybookStore>(s: &S, all: bool, incident: Option<&str>) -> Vec<String> {
    let rows = s.approvals(all, incident.map(String::from)).await;
    rows.expect("list").into_iter().map(|a| a.id).collect()
}

/// Asking twice for the same step's approval returns the first request; requests are
/// listed oldest first, by incident too.
pub async fn approval_requests<S: PlaybookStore>(s: &S) {
    two_requests(s).await;
    let again = s.request_approval(approval("ap-9", "r1", 20)).await;
    assert_eq!(
        again.expect("request"),
        approval("ap-1", "r1", 10),
        "asked once"
    );
    assert_eq!(s.approval("ap-9".into()).await.expect("get"), None);
    assert_eq!(listed(s, false, None).await, ["ap-1", "ap-2"]);
    assert_eq!(listed(s, true, Some("inc-r1")).await, ["ap-1"]);

    // People's requests have no run: each is its own, with who asked and what to send.
    for id in ["ap-p1", "ap-p2"] {
        let asked = s.request_approval(person_request(id)).await;
        assert_eq!(asked.expect("request"), person_request(id));
    }
    assert_eq!(
        listed(s, false, None).await,
        ["ap-1", "ap-2", "ap-p1", "ap-p2"]
    );
}

/// An approval is decided once, with who, when and why; a decided one is no longer pending.
pub async fn approval_decisions<S: PlaybookStore>(s: &S) {
    two_requests(s).await;
    let decide = |id: &str, status, by: &str| {
        s.decide_approval(id.into(), status, by.into(), "ok".into(), 50)
    };
    let approved = decide("ap-1", ApprovalStatus::Approved, "alice").await;
    let want = ApprovalRow {
        status: ApprovalStatus::Approved,
        decided_by: "alice".into(),
        decided_at_ms: 50,
        note: "ok".into(),
        ..approval("ap-1", "r1", 10)
    };
    assert_eq!(approved.expect("decide"), Some(want.clone()));
    let twice = decide("ap-1", ApprovalStatus::Denied, "bob").await;
    assert_eq!(twice.expect("decide"), None, "once");
    let unknown = decide("ap-nope", ApprovalStatus::Denied, "bob").await;
    assert_eq!(unknown.expect("decide"), None);
    assert_eq!(s.approval("ap-1".into()).await.expect("get"), Some(want));
    assert_eq!(listed(s, false, None).await, ["ap-2"]);
    assert_eq!(listed(s, true, None).await, ["ap-1", "ap-2"]);
}

/// Edge policy versions: 1 when new, the same for the same digest, one more for another, per
/// agent and policy; listed by agent.
pub async fn edge_versions<S: PlaybookStore>(s: &S) {
    let v = |agent: &str, id: &str, digest: &str| {
        s.edge_version(agent.into(), id.into(), digest.into())
    };
    assert_eq!(v("a1", "playbook:x", "d1").await.expect("version"), 1);
    assert_eq!(
        v("a1", "playbook:x", "d1").await.expect("version"),
        1,
        "same digest"
    );
    assert_eq!(
        v("a1", "playbook:x", "d2").await.expect("version"),
        2,
        "changed"
    );
    assert_eq!(
        v("a1", "playbook:x", "d1").await.expect("version"),
        3,
        "changed back"
    );
    assert_eq!(
        v("a2", "playbook:x", "d1").await.expect("version"),
        1,
        "per agent"
    );
    assert_eq!(
        v("a1", "blocklist", "b").await.expect("version"),
        1,
        "per policy"
    );
    let listed = s.edge_versions("a1".into()).await.expect("versions");
    assert_eq!(
        listed,
        [
            ("blocklist".to_string(), "b".to_string(), 1),
            ("playbook:x".to_string(), "d1".to_string(), 3)
        ]
    );
    assert!(
        s.edge_versions("nobody".into())
            .await
            .expect("versions")
            .is_empty()
    );
}
