//! The handlers of the incidents list, an incident's page with its triage forms and reports,
//! and the process-tree page. Each calls the core as the signed-in person; the guard has
//! checked the route's permission (Read to look, Triage to change).

use super::guard::{Caller, refused};
use super::incident_pages::{self, IncidentView, ListFilter};
use super::layout::{failed, html, reason_too_long};
use super::{Shared, tree_view};
use crate::core::{Controller, CoreError, IncidentRow, level_index};
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use cordon_proto::json::ToJson;
use cordon_proto::limits::MAX_LIST;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use std::sync::Arc;

/// The incidents matching `f`, newest first (checking the filters name a status and a level).
pub async fn matching(ctl: &Controller, f: &ListFilter) -> Result<Vec<IncidentRow>, CoreError> {
    if !f.severity.is_empty() {
        level_index(&f.severity)?;
    }
    let all = ctl.incidents(&f.status, MAX_LIST).await?;
    Ok(all
        .into_iter()
        .filter(|i| f.severity.is_empty() || i.severity == f.severity)
        .collect())
}

/// `GET /incidents`.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(f): Query<ListFilter>,
) -> Response {
    match matching(&shared.ctl, &f).await {
        Ok(rows) => html(incident_pages::incidents(&caller, &f, &rows)),
        Err(e) => failed(&e),
    }
}

/// `GET /incidents/{id}`.
pub async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let history = match shared.ctl.incident_history(&id).await {
        Ok(h) => h,
        Err(e) => return failed(&e),
    };
    let tree = first_tree(&shared.ctl, &history.details.alerts).await;
    let view = IncidentView {
        history: &history,
        tree,
    };
    html(incident_pages::incident(&caller, &view))
}

/// The tree of the incident's triggering process (as its report has it), or why there is
/// none.
async fn first_tree(
    ctl: &Controller,
    alerts: &[crate::core::AlertRow],
) -> Result<crate::core::process_tree::ProcessTree, String> {
    match ctl.incident_tree(alerts).await {
        Ok(Some((_, tree))) => Ok(tree),
        Ok(None) => Err("No alert of this incident was raised by a stored process event.".into()),
        Err(e) => Err(e.public_message()),
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    text: String,
}

/// `POST /incidents/{id}/note`.
pub async fn note(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    let added = shared
        .ctl
        .add_incident_note(&caller.admin, &id, &f.text)
        .await;
    back_to(added)
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
    #[serde(default)]
    reason: String,
}

/// `POST /incidents/{id}/status`: the status, then the reason as a note if one was given.
pub async fn status(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    if let Some(res) = reason_too_long(&f.reason) {
        return res;
    }
    let ctl = &shared.ctl;
    let set = ctl.set_incident_status(&caller.admin, &id, &f.status).await;
    let done = match set {
        Ok(full) if !f.reason.trim().is_empty() => {
            let text = format!("status set to {}: {}", f.status, f.reason.trim());
            ctl.add_incident_note(&caller.admin, &full, &text).await
        }
        other => other,
    };
    back_to(done)
}

#[derive(Deserialize)]
pub struct SeverityForm {
    severity: String,
    #[serde(default)]
    reason: String,
}

/// `POST /incidents/{id}/severity`.
pub async fn severity(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Form(f): Form<SeverityForm>,
) -> Response {
    if let Some(res) = reason_too_long(&f.reason) {
        return res;
    }
    let set = shared
        .ctl
        .set_incident_severity(&caller.admin, &id, &f.severity, f.reason.trim())
        .await;
    back_to(set)
}

/// Back to the incident's page after a change, or the error page.
fn back_to(done: Result<String, CoreError>) -> Response {
    match done {
        Ok(id) => Redirect::to(&format!("/incidents/{id}")).into_response(),
        Err(e) => failed(&e),
    }
}

/// `GET /incidents/{id}/report.md`: the report as `cordonctl incidents report` prints it.
pub async fn report_md(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.ctl.incident_report(&id).await {
        Ok(r) => {
            let name = file_name(r.incident.as_ref().map_or(&id, |i| &i.id), "md");
            let md = cordon_proto::report::markdown(&r);
            attachment(md, "text/markdown; charset=utf-8", &name)
        }
        Err(e) => failed(&e),
    }
}

/// `GET /incidents/{id}/report.json`: the same report as JSON.
pub async fn report_json(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.ctl.incident_report(&id).await {
        Ok(r) => {
            let name = file_name(r.incident.as_ref().map_or(&id, |i| &i.id), "json");
            // In the shape cordonctl's --json gives (names, not numbers). Protocol messages
            // always serialise (string keys, no non-finite numbers).
            let json = r
                .to_json()
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_default();
            attachment(json, "application/json", &name)
        }
        Err(e) => failed(&e),
    }
}

/// `incident-ID.EXT`, keeping only characters safe in a header and a file name.
fn file_name(id: &str, ext: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("incident-{id}.{ext}")
}

fn attachment(body: String, kind: &'static str, name: &str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    let disposition = format!("attachment; filename=\"{name}\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[derive(Deserialize)]
pub struct TreeQuery {
    pid: u32,
    #[serde(default)]
    start: Option<u64>,
    #[serde(default)]
    at: Option<i64>,
}

/// `GET /agents/{id}/tree?pid=P[&start=TICKS][&at=MS]`.
pub async fn tree(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(agent): Path<String>,
    q: Result<Query<TreeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return refused(StatusCode::BAD_REQUEST, "pid is a process id (a number)");
    };
    let start = q.start.filter(|t| *t > 0);
    match shared.ctl.process_tree(&agent, q.pid, start, q.at).await {
        Ok(t) => html(tree_view::tree_page(&caller, &t)),
        Err(e) => failed(&e),
    }
}
