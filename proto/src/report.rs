//! The post-incident report as Markdown for people: what `cordonctl incidents report` prints
//! and what the web console downloads (both render the same `IncidentReport`).

use crate::time::rfc3339 as time;
use crate::*;
use std::fmt::Write;

/// A duration for people: "85 ms", "1.204 s", "3 min 12 s".
pub fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.3} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// One table cell: no pipes or line breaks to break the table, "-" when empty.
fn cell(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return "-".into();
    }
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn opt_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "unknown".into(), time)
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn header(out: &mut String, names: &[&str]) {
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(names.len()));
}

/// The report as a Markdown document.
pub fn markdown(r: &IncidentReport) -> String {
    let default_incident = IncidentRecord::default();
    let i = r.incident.as_ref().unwrap_or(&default_incident);
    let mut out = String::new();
    let _ = writeln!(out, "# Incident report: {}\n", i.title.trim());
    header(
        &mut out,
        &["Incident", "Status", "Severity", "Opened", "Alerts"],
    );
    row(
        &mut out,
        &[
            format!("`{}`", i.id),
            cell(&i.status),
            cell(&i.severity),
            time(i.opened_at_ms),
            i.alert_count.to_string(),
        ],
    );
    let _ = writeln!(out, "\nReport generated {}.\n", time(r.generated_at_ms));
    host(&mut out, r);
    times(&mut out, r);
    alerts(&mut out, i);
    process_tree(&mut out, r);
    runs(&mut out, r);
    approvals(&mut out, i);
    people(&mut out, i);
    let _ = writeln!(out, "## Timeline\n");
    header(&mut out, &["Time", "Kind", "Actor", "What", "Ref"]);
    for t in &i.timeline {
        row(
            &mut out,
            &[
                time(t.at_ms),
                cell(&t.kind),
                cell(&t.actor),
                cell(&t.text),
                cell(&t.r#ref),
            ],
        );
    }
    out
}

fn host(out: &mut String, r: &IncidentReport) {
    let h = r.host.clone().unwrap_or_default();
    let mut labels: Vec<_> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let _ = writeln!(out, "## Host\n");
    header(out, &["Hostname", "Agent id", "Labels", "OS", "Kernel"]);
    row(
        out,
        &[
            cell(&h.hostname),
            format!("`{}`", h.agent_id),
            cell(&labels.join(", ")),
            cell(&h.os),
            cell(&h.kernel_version),
        ],
    );
    out.push('\n');
}

fn times(out: &mut String, r: &IncidentReport) {
    let _ = writeln!(out, "## Detection and containment\n");
    header(out, &["", ""]);
    let first = match r.first_event_at_ms {
        Some(t) => format!("{} ({})", time(t), cell(&r.first_event_summary)),
        None => "unknown (no alert kept its event)".into(),
    };
    let contained = match r.contained_at_ms {
        Some(t) => format!("{} ({})", time(t), cell(&r.contained_by)),
        None => "not contained".into(),
    };
    let span = |ms: Option<i64>| ms.map_or_else(|| "unknown".into(), duration);
    for (name, value) in [
        ("First malicious event (host clock)", first),
        ("Detected (first alert stored)", opt_time(r.detected_at_ms)),
        ("Contained", contained),
        ("**Time to detect**", span(r.time_to_detect_ms)),
        ("**Time to contain**", span(r.time_to_contain_ms)),
    ] {
        row(out, &[name.into(), value]);
    }
    out.push('\n');
}

fn alerts(out: &mut String, i: &IncidentRecord) {
    let _ = writeln!(out, "## Alerts\n");
    header(
        out,
        &[
            "Rule",
            "Title",
            "Level",
            "Author",
            "First seen",
            "Last seen",
            "Count",
            "Triggering event",
        ],
    );
    for a in &i.alerts {
        let event = a.event.as_ref().map_or("", |e| e.summary.as_str());
        row(
            out,
            &[
                format!("`{}`", a.rule_id),
                cell(&a.title),
                cell(&a.level),
                cell(&a.author),
                time(a.first_at_ms),
                time(a.last_at_ms),
                a.count.to_string(),
                cell(event),
            ],
        );
    }
    out.push('\n');
}

/// The tree of the triggering process, as `cordonctl events tree` draws it.
fn process_tree(out: &mut String, r: &IncidentReport) {
    let _ = writeln!(out, "## Process tree\n");
    let Some(t) = &r.process_tree else {
        let _ = writeln!(
            out,
            "No alert of this incident was raised by a stored process event.\n"
        );
        return;
    };
    let _ = writeln!(
        out,
        "The triggering process (marked {}) of {}, from stored telemetry. The files each \
         process wrote are not shown: file events carry no process.\n",
        crate::tree::MARK.trim(),
        crate::tree::title(t)
    );
    let _ = writeln!(out, "```text\n{}```\n", crate::tree::text(t));
}

fn runs(out: &mut String, r: &IncidentReport) {
    let _ = writeln!(out, "## Playbook runs\n");
    if r.runs.is_empty() {
        let _ = writeln!(out, "No playbook ran.\n");
    }
    for run in &r.runs {
        let dry = if run.dry_run { ", dry run" } else { "" };
        let _ = writeln!(
            out,
            "### playbook:{} ({}{dry})\n\nRun `{}` for alert `{}`, started {}.\n",
            run.playbook,
            run.status,
            run.run_id,
            run.alert_id,
            time(run.started_at_ms)
        );
        header(
            out,
            &[
                "#", "Step", "Action", "Outcome", "Detail", "Command", "Started", "Finished",
            ],
        );
        for s in &run.steps {
            let command = if s.command_id.is_empty() {
                "-".into()
            } else {
                format!("`{}`", s.command_id)
            };
            row(
                out,
                &[
                    (s.index + 1).to_string(),
                    cell(&s.name),
                    cell(&s.action),
                    cell(&s.status),
                    cell(&s.detail),
                    command,
                    time(s.started_at_ms),
                    time(s.finished_at_ms),
                ],
            );
        }
        out.push('\n');
    }
}

fn approvals(out: &mut String, i: &IncidentRecord) {
    if i.approvals.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Approvals\n");
    header(
        out,
        &[
            "Action",
            "Why",
            "Status",
            "Asked",
            "Asked by",
            "Decided by",
            "Decided",
            "Note",
        ],
    );
    for a in &i.approvals {
        row(
            out,
            &[
                cell(&a.what),
                cell(&a.reason),
                cell(&a.status),
                time(a.requested_at_ms),
                cell(&a.requested_by),
                cell(&a.decided_by),
                time(a.decided_at_ms),
                cell(&a.note),
            ],
        );
    }
    out.push('\n');
}

/// Status changes, approvals and notes, with who made them.
fn people(out: &mut String, i: &IncidentRecord) {
    let entries: Vec<_> = i
        .timeline
        .iter()
        .filter(|t| matches!(t.kind.as_str(), "status" | "note" | "approval"))
        .collect();
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Decisions, status changes and notes\n");
    header(out, &["Time", "Who", "What"]);
    for t in entries {
        row(out, &[time(t.at_ms), cell(&t.actor), cell(&t.text)]);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IncidentReport {
        let incident = IncidentRecord {
            id: "inc-1".into(),
            title: "Reverse shell".into(),
            status: "contained".into(),
            severity: "high".into(),
            opened_at_ms: 1_700_000_000_000,
            alert_count: 1,
            alerts: vec![AlertRecord {
                rule_id: "r-1".into(),
                title: "Shell | redirect".into(),
                level: "high".into(),
                author: "Florian Roth".into(),
                count: 2,
                first_at_ms: 1_700_000_000_080,
                event: Some(EventRecord {
                    summary: "exec /bin/bash -i".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            timeline: vec![TimelineEntry {
                at_ms: 1_700_000_005_000,
                kind: "note".into(),
                actor: "admin-alice".into(),
                text: "checked\nthe host".into(),
                r#ref: String::new(),
            }],
            ..Default::default()
        };
        IncidentReport {
            incident: Some(incident),
            host: Some(ReportHost {
                agent_id: "ab12".into(),
                hostname: "web-1".into(),
                labels: [("env".to_string(), "prod".to_string())].into(),
                ..Default::default()
            }),
            runs: vec![ReportRun {
                playbook: "reverse-shell".into(),
                status: "succeeded".into(),
                steps: vec![ReportStep {
                    index: 0,
                    name: "isolate".into(),
                    action: "isolate_host".into(),
                    status: "succeeded".into(),
                    command_id: "cmd-9".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            first_event_at_ms: Some(1_700_000_000_000),
            first_event_summary: "exec /bin/bash -i".into(),
            detected_at_ms: Some(1_700_000_000_080),
            contained_at_ms: Some(1_700_000_000_312),
            contained_by: "isolate_host step of playbook:reverse-shell".into(),
            time_to_detect_ms: Some(80),
            time_to_contain_ms: Some(312),
            generated_at_ms: 1_700_000_010_000,
            process_tree: Some(ProcessTree {
                agent_id: "ab12".into(),
                process: Some(ProcessNode {
                    pid: 4242,
                    command: "bash -i".into(),
                    ..Default::default()
                }),
                seq: 9,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn markdown_has_every_section() {
        let md = markdown(&sample());
        assert!(md.starts_with("# Incident report: Reverse shell\n"));
        for heading in [
            "## Host",
            "## Detection and containment",
            "## Alerts",
            "## Process tree",
            "## Playbook runs",
            "### playbook:reverse-shell (succeeded)",
            "## Decisions, status changes and notes",
            "## Timeline",
        ] {
            assert!(md.contains(&format!("{heading}\n")), "{heading} in\n{md}");
        }
        assert!(md.contains("| web-1 | `ab12` | env=prod |"));
        assert!(md.contains("| **Time to detect** | 80 ms |"));
        assert!(md.contains("| **Time to contain** | 312 ms |"));
        assert!(md.contains("(isolate_host step of playbook:reverse-shell)"));
        assert!(md.contains("| 1 | isolate | isolate_host | succeeded | - | `cmd-9` |"));
        assert!(md.contains("| Florian Roth |"));
        assert!(!md.contains("## Approvals"), "no approvals, no section");
        assert!(md.contains("(marked ▶) of event ab12:9"), "{md}");
        assert!(md.contains("```text\n▶ pid 4242  start unknown  bash -i  (known only"));
    }

    #[test]
    fn cells_cannot_break_a_table() {
        let md = markdown(&sample());
        assert!(md.contains("| Shell \\| redirect |"));
        assert!(md.contains("| admin-alice | checked the host |"));
        for line in md.lines().filter(|l| l.starts_with('|')) {
            assert!(line.ends_with('|'), "{line}");
        }
    }

    #[test]
    fn unknown_times_are_said_so() {
        let mut r = sample();
        r.first_event_at_ms = None;
        r.contained_at_ms = None;
        r.time_to_detect_ms = None;
        r.time_to_contain_ms = None;
        r.runs.clear();
        r.process_tree = None;
        let md = markdown(&r);
        assert!(md.contains("No alert of this incident was raised by a stored process event."));
        assert!(md.contains("| Contained | not contained |"));
        assert!(md.contains("| **Time to contain** | unknown |"));
        assert!(md.contains("No playbook ran."));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(85), "85 ms");
        assert_eq!(duration(1_204), "1.204 s");
        assert_eq!(duration(192_000), "3 min 12 s");
    }
}
