//! What every console page shares: the page frame with its navigation (each link shown only
//! to a role that may use it), times, copyable ids, and the responses every handler gives (a
//! page, or an error page whose status follows the core's error).

use super::guard::{Caller, refused};
use crate::core::CoreError;
use crate::policy::roles::Permission;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest reason accepted with a decision or an action.
pub const MAX_REASON: usize = 1024;

/// The navigation: each page and the permission it needs to be offered.
const NAV: &[(&str, &str, Permission)] = &[
    ("/", "Overview", Permission::Read),
    ("/agents", "Agents", Permission::Read),
    ("/incidents", "Incidents", Permission::Read),
    ("/events", "Events", Permission::Read),
    ("/approvals", "Approvals", Permission::Read),
    ("/rules", "Rules", Permission::Read),
    ("/playbooks", "Playbooks", Permission::Read),
    ("/audit", "Audit", Permission::Read),
    ("/users", "Users", Permission::ManageUsers),
    ("/enrol", "Enrol a host", Permission::ManageAgents),
];

/// Scripts every page loads, as modules (each in its own scope, run after the page is
/// parsed; each acts only on the pages that have its elements).
const SCRIPTS: &[&str] = &["/assets/console.js", "/assets/incidents.js"];

/// A whole page: the navigation and sign-out for a signed-in person, then `body`.
pub fn page(title: &str, who: Option<&Caller>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Cordon" }
                link rel="stylesheet" href="/assets/console.css";
                @for s in SCRIPTS { script src=(s) type="module" {} }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                @if let Some(c) = who { (nav(c)) }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}

fn nav(c: &Caller) -> Markup {
    html! {
        header {
            nav aria-label="Main" {
                @for (href, label, need) in NAV {
                    @if c.may(*need) { a href=(href) { (label) } }
                }
            }
            span.who { (c.admin.name) " (" (c.admin.role.name()) ")" }
            @if c.may(Permission::OwnCredential) {
                form.signout method="post" action="/logout" {
                    (csrf(c))
                    button type="submit" { "Sign out" }
                }
            }
        }
    }
}

/// The hidden CSRF field every form that changes something carries.
pub fn csrf(c: &Caller) -> Markup {
    html! { input type="hidden" name="csrf" value=(c.csrf); }
}

/// A time, shown in UTC and turned by the script into the browser's time zone, with how
/// long ago it was.
pub fn when(ms: i64) -> Markup {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    html! { time datetime=(t) data-ms=(ms) { (t) } }
}

/// An id, in monospace, with a button that copies it.
pub fn id(value: &str) -> Markup {
    html! {
        span.id { code { (value) } button.copy type="button" data-copy=(value) aria-label={ "Copy " (value) } { "Copy" } }
    }
}

/// A page as the response.
pub fn html(m: Markup) -> Response {
    Html(m.into_string()).into_response()
}

/// The 400 page for a reason longer than [`MAX_REASON`] characters; `None` for one that fits.
pub fn reason_too_long(reason: &str) -> Option<Response> {
    (reason.chars().count() > MAX_REASON).then(|| {
        let why = format!("a reason is at most {MAX_REASON} characters");
        refused(StatusCode::BAD_REQUEST, &why)
    })
}

/// The error page for a failed core operation.
pub fn failed(e: &CoreError) -> Response {
    if e.is_internal() {
        tracing::error!(error = %e, "console: internal failure");
    }
    refused(status(e), &e.public_message())
}

/// The HTTP status for each way a core operation fails.
pub fn status(e: &CoreError) -> StatusCode {
    use CoreError::*;
    match e {
        _ if e.is_internal() => StatusCode::INTERNAL_SERVER_ERROR,
        NoAgent(_)
        | NoApproval(_)
        | NoIncident(_)
        | NoAlert(_)
        | NoUser(_)
        | NoRule(_)
        | NoPlaybook(_)
        | NoProcess { .. } => StatusCode::NOT_FOUND,
        PermissionDenied { .. } | OwnRequest(_) | ServiceCannotApprove(_) | Inactive(..) => {
            StatusCode::FORBIDDEN
        }
        ApprovalDecided { .. } => StatusCode::CONFLICT,
        SignInThrottled => StatusCode::TOO_MANY_REQUESTS,
        SignInRefused(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    }
}
