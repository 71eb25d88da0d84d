//! The post-incident report: the incident with its host, playbook runs and approvals, and the
//! times that matter afterwards (when it began on the host, when it was detected, when it
//! was contained).

use super::process_tree::tree_record;
use super::records::incident_details;
use super::{Controller, CoreError, IncidentHistory};
use crate::store::{Agent, RunRow, StepRow};
use cordon_proto::time::now_ms;
use cordon_proto::*;

/// Step actions whose confirmed success contains the host.
const CONTAINING_ACTIONS: &[&str] = &["isolate_host", "kill_process"];

impl Controller {
    /// The post-incident report of an incident (by id or prefix), as `cordonctl incidents
    /// report` and the console's download give it.
    /// It carries the tree of the triggering process (see `process_tree::triggering_event`).
    pub async fn incident_report(&self, id: &str) -> Result<IncidentReport, CoreError> {
        let history = self.incident_history(id).await?;
        let tree = self.incident_tree(&history.details.alerts).await?;
        let mut r = report(history);
        r.process_tree = tree.map(|(seq, t)| tree_record(t, seq));
        Ok(r)
    }
}

/// Everything known about an incident, with its times worked out.
pub fn report(h: IncidentHistory) -> IncidentReport {
    let host = host(&h.details.incident.agent_id, h.agent);
    let incident = incident_details(h.details);
    let runs = h.runs.into_iter().map(|(r, s)| run(r, s)).collect();
    build(incident, host, runs, now_ms())
}

fn host(agent_id: &str, agent: Option<Agent>) -> ReportHost {
    let Some(a) = agent else {
        return ReportHost {
            agent_id: agent_id.into(),
            ..Default::default()
        };
    };
    ReportHost {
        agent_id: a.id,
        hostname: a.host.hostname,
        labels: a.labels,
        os: format!("{} {}", a.host.os_name, a.host.os_version)
            .trim()
            .to_string(),
        kernel_version: a.host.kernel_version,
    }
}

fn run(r: RunRow, steps: Vec<StepRow>) -> ReportRun {
    ReportRun {
        run_id: r.id,
        playbook: r.playbook,
        alert_id: r.alert_id,
        status: r.status.to_string(),
        dry_run: r.dry_run,
        started_at_ms: r.started_at_ms,
        updated_at_ms: r.updated_at_ms,
        steps: steps
            .into_iter()
            .map(|s| ReportStep {
                index: s.idx as u32,
                name: s.name,
                action: s.action,
                status: s.status.to_string(),
                detail: s.detail,
                command_id: s.command_id,
                started_at_ms: s.started_at_ms,
                finished_at_ms: s.finished_at_ms,
            })
            .collect(),
    }
}

/// When the event behind an alert happened on the host: a process's start time if the
/// sensor gave one, else the event's time.
pub fn event_time(e: &EventRecord) -> Option<i64> {
    let ev = e.event.as_ref();
    let start = ev.and_then(|ev| match &ev.body {
        Some(event::Body::Process(p)) if p.start_time_ms > 0 => Some(p.start_time_ms),
        _ => None,
    });
    start
        .or_else(|| ev.map(|ev| ev.time_ms).filter(|t| *t > 0))
        .or_else(|| (e.time_ms > 0).then_some(e.time_ms))
}

/// Puts the report together and works out its times.
pub fn build(
    incident: IncidentRecord,
    host: ReportHost,
    runs: Vec<ReportRun>,
    now: i64,
) -> IncidentReport {
    let first_event = incident
        .alerts
        .iter()
        .filter_map(|a| a.event.as_ref())
        .filter_map(|e| event_time(e).map(|t| (t, e.summary.clone())))
        .min_by_key(|(t, _)| *t);
    let detected = incident
        .alerts
        .iter()
        .map(|a| a.first_at_ms)
        .filter(|t| *t > 0)
        .min();
    let contained = containment(&incident, &runs);
    let since = |end: Option<i64>| match (first_event.as_ref(), end) {
        (Some((start, _)), Some(end)) => Some((end - start).max(0)),
        _ => None,
    };
    IncidentReport {
        generated_at_ms: now,
        time_to_detect_ms: since(detected),
        time_to_contain_ms: since(contained.as_ref().map(|c| c.0)),
        first_event_at_ms: first_event.as_ref().map(|f| f.0),
        first_event_summary: first_event.map(|f| f.1).unwrap_or_default(),
        detected_at_ms: detected,
        contained_at_ms: contained.as_ref().map(|c| c.0),
        contained_by: contained.map(|c| c.1).unwrap_or_default(),
        incident: Some(incident),
        host: Some(host),
        runs,
        process_tree: None,
    }
}

/// The first confirmed containment and what did it: a succeeded kill or isolation step (not a
/// dry run), or the incident's status set to contained.
fn containment(incident: &IncidentRecord, runs: &[ReportRun]) -> Option<(i64, String)> {
    let steps = runs.iter().filter(|r| !r.dry_run).flat_map(|r| {
        r.steps
            .iter()
            .filter(|s| s.status == "succeeded" && CONTAINING_ACTIONS.contains(&s.action.as_str()))
            .filter(|s| s.finished_at_ms > 0)
            .map(move |s| {
                let how = format!("{} step of playbook:{}", s.action, r.playbook);
                (s.finished_at_ms, how)
            })
    });
    let status = incident
        .timeline
        .iter()
        .filter(|t| t.kind == "status" && t.text.ends_with("-> contained"))
        .map(|t| (t.at_ms, format!("status set to contained by {}", t.actor)));
    steps.chain(status).min_by_key(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_event(time_ms: i64, start_time_ms: i64) -> EventRecord {
        EventRecord {
            time_ms,
            summary: "exec /bin/sh -i".into(),
            event: Some(Event {
                seq: 7,
                time_ms,
                body: Some(event::Body::Process(ProcessEvent {
                    start_time_ms,
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn alert(first_at_ms: i64, event: Option<EventRecord>) -> AlertRecord {
        AlertRecord {
            id: format!("al-{first_at_ms}"),
            first_at_ms,
            event,
            ..Default::default()
        }
    }

    fn step(action: &str, status: &str, finished_at_ms: i64) -> ReportStep {
        ReportStep {
            action: action.into(),
            status: status.into(),
            finished_at_ms,
            ..Default::default()
        }
    }

    fn report(alerts: Vec<AlertRecord>, runs: Vec<ReportRun>) -> IncidentReport {
        let incident = IncidentRecord {
            alerts,
            ..Default::default()
        };
        build(incident, ReportHost::default(), runs, 99)
    }

    #[test]
    fn event_time_prefers_the_process_start() {
        assert_eq!(event_time(&exec_event(1_050, 1_000)), Some(1_000));
        assert_eq!(event_time(&exec_event(1_050, 0)), Some(1_050));
        assert_eq!(event_time(&EventRecord::default()), None);
    }

    #[test]
    fn times_run_from_the_first_event() {
        let runs = vec![ReportRun {
            playbook: "rs".into(),
            steps: vec![
                step("kill_process", "failed", 1_100),
                step("isolate_host", "succeeded", 1_300),
            ],
            ..Default::default()
        }];
        let r = report(
            vec![
                alert(1_200, Some(exec_event(1_150, 1_100))),
                alert(1_080, Some(exec_event(1_050, 1_000))),
            ],
            runs,
        );
        assert_eq!(r.first_event_at_ms, Some(1_000));
        assert_eq!(r.first_event_summary, "exec /bin/sh -i");
        assert_eq!(r.detected_at_ms, Some(1_080));
        assert_eq!(r.time_to_detect_ms, Some(80));
        assert_eq!(r.contained_at_ms, Some(1_300));
        assert_eq!(r.time_to_contain_ms, Some(300));
        assert_eq!(r.contained_by, "isolate_host step of playbook:rs");
    }

    #[test]
    fn a_status_change_contains_and_dry_runs_do_not() {
        let runs = vec![ReportRun {
            dry_run: true,
            steps: vec![step("isolate_host", "succeeded", 1_100)],
            ..Default::default()
        }];
        let mut incident = IncidentRecord {
            alerts: vec![alert(1_010, Some(exec_event(1_000, 0)))],
            ..Default::default()
        };
        incident.timeline.push(TimelineEntry {
            at_ms: 5_000,
            kind: "status".into(),
            actor: "admin".into(),
            text: "status open -> contained".into(),
            r#ref: String::new(),
        });
        let r = build(incident, ReportHost::default(), runs, 0);
        assert_eq!(r.time_to_contain_ms, Some(4_000));
        assert_eq!(r.contained_by, "status set to contained by admin");
    }

    #[test]
    fn unknown_ends_leave_the_times_out() {
        let r = report(vec![alert(1_010, None)], Vec::new());
        assert_eq!(r.detected_at_ms, Some(1_010));
        assert_eq!(r.first_event_at_ms, None);
        assert_eq!(r.time_to_detect_ms, None);
        assert_eq!(r.time_to_contain_ms, None);
        assert!(r.contained_by.is_empty());
    }
}
