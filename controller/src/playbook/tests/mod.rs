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
    Agents, AnyStore, ApprovalRow, ApprovalStatus, AuditLog, Enrolment, Finding, RunRow, RunStatus,
    StepRow, StepStatus, Store, StoredEvent, Tokens,
};
use crate::store::{Alerts, Events, PlaybookStore};
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
    store: AnyStore,
    clock: Arc<ManualClock>,
    agent: Arc<FakeAgent>,
    notifier: Arc<RecordingNotifier>,
    engine: Arc<Engine>,
    alerts: mpsc::UnboundedSender<String>,
    seq: std::sync::atomic::AtomicU64,
}

impl Harness {
    fn new(budget: u32) -> Self {
        Self::on(Store::memory().expect("store").into(), budget)
    }

    /// The engine on `store`, which may be shared with other harnesses' engines.
    fn on(store: AnyStore, budget: u32) -> Self {
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
        self.raise_with(agent, Vec::new()).await
    }

    /// As [`Self::raise`], with what the host's edge policies did about the exec.
    async fn raise_with(&self, agent: &str, edge: Vec<cordon_proto::EdgeAction>) -> String {
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
            edge,
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

    /// How the incident's run got past its isolation: "isolated" (ended) or "asked" (waits
    /// for a person).
    async fn isolated_or_asked(&self, incident: &str) -> &'static str {
        for _ in 0..500 {
            let runs = self.store.runs_for_incident(incident.into()).await;
            if runs
                .expect("runs")
                .iter()
                .any(|(run, _)| run.status.is_final())
            {
                return "isolated";
            }
            let pending = self.store.approvals(false, Some(incident.into())).await;
            if !pending.expect("approvals").is_empty() {
                return "asked";
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the run on incident {incident} neither ended nor asked");
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
        let rows = self.store.audit(0, 1000, None).await.expect("audit");
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

mod edge;
mod guards;
