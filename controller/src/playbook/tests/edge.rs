//! Steps marked `at: edge`: done on the host already when the event says so (no command is
//! sent again, the run and the timeline say what the host did), run from the controller when
//! the event carries no word of them, and skipped when the host's action limit was hit.

use super::*;
use cordon_proto::EdgeAction;

const AT_EDGE: &str = "
name: edge-kill
trigger: {rules: [rule-1]}
steps:
  - name: kill
    action: kill_process
    at: edge
  - action: set_incident
    status: contained
";

fn action(outcome: &str, detail: &str) -> EdgeAction {
    EdgeAction {
        policy_id: "playbook:edge-kill".into(),
        version: 3,
        rule_id: "rule-1".into(),
        step: "kill".into(),
        action: "kill_process".into(),
        outcome: outcome.into(),
        detail: detail.into(),
        at_ms: 1,
    }
}

#[tokio::test]
async fn a_kill_done_on_the_host_is_recorded_not_sent_again() {
    let h = Harness::new(5);
    h.install(AT_EDGE);
    h.enrol(AGENT, &[]).await;
    let incident = h
        .raise_with(AGENT, vec![action("done", "killed pid 4242")])
        .await;
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(statuses(&steps)[0], ("kill", "succeeded"));
    assert_eq!(
        steps[0].detail,
        "killed on the host by edge policy playbook:edge-kill v3: killed pid 4242"
    );
    assert!(h.agent.sent().is_empty(), "{:?}", h.agent.kinds());
    let (status, _, timeline) = h.incident(&incident).await;
    assert_eq!(status, "contained");
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("killed on the host by edge policy playbook:edge-kill v3")),
        "{timeline:?}"
    );
}

#[tokio::test]
async fn without_word_from_the_host_the_controller_runs_the_step() {
    let h = Harness::new(5);
    h.install(AT_EDGE);
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    let (_, steps) = h.finished(&incident).await;
    assert_eq!(h.agent.kinds(), ["kill"]);
    assert_eq!(statuses(&steps)[0], ("kill", "succeeded"));
}

#[tokio::test]
async fn past_the_hosts_limit_the_step_is_skipped_alert_only() {
    let h = Harness::new(5);
    h.install(AT_EDGE);
    h.enrol(AGENT, &[]).await;
    let limited = action(
        "rate_limited",
        "not done (kill pid 4242): limited; alert only",
    );
    let incident = h.raise_with(AGENT, vec![limited]).await;
    let (_, steps) = h.finished(&incident).await;
    assert_eq!(statuses(&steps)[0], ("kill", "skipped"));
    assert!(
        steps[0].detail.contains("alert only"),
        "{}",
        steps[0].detail
    );
    assert!(h.agent.sent().is_empty());
}
