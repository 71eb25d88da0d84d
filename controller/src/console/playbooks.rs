//! The playbooks page (`GET /playbooks`): every playbook with its enabled and dry-run state
//! (each switchable by those who manage detection, through the core as the signed-in person),
//! and the newest runs with their steps, each linking to its incident.

use super::Shared;
use super::guard::Caller;
use super::layout::{csrf, failed, html, id, page, when};
use crate::core::{PlaybookInfo, RunDetail};
use crate::policy::roles::Permission;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// Runs shown.
const RUNS: u32 = 50;

/// `GET /playbooks`.
pub async fn playbooks(State(s): State<Arc<Shared>>, Extension(c): Extension<Caller>) -> Response {
    let all = match s.ctl.list_playbooks().await {
        Ok(all) => all,
        Err(e) => return failed(&e),
    };
    match s.ctl.recent_runs(RUNS).await {
        Ok(runs) => html(render(&c, &all, &runs)),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    on: bool,
}

/// `POST /playbooks/{name}/enabled`.
pub async fn set_enabled(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    Form(f): Form<SwitchForm>,
) -> Response {
    back(s.ctl.set_playbook_enabled(&c.admin, &name, f.on).await)
}

/// `POST /playbooks/{name}/dry-run`.
pub async fn set_dry_run(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    Form(f): Form<SwitchForm>,
) -> Response {
    back(s.ctl.set_playbook_dry_run(&c.admin, &name, f.on).await)
}

fn back<T>(r: Result<T, crate::core::CoreError>) -> Response {
    match r {
        Ok(_) => Redirect::to("/playbooks").into_response(),
        Err(e) => failed(&e),
    }
}

fn render(c: &Caller, all: &[PlaybookInfo], runs: &[RunDetail]) -> Markup {
    let manage = c.may(Permission::ManageDetection);
    let body = html! {
        @if all.is_empty() { p { "No playbooks are loaded." } }
        table {
            thead { tr { th { "Playbook" } th { "Description" } th { "Steps" } th { "Enabled" } th { "Dry run" } th { "Origin" } th { "In force since" } } }
            tbody #playbooks { @for p in all { (row(c, p, manage)) } }
        }
        h2 { "Recent runs" }
        @if runs.is_empty() { p { "No playbook has run yet." } }
        table {
            thead { tr { th { "Run" } th { "Playbook" } th { "Incident" } th { "Status" } th { "Started" } th { "Steps" } } }
            tbody #runs { @for r in runs { (run(r)) } }
        }
    };
    page("Playbooks", Some(c), body)
}

fn row(c: &Caller, p: &PlaybookInfo, manage: bool) -> Markup {
    html! {
        tr data-playbook=(p.name) {
            td { (p.name) }
            td { (p.description) }
            td { (p.steps) }
            td.enabled {
                @if p.enabled { "enabled" } @else { "disabled" }
                @if manage { (switch(c, p, "enabled", p.enabled, "Disable", "Enable")) }
            }
            td.dry-run {
                @if p.dry_run { "on" } @else { "off" }
                @if manage { (switch(c, p, "dry-run", p.dry_run, "Turn dry run off", "Turn dry run on")) }
            }
            td { (p.origin) }
            td { (when(p.updated_at_ms)) }
        }
    }
}

/// A form that flips one setting of `p`.
fn switch(c: &Caller, p: &PlaybookInfo, what: &str, now: bool, off: &str, on: &str) -> Markup {
    let label = if now { off } else { on };
    html! {
        form.inline method="post" action={ "/playbooks/" (p.name) "/" (what) } {
            (csrf(c))
            input type="hidden" name="on" value=(!now);
            button type="submit" aria-label={ (label) ": " (p.name) } { (label) }
        }
    }
}

fn run((r, steps): &RunDetail) -> Markup {
    html! {
        tr {
            td { (id(&r.id)) @if r.dry_run { " (dry run)" } }
            td { (r.playbook) }
            td { @if r.incident_id.is_empty() { "-" } @else { a href={ "/incidents/" (r.incident_id) } { (r.incident_id) } } }
            td { (r.status.to_string()) }
            td { (when(r.started_at_ms)) }
            td {
                ol.steps {
                    @for s in steps {
                        li { (s.name) " (" (s.action) "): " (s.status.to_string()) @if !s.detail.is_empty() { " — " (s.detail) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::caller;
    use crate::policy::roles::Role;

    fn info(name: &str) -> PlaybookInfo {
        PlaybookInfo {
            name: name.into(),
            description: "contain".into(),
            enabled: true,
            dry_run: false,
            origin: "playbooks/contain.yml".into(),
            steps: 2,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn a_run_shows_its_steps_and_links_to_its_incident() {
        use crate::store::{RunRow, RunStatus, StepRow, StepStatus};
        let run = RunRow {
            id: "run-1".into(),
            playbook: "contain".into(),
            source: String::new(),
            alert_id: "alr-1".into(),
            incident_id: "inc-7".into(),
            agent_id: "a1".into(),
            dry_run: true,
            status: RunStatus::Succeeded,
            step: 1,
            started_at_ms: 0,
            updated_at_ms: 0,
        };
        let step = StepRow {
            idx: 0,
            name: "isolate".into(),
            action: "isolate_host".into(),
            status: StepStatus::Succeeded,
            detail: "<would isolate>".into(),
            command_id: String::new(),
            started_at_ms: 0,
            finished_at_ms: 0,
        };
        let page = render(&caller("vic", Role::Viewer), &[], &[(run, vec![step])]).into_string();
        assert!(page.contains("href=\"/incidents/inc-7\"") && page.contains("(dry run)"));
        assert!(page.contains("isolate (isolate_host): succeeded"));
        assert!(page.contains("&lt;would isolate&gt;"));
    }

    #[test]
    fn only_those_who_manage_detection_can_switch() {
        let all = [info("contain")];
        let admin = render(&caller("ada", Role::Admin), &all, &[]).into_string();
        assert!(admin.contains("action=\"/playbooks/contain/enabled\""));
        assert!(admin.contains("action=\"/playbooks/contain/dry-run\""));
        assert!(admin.contains("Turn dry run on") && admin.contains(">Disable<"));
        let approver = render(&caller("bo", Role::Approver), &all, &[]).into_string();
        assert!(!approver.contains("method=\"post\" action=\"/playbooks"));
        assert!(approver.contains("id=\"playbooks\"") && approver.contains("contain"));
    }
}
