//! The incidents list and an incident's page, written with maud: the list with its filters
//! (rows also sent live, keyed by incident id), and the page with its live timeline, its
//! alerts and their triggering events, the process tree, playbook runs step by step with
//! their approvals inline, the triage forms (for those who may triage) and the reports.

use super::events_page::{process_of, tree_href};
use super::guard::Caller;
use super::layout::{csrf, id, page, when};
use super::pages::decision;
use super::tree_view;
use crate::core::process_tree::ProcessTree;
use crate::core::{
    AlertRow, ApprovalRow, ApprovalStatus, IncidentHistory, IncidentRow, IncidentStatus,
    TimelineRow,
};
use crate::policy::grouping::LEVELS;
use crate::policy::roles::Permission;
use maud::{Markup, html};

/// The list's filters, as the query string gives them (empty: any).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListFilter {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub severity: String,
}

impl ListFilter {
    /// The live stream of the list with these filters.
    /// (The handler has checked both are names of a status and a level, or empty.)
    pub fn live_url(&self) -> String {
        format!(
            "/live/incidents?status={}&severity={}",
            self.status, self.severity
        )
    }
}

pub fn incidents(c: &Caller, f: &ListFilter, rows: &[IncidentRow]) -> Markup {
    let body = html! {
        form.filters method="get" action="/incidents" {
            label { "Status " (choice("status", IncidentStatus::NAMES, &f.status)) }
            label { "Severity " (choice("severity", &LEVELS, &f.severity)) }
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "Incident" } th { "Severity" } th { "Status" } th { "Host" } th { "Alerts" } th { "Opened" } th { "Updated" } } }
            tbody #incidents data-live=(f.live_url()) data-live-order="newest-first" {
                @if rows.is_empty() { tr.empty { td colspan="7" { "No incidents match." } } }
                @for i in rows { (incident_row(i)) }
            }
        }
    };
    page("Incidents", Some(c), body)
}

/// A select of `names` with an "any" choice, `chosen` selected.
fn choice(name: &str, names: &[&str], chosen: &str) -> Markup {
    html! {
        select name=(name) {
            option value="" selected[chosen.is_empty()] { "any" }
            @for n in names { option value=(n) selected[*n == chosen] { (n) } }
        }
    }
}

/// One incident's row (also sent live, keyed by its id).
pub fn incident_row(i: &IncidentRow) -> Markup {
    html! {
        tr data-key=(i.id) {
            td { a href={ "/incidents/" (i.id) } { (i.title) } " " code { (i.id) } }
            td { span class={ "severity " (i.severity) } { (i.severity) } }
            td { (i.status) }
            td.id { (i.agent_id) }
            td { (i.alert_count) }
            td { (when(i.opened_at_ms)) }
            td { (when(i.updated_at_ms)) }
        }
    }
}

/// One timeline entry (also sent live, keyed by its place on the timeline).
pub fn timeline_entry(index: usize, t: &TimelineRow) -> Markup {
    html! {
        li data-key=(index) {
            (when(t.at_ms)) " "
            span.kind { (t.kind) } " "
            span.actor { (t.actor) } ": "
            span.text { (t.text) }
        }
    }
}

/// Everything the incident page shows.
pub struct IncidentView<'a> {
    pub history: &'a IncidentHistory,
    /// The tree of the most severe alert's triggering process, or why there is none.
    pub tree: Result<ProcessTree, String>,
}

pub fn incident(c: &Caller, v: &IncidentView<'_>) -> Markup {
    let d = &v.history.details;
    let i = &d.incident;
    let back = format!("/incidents/{}", i.id);
    let host = v.history.agent.as_ref().map(|a| a.host.hostname.as_str());
    let body = html! {
        dl.facts {
            div { dt { "Incident" } dd { (id(&i.id)) } }
            div { dt { "Host" } dd { a href={ "/agents/" (i.agent_id) } { (host.unwrap_or(&i.agent_id)) } } }
            div { dt { "Status" } dd #status { (i.status) } }
            div { dt { "Severity" } dd #severity { (i.severity) } }
            div { dt { "Opened" } dd { (when(i.opened_at_ms)) } }
            div { dt { "Alerts" } dd { (i.alert_count) } }
        }
        p.reports {
            a #report-md href={ (back) "/report.md" } download { "Report (Markdown)" } " "
            a #report-json href={ (back) "/report.json" } download { "Report (JSON)" }
        }
        @if c.may(Permission::Triage) { (triage(c, i)) }
        h2 { "Timeline" }
        ol #timeline data-live={ "/live" (back) } {
            @for (n, t) in d.timeline.iter().enumerate() { (timeline_entry(n, t)) }
        }
        h2 { "Alerts" }
        section #alerts { @for a in &d.alerts { (alert(a)) } }
        h2 { "Process tree" }
        @match &v.tree {
            Ok(t) => (tree_view::tree(t)),
            Err(why) => p #process-tree { (why) },
        }
        h2 { "Playbook runs" }
        (runs(c, v.history, &back))
    };
    page(&i.title, Some(c), body)
}

/// The status, severity and note forms.
fn triage(c: &Caller, i: &IncidentRow) -> Markup {
    let action = |what: &str| format!("/incidents/{}/{what}", i.id);
    html! {
        section.triage aria-label="Triage" {
            form #set-status method="post" action=(action("status")) {
                (csrf(c))
                label { "Status " select name="status" {
                    @for s in IncidentStatus::NAMES { option value=(s) selected[*s == i.status.as_str()] { (s) } }
                } }
                label { "Reason " input type="text" name="reason" maxlength="1024"; }
                button type="submit" { "Set status" }
            }
            form #set-severity method="post" action=(action("severity")) {
                (csrf(c))
                label { "Severity " select name="severity" {
                    @for l in LEVELS { option value=(l) selected[*l == i.severity] { (l) } }
                } }
                label { "Reason " input type="text" name="reason" maxlength="1024"; }
                button type="submit" { "Set severity" }
            }
            form #add-note method="post" action=(action("note")) {
                (csrf(c))
                label { "Note " textarea name="text" required maxlength="4096" rows="3" {} }
                button type="submit" { "Add note" }
            }
        }
    }
}

fn alert(a: &AlertRow) -> Markup {
    let process = a.event.as_ref().and_then(|e| process_of(e).map(|p| (e, p)));
    html! {
        article.alert data-key=(a.id) {
            h3 { (a.rule.title) }
            dl.facts {
                div { dt { "Rule" } dd { code { (a.rule.rule_id) } } }
                div { dt { "Level" } dd { (a.rule.level) } }
                div { dt { "Author" } dd { (a.rule.author) } }
                div { dt { "Count" } dd { (a.count) } }
                div { dt { "First seen" } dd { (when(a.first_at_ms)) } }
                div { dt { "Triggering event" } dd {
                    @match &a.event {
                        Some(e) => { code { (e.summary) } " (event " (e.seq) ")" }
                        None => "no longer stored",
                    }
                    @if let Some((e, p)) = &process {
                        " " a href=(tree_href(&e.agent_id, p, e.time_ms)) { "Process tree of pid " (p.pid) }
                    }
                } }
            }
        }
    }
}

fn runs(c: &Caller, h: &IncidentHistory, back: &str) -> Markup {
    let approvals = &h.details.approvals;
    html! {
        @if h.runs.is_empty() { p { "No playbook ran." } }
        @for (run, steps) in &h.runs {
            @let theirs: Vec<&ApprovalRow> = approvals.iter().filter(|a| a.run_id == run.id).collect();
            section.run {
                h3 { "playbook:" (run.playbook) " (" (run.status) @if run.dry_run { ", dry run" } ")" }
                p { "Run " code { (run.id) } ", started " (when(run.started_at_ms)) "." }
                ol.steps {
                    @for s in steps {
                        li {
                            strong { (s.name) } " " code { (s.action) } ": " (s.status)
                            @if !s.detail.is_empty() { " (" (s.detail) ")" }
                            @for a in theirs.iter().filter(|a| a.idx == s.idx) { (approval(c, a, back)) }
                        }
                    }
                    @for a in theirs.iter().filter(|a| !steps.iter().any(|s| s.idx == a.idx)) {
                        li { "step " (a.idx + 1) " waits: " (approval(c, a, back)) }
                    }
                }
            }
        }
    }
}

/// An approval of a run's step: who asked, how it stands, and the decision form if it waits.
fn approval(c: &Caller, a: &ApprovalRow, back: &str) -> Markup {
    html! {
        div.approval data-key=(a.id) {
            "Approval " code { (a.id) } " to " (a.what) ", asked by " (a.requested_by) ": " (a.status)
            @if !a.decided_by.is_empty() { " by " (a.decided_by) }
            @if a.status == ApprovalStatus::Pending { (decision(c, a, Some(back))) }
        }
    }
}

#[cfg(test)]
mod tests;
