//! The contract of the alerts and incidents aggregate: alerts raised by ingest, repeats
//! counted, alerts on a host grouped into its incident, and every change on the incident's
//! timeline.

use super::events::event;
use crate::policy::grouping::{Grouping, level_rank};
use crate::store::{AlertChange, AlertRow, Alerts, Events, Finding, IncidentStatus, TimelineRow};
use cordon_detect::RuleIdentity;

pub(super) const G: Grouping = Grouping {
    alert_window_ms: 600_000,
    incident_window_ms: 3_600_000,
};

pub fn finding(rule: &str, level: &str) -> Finding {
    Finding {
        rule: RuleIdentity {
            rule_id: rule.into(),
            title: format!("rule {rule}"),
            level: level.into(),
            tags: vec!["attack.t1059".into()],
            author: "someone".into(),
        },
        source: "sigma".into(),
        detail: String::new(),
    }
}

/// Ingests event `seq` of `agent` at `at`, in which `rule` fired at `level`.
async fn raise<S: Events>(
    s: &S,
    agent: &str,
    seq: u64,
    at: i64,
    rule: &str,
    level: &str,
) -> Vec<AlertChange> {
    let e = event(agent, seq, at, "process", &format!("exec #{seq}"));
    let found = vec![vec![finding(rule, level)]];
    s.ingest(vec![e], found, Some(G)).await.expect("ingest").1
}

const T0: i64 = 1_000_000;

/// From `T0`, one a second: r1 (medium) on h1, r1 again on h1, r2 (critical) on h1, r1
/// (low) on h2. Returns what each raised.
async fn four_alerts<S: Events>(s: &S) -> [AlertChange; 4] {
    let raised = [
        ("h1", 1, "r1", "medium"),
        ("h1", 2, "r1", "medium"),
        ("h1", 3, "r2", "critical"),
        ("h2", 1, "r1", "low"),
    ];
    let mut out = Vec::new();
    for (i, (agent, seq, rule, level)) in raised.into_iter().enumerate() {
        out.extend(raise(s, agent, seq, T0 + 1_000 * i as i64, rule, level).await);
    }
    out.try_into().expect("one change per finding")
}

/// A rule firing again on a host within the alert window counts on its first alert; other
/// alerts on the host join its incident; another host, or the same one past the windows,
/// gets an incident of its own.
pub async fn alert_grouping<S: Events + Alerts>(s: &S) {
    let [a, b, c, d] = four_alerts(s).await;
    assert!(a.new && !b.new && c.new && d.new);
    assert_eq!(b.alert_id, a.alert_id, "a repeat counts on the first alert");
    assert_eq!(c.incident_id, a.incident_id, "the host's incident");
    assert_ne!(d.incident_id, a.incident_id, "another host's");
    let again = raise(s, "h1", 3, T0 + 4_000, "r2", "critical").await;
    assert!(again.is_empty(), "a resent event raises nothing");

    let late = T0 + G.incident_window_ms + 10_000;
    let e = raise(s, "h1", 4, late, "r1", "medium").await;
    assert!(e[0].new, "past the alert window");
    assert_ne!(e[0].incident_id, a.incident_id, "past the incident window");
}

fn ids(alerts: &[AlertRow]) -> Vec<&str> {
    alerts.iter().map(|a| a.id.as_str()).collect()
}

/// An alert is read with its count and event; an incident with its highest level, its
/// alerts and timeline; alert listings filter by time, level and agent.
pub async fn alert_queries<S: Events + Alerts>(s: &S) {
    let [a, _, c, d] = four_alerts(s).await;
    let alert = s.alert(a.alert_id.clone()).await.expect("alert");
    let alert = alert.expect("stored");
    assert_eq!(
        (alert.count, alert.event_seq, alert.last_at_ms),
        (2, 1, T0 + 1_000)
    );
    assert_eq!(
        (alert.rule.author.as_str(), alert.rule.level.as_str()),
        ("someone", "medium")
    );
    assert_eq!(alert.event.expect("still stored").summary, "exec #1");
    assert!(s.alert("alr-nope".into()).await.expect("alert").is_none());

    let incident = s.incident(a.incident_id.clone()).await.expect("incident");
    let (inc, timeline, alerts) = incident.expect("stored");
    assert_eq!((inc.severity.as_str(), inc.alert_count), ("critical", 2));
    assert_eq!(inc.status, IncidentStatus::Open);
    assert_eq!(ids(&alerts), [a.alert_id.as_str(), c.alert_id.as_str()]);
    let kinds: Vec<&str> = timeline.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "alert", "alert"]);

    let high = s
        .alerts(T0 + 1_500, level_rank("high"), None, 100)
        .await
        .expect("alerts");
    assert_eq!(ids(&high), [c.alert_id.as_str()]);
    let on_h2 = s
        .alerts(0, 0, Some("h2".into()), 100)
        .await
        .expect("alerts");
    assert_eq!(ids(&on_h2), [d.alert_id.as_str()]);
    let newest = s.alerts(0, 0, None, 2).await.expect("alerts");
    assert_eq!(
        ids(&newest),
        [c.alert_id.as_str(), d.alert_id.as_str()],
        "newest last"
    );
}

/// Status changes are on the timeline with who made them, found by a unique id prefix; a
/// contained incident still collects its host's alerts.
pub async fn incident_status<S: Events + Alerts>(s: &S) {
    let inc = raise(s, "h1", 1, 5_000, "r1", "high").await[0]
        .incident_id
        .clone();
    let contain =
        |id: String| s.set_incident_status(id, IncidentStatus::Contained, "alice".into(), 6_000);
    let id = contain(inc[..8].to_string()).await.expect("status");
    assert_eq!(id.as_ref(), Some(&inc), "a unique prefix finds it");
    assert!(contain("inc-nope".into()).await.expect("status").is_none());
    let b = raise(s, "h1", 2, 7_000, "r9", "low").await;
    assert_eq!(
        b[0].incident_id, inc,
        "a contained incident collects alerts"
    );

    let (row, timeline, _) = s.incident(inc).await.expect("incident").expect("stored");
    assert_eq!(
        (row.status, row.updated_at_ms),
        (IncidentStatus::Contained, 7_000)
    );
    let status = &timeline[2];
    assert_eq!(
        (status.kind.as_str(), status.actor.as_str()),
        ("status", "alice")
    );
    assert_eq!(
        (status.at_ms, status.text.as_str()),
        (6_000, "status open -> contained")
    );
    assert_eq!(timeline[3].kind, "alert");
}

/// Notes go on the timeline in time order and count as an update; severity is set.
pub async fn incident_notes<S: Events + Alerts>(s: &S) {
    let inc = raise(s, "h1", 1, 5_000, "r1", "high").await[0]
        .incident_id
        .clone();
    let note = |at_ms, text: &str| TimelineRow {
        at_ms,
        kind: "note".into(),
        actor: "bob".into(),
        text: text.into(),
        reference: "ref-1".into(),
    };
    s.add_timeline(inc.clone(), note(8_000, "later"))
        .await
        .expect("note");
    s.add_timeline(inc.clone(), note(6_000, "earlier"))
        .await
        .expect("note");
    s.set_incident_severity(inc.clone(), "critical".into())
        .await
        .expect("severity");
    let (row, timeline, _) = s.incident(inc).await.expect("incident").expect("stored");
    assert_eq!(
        (row.severity.as_str(), row.updated_at_ms),
        ("critical", 8_000)
    );
    let texts: Vec<_> = timeline
        .iter()
        .skip(2)
        .map(|t| (t.text.as_str(), t.actor.as_str()))
        .collect();
    assert_eq!(texts, [("earlier", "bob"), ("later", "bob")]);
    assert_eq!(timeline[3].reference, "ref-1");
}

/// Incidents are listed by status, the most recently updated last, up to a limit.
pub async fn incident_listing<S: Events + Alerts>(s: &S) {
    let first = raise(s, "h1", 1, 5_000, "r1", "high").await[0]
        .incident_id
        .clone();
    let second = raise(s, "h2", 1, 6_000, "r1", "low").await[0]
        .incident_id
        .clone();
    s.set_incident_status(
        first.clone(),
        IncidentStatus::Resolved,
        "carol".into(),
        9_000,
    )
    .await
    .expect("status");
    let list = |status, limit| async move {
        let rows = s.incidents(status, limit).await.expect("incidents");
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        list(Some(IncidentStatus::Resolved), 10).await,
        std::slice::from_ref(&first)
    );
    assert_eq!(
        list(Some(IncidentStatus::Open), 10).await,
        std::slice::from_ref(&second)
    );
    assert_eq!(
        list(None, 10).await,
        [second, first.clone()],
        "most recent last"
    );
    assert_eq!(list(None, 1).await, [first]);
}
