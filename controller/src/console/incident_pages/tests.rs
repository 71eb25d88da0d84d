//! The incident pages as each role sees them: triage forms only for those who may triage,
//! a pending approval's form returning to the incident, the tree marking its process, and
//! what hosts wrote escaped.

use super::*;
use crate::console::fixtures::caller;
use crate::core::process_tree::{ProcessTree, processes};
use crate::core::{IncidentDetails, StoredEvent};
use crate::policy::roles::Role;
use crate::store::conformance::exec;

fn incident_row() -> IncidentRow {
    IncidentRow {
        id: "inc-1".into(),
        agent_id: "ag-1".into(),
        status: IncidentStatus::Open,
        severity: "high".into(),
        title: "Reverse <shell>".into(),
        opened_at_ms: 1,
        updated_at_ms: 2,
        alert_count: 1,
    }
}

fn history() -> IncidentHistory {
    let mut approval = crate::core::ApprovalRow::pending(
        "playbook:rs".into(),
        "ag-1".into(),
        "isolate ag-1".into(),
        "why".into(),
        0,
        std::time::Duration::from_secs(60),
    );
    approval.id = "apr-9".into();
    approval.run_id = "run-1".into();
    approval.incident_id = "inc-1".into();
    let run = crate::core::RunRow {
        id: "run-1".into(),
        playbook: "rs".into(),
        source: String::new(),
        alert_id: "al-1".into(),
        incident_id: "inc-1".into(),
        agent_id: "ag-1".into(),
        dry_run: false,
        status: crate::store::RunStatus::WaitingApproval,
        step: 0,
        started_at_ms: 1,
        updated_at_ms: 1,
    };
    IncidentHistory {
        details: IncidentDetails {
            incident: incident_row(),
            timeline: vec![TimelineRow {
                at_ms: 1,
                kind: "note".into(),
                actor: "alice".into(),
                text: "<img src=x>".into(),
                reference: String::new(),
            }],
            alerts: Vec::new(),
            approvals: vec![approval],
        },
        agent: None,
        runs: vec![(run, Vec::new())],
    }
}

fn tree() -> ProcessTree {
    let events: Vec<StoredEvent> = vec![exec("ag-1", 1, (10, 1, 5), "sh -c curl")];
    let target = exec("ag-1", 2, (11, 10, 6), "curl http://x");
    let mut process = processes(&[target]).remove(0);
    process.exit = Some(crate::core::process_tree::Exit {
        time_ms: 9,
        code: 0,
        signal: 9,
        lifetime_ms: 1_500,
    });
    ProcessTree {
        agent_id: "ag-1".into(),
        ancestors: processes(&events),
        process: crate::core::process_tree::TreeNode {
            process,
            children: Vec::new(),
        },
        truncated: false,
    }
}

fn page(role: Role) -> String {
    let h = history();
    let view = IncidentView {
        history: &h,
        tree: Ok(tree()),
    };
    incident(&caller("bob", role), &view).into_string()
}

#[test]
fn only_those_who_triage_get_the_forms_and_approvers_the_decision() {
    let analyst = page(Role::Analyst);
    for form in [
        "id=\"set-status\"",
        "id=\"set-severity\"",
        "id=\"add-note\"",
    ] {
        assert!(analyst.contains(form), "{form}");
    }
    let viewer = page(Role::Viewer);
    for form in [
        "set-status",
        "set-severity",
        "add-note",
        "value=\"approve\"",
    ] {
        assert!(!viewer.contains(form), "{form} for a viewer");
    }
    for p in [&analyst, &viewer] {
        assert!(p.contains("id=\"report-md\"") && p.contains("/incidents/inc-1/report.json"));
        assert!(p.contains("id=\"timeline\"") && p.contains("data-live=\"/live/incidents/inc-1\""));
    }
    let approver = page(Role::Approver);
    assert!(approver.contains("action=\"/approvals/apr-9/decide\""));
    assert!(approver.contains("name=\"back\" value=\"/incidents/inc-1\""));
}

#[test]
fn the_tree_marks_its_process_and_text_is_escaped() {
    let p = page(Role::Viewer);
    let current = p.find("aria-current=\"true\"").expect("marked");
    let parent = p.find("sh -c curl").expect("parent");
    let me = p.find("curl http://x").expect("process");
    assert!(parent < current && current < me, "{p}");
    assert!(
        p.contains("</time> (killed by signal 9 after 1.500 s)</span>"),
        "{p}"
    );
    assert!(p.contains("&lt;img src=x&gt;") && !p.contains("<img"));
    assert!(p.contains("Reverse &lt;shell&gt;"));
}

#[test]
fn the_list_offers_its_filters_and_follows_them_live() {
    let f = ListFilter {
        status: "open".into(),
        severity: "high".into(),
    };
    let p = incidents(&caller("vera", Role::Viewer), &f, &[incident_row()]).into_string();
    assert!(p.contains("data-live=\"/live/incidents?status=open&amp;severity=high\""));
    assert!(p.contains("href=\"/incidents/inc-1\"") && p.contains("id=\"incidents\""));
    assert!(p.contains("<option value=\"high\" selected>"));
}
