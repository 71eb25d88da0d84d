//! A controller that stops after committing an alert but before starting its playbook runs
//! starts them when it comes back: once, and only for playbooks already in force when the
//! alert was raised. In-process (no root needed): the alert is stored the way ingest stores
//! it, without the spawn that follows, which is exactly what a stop in between leaves.

#![allow(clippy::unwrap_used)]

use cordon_controller::store::{Alerts, Events, Finding, PlaybookStore, StoredEvent};
use cordon_proto::time::now_ms;
use cordon_tests::inproc::TestController;
use std::time::Duration;

fn playbook(name: &str) -> String {
    format!(
        "name: {name}\ntrigger:\n  rules: [catch-up-rule]\nsteps:\n  - action: set_incident\n    severity: critical\n"
    )
}

async fn runs(tc: &TestController, incident: &str) -> Vec<String> {
    tc.ctl
        .store
        .runs_for_incident(incident.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|(run, _)| run.playbook)
        .collect()
}

#[tokio::test]
async fn an_alert_committed_just_before_a_stop_gets_its_playbook_run_at_start() {
    let mut tc = TestController::start().await;
    let agent = tc.enroll().await;
    tc.ctl
        .apply_playbook("before.yml", &playbook("before"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let event = StoredEvent {
        agent_id: agent.id.clone(),
        seq: 1,
        time_ms: now_ms(),
        kind: "process".into(),
        summary: "exec /bin/true".into(),
        body: Vec::new(),
        received_at_ms: now_ms(),
    };
    let rule = cordon_detect::RuleIdentity {
        rule_id: "catch-up-rule".into(),
        title: "catch-up test".into(),
        level: "high".into(),
        tags: Vec::new(),
        author: "cordon tests".into(),
    };
    let finding = Finding {
        rule,
        source: "sigma".into(),
        detail: String::new(),
    };
    let (_, alerts) = tc
        .ctl
        .store
        .ingest(
            vec![event],
            vec![vec![finding]],
            Some(tc.ctl.detector.grouping),
        )
        .await
        .unwrap();
    let incident = alerts[0].incident_id.clone();
    assert!(runs(&tc, &incident).await.is_empty());

    // A playbook that came into force after the alert must not act on it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    tc.ctl
        .apply_playbook("after.yml", &playbook("after"))
        .await
        .unwrap();

    tc.stop().await;
    tc.restart().await;
    let mut severity = String::new();
    for _ in 0..100 {
        let (inc, _, _) = tc
            .ctl
            .store
            .incident(incident.clone())
            .await
            .unwrap()
            .unwrap();
        severity = inc.severity;
        if severity == "critical" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        severity, "critical",
        "the caught-up run did not set the severity"
    );
    assert_eq!(runs(&tc, &incident).await, vec!["before".to_string()]);

    // Starting again makes no second run.
    tc.stop().await;
    tc.restart().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(runs(&tc, &incident).await, vec!["before".to_string()]);
}
