//! The engine on its own: an in-memory store, a fake agent that answers commands, a
//! recording notifier and a clock that moves only when a test says so. Alerts come in on the
//! engine's channel as the controller sends them; each test checks what the run left behind
//! (its steps, the incident, the approvals, the audit log) and what reached the agent and the
//! notifier.

use super::deps::Clock;
use super::engine::{self, Engine};
use super::fakes::{Answer, FakeAgent, ManualClock, StoreAudit};
use super::{PlaybookConfig, Playbooks, spec};
use crate::notify::RecordingNotifier;
use crate::policy::grouping::Grouping;
use crate::store::{
    Agents, ApprovalRow, ApprovalStatus, AuditLog, Enrolment, Finding, RunRow, RunStatus, StepRow,
    StepStatus, Store, StoredEvent, Tokens,
};
use cordon_detect::RuleIdentity;
use cordon_proto::{Event, HostFacts, ProcessEvent, action, event, process_event};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const AGENT: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const PID: u32 = 4242;
const START_TICKS: u64 = 777;
const EXE: &str = "/tmp/x/payload";
const GROUPING: Grouping = Grouping {
    alert_window_ms: 600_000,
    incident_window_ms: 3_600_000,
};

struct Harness {
    store: Store,
    clock: Arc<ManualClock>,
    agent: Arc<FakeAgent>,
    notifier: Arc<RecordingNotifier>,
    engine: Arc<Engine>,
    alerts: mpsc::UnboundedSender<String>,
    seq: std::sync::atomic::AtomicU64,
}

impl Harness {
    fn new(budget: u32) -> Self {
        let store = Store::memory().expect("store");
        let clock = Arc::new(ManualClock::new(cordon_proto::time::now_ms()));
        let agent = Arc::new(FakeAgent::default());
        let notifier = Arc::new(RecordingNotifier::new(&["soc"]));
        let config = PlaybookConfig {
            isolation_budget_per_hour: budget,
            ..PlaybookConfig::default()
        };
        let engine = Arc::new(Engine {
            store: store.clone(),
            commands: agent.clone(),
            audit: Arc::new(StoreAudit {
                store: store.clone(),
                clock: clock.clone(),
            }),
            notifier: notifier.clone(),
            clock: clock.clone(),
            playbooks: Arc::new(Playbooks::new(&config)),
        });
        let (alerts, rx) = mpsc::unbounded_channel();
        tokio::spawn(engine::listen(engine.clone(), rx));
        Self {
            store,
            clock,
            agent,
            notifier,
            engine,
            alerts,
            seq: Default::default(),
        }
    }

    fn install(&self, yaml: &str) {
        let pb = spec::parse(yaml, "test.yml").expect("playbook");
        self.engine.playbooks.install(pb, yaml.into(), true);
    }

    /// Enrols an agent with these labels.
    async fn enrol(&self, id: &str, labels: &[(&str, &str)]) {
        let now = self.clock.now_ms();
        let hash = format!("token-{id}");
        let no_labels = HashMap::new();
        self.store
            .create_token(hash.clone(), now, now + 60_000, 1, no_labels, "t".into())
            .await
            .expect("token");
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let host = HostFacts {
            hostname: format!("host-{}", &id[..4]),
            ..Default::default()
        };
        let enrolment = Enrolment {
            token_hash: hash,
            agent_id: id.into(),
            host,
            labels,
            cert_serial: "01".into(),
            cert_expires_at_ms: now + 3_600_000,
            now_ms: now,
        };
        self.store
            .enroll(enrolment)
            .await
            .expect("store")
            .expect("enrolled");
    }

    /// Stores an exec on `agent` that a high rule matched, sends the new alert to the engine
    /// as the controller does, and returns the alert's incident.
    async fn raise(&self, agent: &str) -> String {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let body = Event {
            seq,
            time_ms: self.clock.now_ms(),
            body: Some(event::Body::Process(ProcessEvent {
                kind: process_event::Kind::Exec as i32,
                pid: PID,
                start_ticks: START_TICKS,
                exe: EXE.into(),
                argv: vec![EXE.into()],
                ..Default::default()
            })),
        };
        let stored = StoredEvent {
            agent_id: agent.into(),
            seq,
            time_ms: body.time_ms,
            kind: "process".into(),
            summary: format!("exec {EXE}"),
            body: body.encode_to_vec(),
            received_at_ms: body.time_ms,
        };
        let rule = RuleIdentity {
            rule_id: "rule-1".into(),
            title: "Payload run".into(),
            level: "high".into(),
            tags: vec!["attack.execution".into()],
            author: "tests".into(),
        };
        let finding = Finding {
            rule,
            source: "sigma".into(),
            detail: String::new(),
        };
        let (_, alerts) = self
            .store
            .ingest(vec![stored], vec![vec![finding]], Some(GROUPING))
            .await
            .expect("ingest");
        let alert = alerts.into_iter().find(|a| a.new).expect("a new alert");
        self.alerts.send(alert.alert_id).expect("engine listening");
        alert.incident_id
    }

    /// The incident's one run once it has ended, with its steps.
    async fn finished(&self, incident: &str) -> (RunRow, Vec<StepRow>) {
        for _ in 0..500 {
            let runs = self
                .store
                .runs_for_incident(incident.into())
                .await
                .expect("runs");
            if let Some((run, steps)) = runs.into_iter().next()
                && run.status.is_final()
            {
                return (run, steps);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the run on incident {incident} did not end");
    }

    /// The pending approval of the incident, once the run has asked for it.
    async fn asked(&self, incident: &str) -> ApprovalRow {
        for _ in 0..500 {
            let pending = self
                .store
                .approvals(false, Some(incident.into()))
                .await
                .expect("approvals");
            if let Some(a) = pending.into_iter().next() {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no approval was asked for on incident {incident}");
    }

    /// What an administrator's decision does: record it, then wake the waiting run.
    async fn decide(&self, a: &ApprovalRow, status: ApprovalStatus, by: &str, note: &str) {
        let now = self.clock.now_ms();
        let decided = self
            .store
            .decide_approval(a.id.clone(), status, by.into(), note.into(), now)
            .await
            .expect("decide");
        assert!(decided.is_some(), "the approval was pending");
        let _ = self.engine.playbooks.decided.send(a.id.clone());
    }

    async fn incident(&self, id: &str) -> (String, String, Vec<String>) {
        let (i, timeline, _) = self
            .store
            .incident(id.into())
            .await
            .expect("store")
            .expect("incident");
        let texts = timeline.into_iter().map(|t| t.text).collect();
        (i.status.to_string(), i.severity, texts)
    }

    /// (actor, action, outcome) of every audit entry.
    async fn audit(&self) -> Vec<(String, String, String)> {
        let rows = self.store.audit(0, 1000).await.expect("audit");
        rows.into_iter()
            .map(|r| (r.actor, r.action, r.outcome))
            .collect()
    }
}

fn statuses(steps: &[StepRow]) -> Vec<(&str, &str)> {
    steps
        .iter()
        .map(|s| (s.name.as_str(), s.status.as_str()))
        .collect()
}

const EVERY_STEP: &str = "
name: every-step
trigger: {rules: [rule-1]}
steps:
  - action: kill_process
    tree: true
  - action: isolate_host
    allow: [192.0.2.1]
  - action: quarantine_file
    target: exe
  - action: block_ip
    cidr: 203.0.113.0/24
    ttl_secs: 600
  - action: collect_inventory
  - action: release_host
  - action: notify
    webhook: soc
    text: contained
  - action: set_incident
    status: contained
    severity: critical
";

#[tokio::test]
async fn every_step_kind_acts_and_is_recorded() {
    let h = Harness::new(5);
    h.install(EVERY_STEP);
    h.enrol(AGENT, &[]).await;
    let incident = h.raise(AGENT).await;
    let (run, steps) = h.finished(&incident).await;

    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(
        steps.iter().all(|s| s.status == StepStatus::Succeeded),
        "{:?}",
        statuses(&steps)
    );
    assert_eq!(
        h.agent.kinds(),
        [
            "kill",
            "isolate",
            "quarantine",
            "block-ip",
            "inventory",
            "release"
        ]
    );
    let sent = h.agent.sent();
    assert!(
        sent.iter()
            .all(|s| s.agent_id == AGENT && s.by == "playbook:every-step")
    );
    match &sent[0].action {
        action::Kind::Kill(k) => {
            assert_eq!((k.pid, k.start_time, k.tree), (PID, START_TICKS, true))
        }
        other => panic!("not a kill: {other:?}"),
    }
    match &sent[2].action {
        action::Kind::Quarantine(q) => assert_eq!((q.path.as_str(), q.force), (EXE, false)),
        other => panic!("not a quarantine: {other:?}"),
    }
    match &sent[3].action {
        action::Kind::BlockIp(b) => {
            assert_eq!((b.cidr.as_str(), b.ttl_secs), ("203.0.113.0/24", 600))
        }
        other => panic!("not a block: {other:?}"),
    }
    // Each command step names the command it sent.
    assert_eq!(steps[0].command_id, sent[0].id);

    let notes = h.notifier.sent();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].0, "soc");
    assert_eq!(notes[0].1.text, "contained");
    assert_eq!(notes[0].1.playbook.as_deref(), Some("every-step"));
    assert_eq!(notes[0].1.hostname.as_deref(), Some("host-a1a1"));

    let (status, severity, timeline) = h.incident(&incident).await;
    assert_eq!(
        (status.as_str(), severity.as_str()),
        ("contained", "critical")
    );
    assert!(timeline.iter().any(|t| t == "playbook every-step finished"));
    assert!(
        timeline
            .iter()
            .any(|t| t.starts_with("step 2 isolate_host (isolate_host): succeeded"))
    );

    let audit = h.audit().await;
    let by_playbook: Vec<&str> = audit
        .iter()
        .filter(|(actor, _, _)| actor == "playbook:every-step")
        .map(|(_, action, _)| action.as_str())
        .collect();
    assert_eq!(
        by_playbook,
        [
            "playbook.kill_process",
            "playbook.isolate_host",
            "playbook.quarantine_file",
            "playbook.block_ip",
            "playbook.collect_inventory",
            "playbook.release_host",
            "playbook.notify",
            "playbook.set_incident"
        ]
    );
}

#[tokio::test]
async fn a_failed_step_aborts_the_run_unless_it_may_continue() {
    let h = Harness::new(5);
    h.install(
        "
name: strict
trigger: {rules: [rule-1]}
steps:
  - action: kill_process
  - action: isolate_host
",
    );
    h.enrol(AGENT, &[]).await;
    h.agent
        .answer("kill", Answer::Fail("no such process".into()));
    let incident = h.raise(AGENT).await;
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(statuses(&steps), [("kill_process", "failed")]);
    assert!(
        steps[0].detail.contains("no such process"),
        "{}",
        steps[0].detail
    );
    assert_eq!(h.agent.kinds(), ["kill"], "nothing after the failed step");

    let h = Harness::new(5);
    h.install(
        "
name: lenient
trigger: {rules: [rule-1]}
steps:
  - action: kill_process
    on_failure: continue
  - action: isolate_host
    if: {steps.kill_process: failed}
  - action: notify
    webhook: soc
    if: {steps.kill_process: succeeded}
",
    );
    h.enrol(AGENT, &[]).await;
    h.agent.answer("kill", Answer::Silent);
    let incident = h.raise(AGENT).await;
    let (run, steps) = h.finished(&incident).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        statuses(&steps),
        [
            ("kill_process", "failed"),
            ("isolate_host", "succeeded"),
            ("notify", "skipped")
        ]
    );
    assert!(
        steps[0].detail.contains("no confirmed result"),
        "{}",
        steps[0].detail
    );
    assert!(h.notifier.sent().is_empty());
}

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
