//! The rules page (`GET /rules`): every Sigma rule with its state; for those who manage
//! detection, enabling and disabling each and uploading a rule (its YAML, pasted); and for
//! everyone, trying a rule (a stored one or pasted YAML) on a pasted event, with nothing
//! stored. Every change goes through the core as the signed-in person.

use super::Shared;
use super::guard::{Caller, refused};
use super::layout::{csrf, failed, html, page, when};
use super::urls::encode;
use crate::core::{CoreError, MAX_TEST_EVENT, RuleFile, RuleRow, RuleTest, RuleToTest};
use crate::policy::roles::Permission;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// What the page shows besides the list: a refusal, what was typed, a test's verdict.
#[derive(Debug, Default)]
struct View {
    problem: Option<String>,
    notice: Option<String>,
    upload: String,
    test: TestForm,
    verdict: Option<RuleTest>,
}

/// `GET /rules`.
pub async fn rules(State(s): State<Arc<Shared>>, Extension(c): Extension<Caller>) -> Response {
    show(&s, &c, StatusCode::OK, View::default()).await
}

async fn show(s: &Shared, c: &Caller, code: StatusCode, v: View) -> Response {
    match s.ctl.rules().await {
        Ok(all) => (code, html(render(c, &all, &v))).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
pub struct EnabledForm {
    enabled: bool,
}

/// `POST /rules/{id}/enabled`.
pub async fn set_enabled(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    Form(f): Form<EnabledForm>,
) -> Response {
    match s.ctl.set_rule_enabled(&c.admin, &id, f.enabled).await {
        Ok(_) => Redirect::to("/rules").into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
pub struct UploadForm {
    #[serde(default)]
    yaml: String,
}

/// `POST /rules/upload`: one rule's YAML; a rule that does not load changes nothing and the
/// page says why.
pub async fn upload(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Form(f): Form<UploadForm>,
) -> Response {
    if f.yaml.trim().is_empty() {
        return refused(StatusCode::BAD_REQUEST, "paste a rule's YAML first");
    }
    let file = RuleFile {
        origin: format!("console: {}", c.admin.name),
        yaml: f.yaml.clone(),
    };
    let problem = match s.ctl.import_rules(&c.admin, vec![file]).await {
        Ok(outcomes) => match outcomes.into_iter().next() {
            Some(o) if o.outcome == "loaded" => {
                let notice = format!("Rule {} ({}) is loaded and enabled.", o.title, o.rule_id);
                let v = View {
                    notice: Some(notice),
                    ..View::default()
                };
                return show(&s, &c, StatusCode::OK, v).await;
            }
            Some(o) => format!("The rule was not added ({}): {}", o.outcome, o.reason),
            None => "The rule was not added.".to_string(),
        },
        Err(e) if e.is_internal() => return failed(&e),
        Err(e) => e.public_message(),
    };
    let v = View {
        problem: Some(problem),
        upload: f.yaml,
        ..View::default()
    };
    show(&s, &c, StatusCode::BAD_REQUEST, v).await
}

#[derive(Deserialize, Debug, Default)]
pub struct TestForm {
    /// A stored rule's id; empty: the pasted YAML.
    #[serde(default)]
    rule: String,
    #[serde(default)]
    yaml: String,
    #[serde(default)]
    event: String,
}

/// `POST /rules/test`: the verdict of one rule on one event (nothing is stored).
pub async fn test(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Form(f): Form<TestForm>,
) -> Response {
    let rule = match (f.rule.as_str(), f.yaml.trim()) {
        ("", "") => return refused(StatusCode::BAD_REQUEST, "choose a rule or paste one"),
        ("", _) => RuleToTest::Yaml(f.yaml.clone()),
        (id, _) => RuleToTest::Stored(id.to_string()),
    };
    let (code, v) = match s.ctl.test_rule(rule, &f.event).await {
        Ok(verdict) => (
            StatusCode::OK,
            View {
                verdict: Some(verdict),
                test: f,
                ..View::default()
            },
        ),
        Err(e) if e.is_internal() => return failed(&e),
        Err(e) => (
            bad_input(&e),
            View {
                problem: Some(e.public_message()),
                test: f,
                ..View::default()
            },
        ),
    };
    show(&s, &c, code, v).await
}

fn bad_input(e: &CoreError) -> StatusCode {
    match e {
        CoreError::NoRule(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn render(c: &Caller, all: &[RuleRow], v: &View) -> Markup {
    let manage = c.may(Permission::ManageDetection);
    let body = html! {
        @if let Some(p) = &v.problem { p.problem #rules-problem role="alert" { (p) } }
        @if let Some(n) = &v.notice { p.notice #rules-notice role="status" { (n) } }
        p { (all.len()) " rules, " (all.iter().filter(|r| r.enabled).count()) " enabled." }
        table {
            thead { tr { th { "Rule" } th { "Title" } th { "Level" } th { "Author" } th { "State" } th { "Origin" } th { "Imported" } } }
            tbody #rules { @for r in all { (row(c, r, manage)) } }
        }
        @if manage { (upload_form(c, &v.upload)) }
        (test_form(c, all, &v.test, v.verdict.as_ref()))
    };
    page("Rules", Some(c), body)
}

fn row(c: &Caller, r: &RuleRow, manage: bool) -> Markup {
    html! {
        tr data-rule=(r.id) {
            td.id { (r.id) }
            td { (r.title) }
            td { (r.level) }
            td { (r.author) }
            td {
                @if r.enabled { "enabled" } @else { "disabled" }
                @if manage {
                    form.inline method="post" action={ "/rules/" (encode(&r.id)) "/enabled" } {
                        (csrf(c))
                        input type="hidden" name="enabled" value=(!r.enabled);
                        button type="submit" aria-label={ @if r.enabled { "Disable " } @else { "Enable " } (r.title) } {
                            @if r.enabled { "Disable" } @else { "Enable" }
                        }
                    }
                }
            }
            td { (r.origin) }
            td { (when(r.imported_at_ms)) }
        }
    }
}

fn upload_form(c: &Caller, yaml: &str) -> Markup {
    html! {
        h2 { "Upload a rule" }
        form.stack #rule-upload method="post" action="/rules/upload" {
            (csrf(c))
            label { "Sigma rule (YAML)" textarea #rule-yaml name="yaml" rows="12" required { (yaml) } }
            button type="submit" { "Upload the rule" }
        }
    }
}

fn test_form(c: &Caller, all: &[RuleRow], f: &TestForm, verdict: Option<&RuleTest>) -> Markup {
    html! {
        h2 { "Test a rule on an event" }
        p {
            "The event is a JSON object of Sigma fields (" code { "Image" } ", " code { "CommandLine" }
            ", " code { "ParentImage" } ", ...; " code { "category" } " is " code { "process_creation" }
            " unless given), or an event as " code { "cordonctl events query --json" } " prints it. At most " (MAX_TEST_EVENT / 1024) " KiB. Nothing is stored."
        }
        form.stack #rule-test method="post" action="/rules/test" {
            (csrf(c))
            label { "Rule"
                select name="rule" {
                    option value="" selected[f.rule.is_empty()] { "The pasted YAML below" }
                    @for r in all { option value=(r.id) selected[f.rule == r.id] { (r.title) " (" (r.id) ")" } }
                }
            }
            label { "Pasted rule (YAML)" textarea name="yaml" rows="8" { (f.yaml) } }
            label { "Event (JSON)" textarea name="event" rows="6" required { (f.event) } }
            button type="submit" { "Test" }
        }
        @if let Some(t) = verdict {
            p #rule-test-result role="status" data-matched=(t.matched) {
                @if t.matched { strong { "Match: " } } @else { strong { "No match: " } }
                (t.title) " (" (t.rule_id) ", " (t.level) ") on a " (t.category) " event."
            }
            p #rule-test-selections {
                "Selections that match the event on their own: "
                @if t.selections.is_empty() { "none" } @else { (t.selections.join(", ")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::caller;
    use crate::policy::roles::Role;

    fn rule(id: &str, enabled: bool) -> RuleRow {
        RuleRow {
            id: id.into(),
            title: "<b>Curl</b> piped".into(),
            level: "high".into(),
            status: "test".into(),
            author: "sec".into(),
            tags: vec![],
            logsource: "process_creation".into(),
            origin: "rules/curl.yml".into(),
            source: String::new(),
            enabled,
            imported_at_ms: 0,
        }
    }

    #[test]
    fn only_those_who_manage_detection_get_the_forms() {
        let all = [rule("r1", true), rule("r2/x", false)];
        let admin = render(&caller("ada", Role::Admin), &all, &View::default()).into_string();
        assert!(admin.contains("action=\"/rules/r1/enabled\"") && admin.contains("/rules/upload"));
        assert!(admin.contains("name=\"enabled\" value=\"false\"") && admin.contains(">Enable<"));
        assert!(admin.contains("action=\"/rules/r2%2Fx/enabled\""));
        let viewer = render(&caller("vic", Role::Responder), &all, &View::default());
        let viewer = viewer.into_string();
        assert!(!viewer.contains("/enabled\"") && !viewer.contains("/rules/upload"));
        assert!(viewer.contains("id=\"rules\"") && viewer.contains("/rules/test"));
        assert!(viewer.contains("&lt;b&gt;Curl") && !viewer.contains("<b>Curl"));
    }

    #[test]
    fn a_verdict_and_a_problem_are_shown() {
        let verdict = RuleTest {
            rule_id: "r1".into(),
            title: "Curl".into(),
            level: "high".into(),
            category: "process_creation".into(),
            matched: true,
            selections: vec!["selection".into()],
        };
        let v = View {
            verdict: Some(verdict),
            problem: Some("bad <yaml>".into()),
            ..View::default()
        };
        let page = render(&caller("vic", Role::Viewer), &[], &v).into_string();
        assert!(page.contains("data-matched=\"true\"") && page.contains("Match: "));
        assert!(page.contains("on their own: selection<"));
        assert!(page.contains("bad &lt;yaml&gt;"));
    }
}
