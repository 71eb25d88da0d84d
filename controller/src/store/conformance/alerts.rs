//! The contract of the alerts and incidents aggregate: alerts raised by ingest, repeats
//! counted, alerts on a host grouped into its incident, and every change on the incident's
//! timeline.

use super::events::event;
use crate::policy::grouping::{Grouping, level_rank};
use crate::store::{AlertChange, Alerts, Events, Finding, IncidentStatus, TimelineRow};
use cordon_detect::RuleIdentity;

pub(super) const G: Grouping = Grouping {
    alert_window_ms: 600_000,
    incident_window_ms: 3_600_000,
};

pub(super) fn finding(rule: &str, level: &str) -> Finding {
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

/// A rule firing again on a host within the alert window counts on its first alert; other
/// alerts on the host join its incident, which takes the highest level; another host, or
/// the same one past the windows, gets an incident of its own.
pub async fn alert_grouping<S: Events + Alerts>(s: &S) {
    let t0 = 1_000_000;
    let a = raise(s, "h1", 1, t0, "r1", "medium").await;
    assert!(a[0].new);
    let b = raise(s, "h1", 2, t0 + 1_000, "r1", "medium").await;
    assert!(!b[0].new);
    assert_eq!(b[0].alert_id, a[0].alert_id);
    let c = raise(s, "h1", 3, t0 + 2_000, "r2", "critical").await;
    assert!(c[0].new);
    assert_eq!(c[0].incident_id, a[0].incident_id);
    let d = raise(s, "h2", 1, t0 + 3_000, "r1", "low").await;
    assert_ne!(d[0].incident_id, a[0].incident_id);

    let alert = s
        .alert(a[0].alert_id.clone())
        .await
        .expect("alert")
        .expect("stored");
    assert_eq!(
        (alert.count, alert.event_seq, alert.last_at_ms),
        (2, 1, t0 + 1_000)
    );
    assert_eq!(
        (alert.rule.author.as_str(), alert.rule.level.as_str()),
        ("someone", "medium")
    );
    assert_eq!(alert.event.expect("still stored").summary, "exec #1");
    let (inc, timeline, alerts) = s
        .incident(a[0].incident_id.clone())
        .await
        .expect("incident")
        .expect("stored");
    assert_eq!(
        (inc.severity.as_str(), inc.alert_count, inc.status),
        ("critical", 2, IncidentStatus::Open)
    );
    assert_eq!(
        alerts
            .iter()
            .map(|a| a.rule.rule_id.as_str())
            .collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    let kinds: Vec<&str> = timeline.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "alert", "alert"]);

    let high = s
        .alerts(t0 + 1_500, level_rank("high"), None, 100)
        .await
        .expect("alerts");
    assert_eq!(
        high.iter()
            .map(|a| a.rule.rule_id.as_str())
            .collect::<Vec<_>>(),
        ["r2"]
    );
    let on_h2 = s
        .alerts(0, 0, Some("h2".into()), 100)
        .await
        .expect("alerts");
    assert_eq!(
        on_h2.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [d[0].alert_id.as_str()]
    );
    let newest = s.alerts(0, 0, None, 2).await.expect("alerts");
    let ids: Vec<&str> = newest.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [c[0].alert_id.as_str(), d[0].alert_id.as_str()],
        "the newest, newest last"
    );

    let late = t0 + G.incident_window_ms + 10_000;
    let e = raise(s, "h1", 4, late, "r1", "medium").await;
    assert!(e[0].new, "past the alert window");
    assert_ne!(
        e[0].incident_id, a[0].incident_id,
        "past the incident window"
    );
}

/// Status changes are on the timeline with who made them, found by a unique id prefix; a
/// contained incident still collects its host's alerts; notes and severity are recorded.
pub async fn incident_changes<S: Events + Alerts>(s: &S) {
    let a = raise(s, "h1", 1, 5_000, "r1", "high").await;
    let inc = a[0].incident_id.clone();
    let contain =
        |id: String| s.set_incident_status(id, IncidentStatus::Contained, "alice".into(), 6_000);
    let id = contain(inc[..8].to_string())
        .await
        .expect("status")
        .expect("prefix");
    assert_eq!(id, inc);
    assert!(contain("inc-nope".into()).await.expect("status").is_none());
    let b = raise(s, "h1", 2, 7_000, "r9", "low").await;
    assert_eq!(
        b[0].incident_id, inc,
        "a contained incident collects alerts"
    );

    let note = TimelineRow {
        at_ms: 8_000,
        kind: "note".into(),
        actor: "bob".into(),
        text: "looked at it".into(),
        reference: "ref-1".into(),
    };
    s.add_timeline(inc.clone(), note).await.expect("note");
    s.set_incident_severity(inc.clone(), "critical".into())
        .await
        .expect("severity");
    let (row, timeline, _) = s
        .incident(inc.clone())
        .await
        .expect("incident")
        .expect("stored");
    assert_eq!(
        (row.status, row.severity.as_str(), row.updated_at_ms),
        (IncidentStatus::Contained, "critical", 8_000)
    );
    let entries: Vec<_> = timeline
        .iter()
        .map(|t| (t.kind.as_str(), t.actor.as_str(), t.text.as_str()))
        .collect();
    let want = [
        ("opened", "detection"),
        ("alert", "detection"),
        ("status", "alice"),
        ("alert", "detection"),
        ("note", "bob"),
    ];
    assert_eq!(entries.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(), want);
    assert_eq!(entries[2].2, "status open -> contained");
    assert_eq!(
        (entries[4].2, timeline[4].reference.as_str()),
        ("looked at it", "ref-1")
    );

    let other = raise(s, "h2", 1, 9_000, "r1", "low").await[0]
        .incident_id
        .clone();
    s.set_incident_status(
        other.clone(),
        IncidentStatus::Resolved,
        "carol".into(),
        9_500,
    )
    .await
    .expect("status");
    let ids =
        |rows: Vec<crate::store::IncidentRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let contained = s
        .incidents(Some(IncidentStatus::Contained), 10)
        .await
        .expect("incidents");
    assert_eq!(ids(contained), [inc.clone()]);
    assert_eq!(
        ids(s.incidents(None, 10).await.expect("incidents")),
        [inc.clone(), other.clone()],
        "most recent last"
    );
    assert_eq!(ids(s.incidents(None, 1).await.expect("incidents")), [other]);
}
