//! The console's request handlers: sign-in and sign-out, the pages, deciding an approval and
//! the embedded assets. Each calls the core as the signed-in person (the [`Caller`] the guard
//! checked) and answers with a page, a redirect, or an error page whose status follows the
//! core's error.

use super::guard::{Caller, refused, to_sign_in};
use super::layout::{failed, html, reason_too_long, status};
use super::{Peer, Shared, live, pages, session};
use crate::core::{CoreError, SignIn};
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use std::sync::Arc;

pub async fn not_found() -> Response {
    refused(StatusCode::NOT_FOUND, "there is no such page")
}

/// The sign-in page, with a fresh CSRF token in its form and in a cookie.
pub async fn login_page() -> Response {
    sign_in_page(StatusCode::OK, None)
}

fn sign_in_page(code: StatusCode, problem: Option<&str>) -> Response {
    public_form(code, |token| pages::login(token, problem))
}

/// A page whose form is posted before there is a session (signing in, taking up an invite):
/// its CSRF token goes into the form and into the cookie the guard compares it with.
pub fn public_form(code: StatusCode, page: impl FnOnce(&str) -> maud::Markup) -> Response {
    let token = session::sign_in_token();
    let mut res = (code, html(page(&token))).into_response();
    set_cookie(&mut res, &session::cookie(session::SIGN_IN_COOKIE, &token));
    res
}

fn set_cookie(res: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    name: String,
    password: String,
    #[serde(default)]
    code: String,
}

/// `POST /login`: a session and its cookie, or the sign-in page again saying why not.
pub async fn sign_in(
    State(shared): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    Form(f): Form<SignInForm>,
) -> Response {
    let id = session::new_id();
    let attempt = SignIn {
        name: &f.name,
        password: &f.password,
        code: &f.code,
        source: peer.0.ip(),
        serial: session::serial_for(&id),
    };
    let (code, problem) = match shared.ctl.sign_in(attempt).await {
        Ok(who) => {
            shared.sessions.open(&id, &who.name);
            tracing::info!(name = %who.name, source = %peer.0, "console sign-in");
            let mut res = Redirect::to("/").into_response();
            set_cookie(&mut res, &session::cookie(session::COOKIE, &id));
            return res;
        }
        Err(CoreError::SignInThrottled) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts: wait a minute, then try again.".to_string(),
        ),
        Err(CoreError::SignInRefused(_)) => (
            StatusCode::UNAUTHORIZED,
            "Wrong name, password or code.".to_string(),
        ),
        Err(e) => (status(&e), e.public_message()),
    };
    sign_in_page(code, Some(&problem))
}

/// `POST /logout`: ends the session.
pub async fn sign_out(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if shared.sessions.end(&caller.session).is_some() {
        shared.ctl.sign_out(&caller.admin, "signed out").await;
    }
    to_sign_in()
}

pub async fn overview(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match live::gather(&shared.ctl).await {
        Ok(o) => html(pages::overview(&caller, &o)),
        Err(e) => failed(&e),
    }
}

pub async fn approvals(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match shared.ctl.approvals(false).await {
        Ok(pending) => html(pages::approvals(&caller, &pending)),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
pub struct DecideForm {
    decision: String,
    #[serde(default)]
    reason: String,
    /// Where to go afterwards (a local path, such as the incident page the form was on).
    #[serde(default)]
    back: String,
}

/// `back` if it is a path on this site (not `//host/...`, not a URL with a scheme).
pub fn local_path(back: &str) -> Option<&str> {
    let local = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains(['\\', '\r', '\n'])
        && back.len() <= 512;
    local.then_some(back)
}

/// `POST /approvals/{id}/decide`: approve or deny, through the core's four-eyes rules.
pub async fn decide(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    if !f.back.is_empty() && local_path(&f.back).is_none() {
        return refused(StatusCode::BAD_REQUEST, "back must be a path on this site");
    }
    let approve = match f.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return refused(StatusCode::BAD_REQUEST, "the decision is approve or deny"),
    };
    if let Some(res) = reason_too_long(&f.reason) {
        return res;
    }
    let decided = shared
        .ctl
        .decide_approval(&caller.admin, &id, approve, &f.reason)
        .await;
    match decided {
        Ok(_) => Redirect::to(local_path(&f.back).unwrap_or("/approvals")).into_response(),
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_a_path_on_this_site_is_a_way_back() {
        assert_eq!(local_path("/incidents/inc-1"), Some("/incidents/inc-1"));
        for elsewhere in [
            "",
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "incidents",
        ] {
            assert_eq!(local_path(elsewhere), None, "{elsewhere}");
        }
    }
}
