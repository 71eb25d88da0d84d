//! Steps that wait for a person: approve, deny and time-out, the isolation budget, protected
//! hosts; a dry run; and a run resumed after a restart.

use super::*;
use crate::store::pg::PgStore;
use crate::store::{Alerts, PlaybookStore};

const ASK_FIRST: &str = "
name: ask-first
trigger: {rules: [rule-1]}
steps:
  - action: wait_for_approval
    timeout_secs: 600
  - action: isolate_host
";

#[tokio::test]
async fn an_approved_step_goes_on_and_records_who_approved() {
    let h = Harness::new(5);
    h.install(ASK_FIRST);
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    let asked = h.asked(&incident).await;
    assert_eq!(asked.what, "continue the playbook");
    assert!(
        h.agent.sent().is_empty(),
        "nothing is sent before the approval"
    );

    h.decide(&asked, ApprovalStatus::Approved, "alice", "go")
        .await;
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(steps[0].detail, "approved by alice (go)");
    assert_eq!(h.agent.kinds(), ["isolate"]);
    let decided = h.store.approval(asked.id).await.unwrap().unwrap();
    assert_eq!(
        (decided.status.as_str(), decided.decided_by.as_str()),
        ("approved", "alice")
    );
}

#[tokio::test]
async fn a_denied_step_aborts_the_run_and_sends_nothing() {
    let h = Harness::new(5);
    h.install(ASK_FIRST);
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    let asked = h.asked(&incident).await;
    h.decide(&asked, ApprovalStatus::Denied, "bob", "false positive")
        .await;
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(statuses(&steps), [("wait_for_approval", "denied")]);
    assert_eq!(steps[0].detail, "denied by bob: false positive");
    assert!(h.agent.sent().is_empty());
    let (_, _, timeline) = h.incident(&incident).await;
    assert!(
        timeline
            .iter()
            .any(|t| t == "playbook ask-first aborted at step wait_for_approval")
    );
}

#[tokio::test]
async fn an_approval_that_times_out_aborts_or_proceeds_as_configured() {
    let h = Harness::new(5);
    h.install(ASK_FIRST);
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    let asked = h.asked(&incident).await;
    h.clock.advance(Duration::from_secs(601));
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(statuses(&steps), [("wait_for_approval", "expired")]);
    let expired = h.store.approval(asked.id).await.unwrap().unwrap();
    assert_eq!(
        (expired.status.as_str(), expired.decided_by.as_str()),
        ("expired", "timeout")
    );
    assert!(h.agent.sent().is_empty());

    let h = Harness::new(5);
    h.install(&ASK_FIRST.replace(
        "timeout_secs: 600",
        "timeout_secs: 600\n    on_timeout: proceed",
    ));
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    h.asked(&incident).await;
    h.clock.advance(Duration::from_secs(601));
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        steps[0].detail,
        "no decision in time; going on as configured"
    );
    assert_eq!(h.agent.kinds(), ["isolate"]);
}

const ISOLATE: &str = "
name: isolate
trigger: {rules: [rule-1]}
steps:
  - action: isolate_host
";

#[tokio::test]
async fn past_the_isolation_budget_an_isolation_waits_for_a_person() {
    let h = Harness::new(1);
    h.install(ISOLATE);
    let other = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
    h.enrol(AGENT, &[]).await;
    h.enrol(other, &[]).await;
    let first = h.raise(AGENT).await;
    assert_eq!(h.finished(&first).await.0.status, RunStatus::Succeeded);

    let second = h.raise(other).await;
    let asked = h.asked(&second).await;
    assert!(asked.reason.contains("budget of 1"), "{}", asked.reason);
    assert_eq!(
        h.agent.kinds(),
        ["isolate"],
        "the second host is not isolated"
    );

    // An hour later the budget is free again, but this run still waits for its decision.
    h.clock.advance(Duration::from_secs(3601));
    let (run, steps) = h.finished(&second).await;
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(steps[0].status, StepStatus::Expired);
    assert_eq!(h.agent.kinds(), ["isolate"]);
}

#[tokio::test]
async fn two_controllers_on_one_store_share_the_isolation_budget() {
    let test = "two_controllers_on_one_store_share_the_isolation_budget";
    let Some(options) = crate::store::pg::testing::database(test).await else {
        return;
    };
    let open = async || AnyStore::Pg(PgStore::open(&options).await.expect("store"));
    let (a, b) = (Harness::on(open().await, 1), Harness::on(open().await, 1));
    // Three hosts for each controller, their alerts raised all at once: only one isolation
    // fits in the budget, whichever controller gets there first.
    let hosts: Vec<String> = (0..6).map(|i| i.to_string().repeat(32)).collect();
    for host in &hosts {
        a.enrol(host, &[]).await;
    }
    a.install(ISOLATE);
    b.install(ISOLATE);
    let h = &hosts;
    let raised = tokio::join!(
        a.raise(&h[0]),
        b.raise(&h[1]),
        a.raise(&h[2]),
        b.raise(&h[3]),
        a.raise(&h[4]),
        b.raise(&h[5])
    );
    let (i0, i1, i2, i3, i4, i5) = raised;
    let mut outcomes = Vec::new();
    for (h, incident) in [(&a, i0), (&b, i1), (&a, i2), (&b, i3), (&a, i4), (&b, i5)] {
        outcomes.push(h.isolated_or_asked(&incident).await);
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["asked", "asked", "asked", "asked", "asked", "isolated"]
    );
    let sent = [a.agent.kinds(), b.agent.kinds()].concat();
    assert_eq!(
        sent,
        ["isolate"],
        "one host isolated across both controllers"
    );
}

#[tokio::test]
async fn a_protected_host_is_only_contained_after_approval() {
    let h = Harness::new(5);
    h.install(ISOLATE);
    h.enrol(AGENT, &[("cordon.protected", "true")]).await;
    let incident = h.raise(AGENT).await;
    let asked = h.asked(&incident).await;
    assert_eq!(
        asked.reason,
        "the host is protected (cordon.protected=true)"
    );
    assert!(asked.what.starts_with("isolate the host"), "{}", asked.what);
    assert!(h.agent.sent().is_empty());

    h.decide(&asked, ApprovalStatus::Approved, "carol", "")
        .await;
    let (run, _) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(h.agent.kinds(), ["isolate"]);
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_does_nothing() {
    let h = Harness::new(5);
    h.install(&format!("{EVERY_STEP}dry_run: true\n"));
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    let (run, steps) = h.finished(&incident).await;
    assert!(run.dry_run);
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(
        steps.iter().all(|s| s.status == StepStatus::DryRun),
        "{:?}",
        statuses(&steps)
    );
    assert_eq!(
        steps[0].detail,
        format!("would kill pid {PID} and its descendants")
    );
    assert!(h.agent.sent().is_empty());
    assert!(h.notifier.sent().is_empty());
    let (status, _, _) = h.incident(&incident).await;
    assert_eq!(status, "open");
}

#[tokio::test]
async fn a_resumed_run_waits_for_the_command_it_sent_before_the_restart() {
    let h = Harness::new(5);
    let yaml = "
name: resumed
trigger: {rules: [rule-9]}
steps:
  - action: kill_process
  - action: isolate_host
  - action: notify
    webhook: soc
";
    h.enrol(AGENT, &[]).await;
    // An alert whose run had reached the isolation when the controller stopped: the kill
    // done, the isolation sent and not yet confirmed.
    let incident = h.raise(AGENT).await;
    let alert = h.store.alerts(0, 0, None, 10).await.unwrap().remove(0);
    let now = h.clock.now_ms();
    let run = RunRow {
        id: "run-1".into(),
        playbook: "resumed".into(),
        source: yaml.into(),
        alert_id: alert.id,
        incident_id: incident.clone(),
        agent_id: AGENT.into(),
        dry_run: false,
        status: RunStatus::Running,
        step: 1,
        started_at_ms: now,
        updated_at_ms: now,
    };
    assert!(h.store.create_run(run).await.unwrap());
    let step = |idx: usize, name: &str, status: StepStatus, command_id: &str| StepRow {
        idx,
        name: name.into(),
        action: name.into(),
        status,
        detail: String::new(),
        command_id: command_id.into(),
        started_at_ms: now,
        finished_at_ms: 0,
    };
    let put = |s: StepRow| h.store.put_step("run-1".into(), s);
    put(step(0, "kill_process", StepStatus::Succeeded, "cmd-kill"))
        .await
        .unwrap();
    put(step(1, "isolate_host", StepStatus::Running, "cmd-before"))
        .await
        .unwrap();
    h.agent.already_sent("cmd-before", Answer::Succeed);

    assert_eq!(engine::resume(&h.engine).await.unwrap(), 1);
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        statuses(&steps),
        [
            ("kill_process", "succeeded"),
            ("isolate_host", "succeeded"),
            ("notify", "succeeded")
        ]
    );
    assert_eq!(steps[1].command_id, "cmd-before");
    assert!(h.agent.sent().is_empty(), "nothing is sent twice");
    assert_eq!(h.notifier.sent().len(), 1);
}
