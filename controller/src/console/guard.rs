//! What every console request passes through. `headers` sets the security headers on every
//! response (a CSP without inline script or style, nosniff, no referrer, no caching of
//! pages) and `Server-Timing: app;dur=MS`, the time the server took over the request (what
//! the console benchmark reads). `guard` runs before each route's handler: it looks the route up in
//! `routes::CONSOLE_ROUTES`, and for any route but the public ones requires a live session
//! (else back to the sign-in page), re-checks the person against the roster (a disabled or
//! revoked person's session ends), checks the CSRF token on anything but GET (else 403), and
//! checks the route's permission (else 403, audited), handing the handler a [`Caller`].

use super::routes::{Need, need};
use super::session::{self, Lookup, Session, same_token};
use super::{Shared, pages};
use crate::core::{Admin, CoreError};
use crate::policy::people::Kind;
use crate::policy::roles::{Permission, Role};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, Method, StatusCode, header};
use std::sync::Arc;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Largest form body read (to find its CSRF token).
const MAX_FORM: usize = 64 * 1024;

/// The signed-in person behind a request, as the guard checked them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admin: Admin,
    /// The session's id (its cookie) and CSRF token.
    pub session: String,
    pub csrf: String,
}

impl Caller {
    /// Whether the person's role holds `p` (the pages offer only what it does).
    pub fn may(&self, p: Permission) -> bool {
        self.admin.role.allows(p)
    }
}

/// Sets the security headers on every response, and the time the server took over it (up to
/// the response's head: a page is rendered by then, a live stream has only opened).
pub async fn headers(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut res = next.run(req).await;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={took:.2}")) {
        h.insert("server-timing", v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Checks the session, the CSRF token and the permission of a request to a route.
pub async fn guard(
    State(shared): State<Arc<Shared>>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let route = format!("{} {}", req.method(), matched.as_str());
    let permission = match need(req.method(), matched.as_str()) {
        Some(Need::Public) if req.method() == Method::GET => return next.run(req).await,
        Some(Need::Public) => return signing_in(req, next).await,
        Some(Need::Permission(p)) => p,
        None => return refused(StatusCode::FORBIDDEN, "this request is not allowed"),
    };
    let cookie = session::from_headers(req.headers());
    let Some((id, session)) = live_session(&shared, cookie).await else {
        return to_sign_in();
    };
    let req = if req.method() == Method::GET {
        req
    } else {
        match csrf_checked(req, &session.csrf).await {
            Ok(req) => req,
            Err(res) => return res,
        }
    };
    match authorize(&shared, &session, permission, &route).await {
        Ok(admin) => {
            let mut req = req;
            req.extensions_mut().insert(Caller {
                admin,
                session: id,
                csrf: session.csrf,
            });
            next.run(req).await
        }
        Err(CoreError::Inactive(_, why)) => {
            end(&shared, &id, &session, &why.to_string()).await;
            to_sign_in()
        }
        Err(e) => refused(StatusCode::FORBIDDEN, &e.public_message()),
    }
}

/// A public change (signing in): its form must carry the token its page set in a cookie.
async fn signing_in(req: Request, next: Next) -> Response {
    let Some(token) = session::cookie_value(req.headers(), session::SIGN_IN_COOKIE) else {
        return csrf_refused();
    };
    match csrf_checked(req, &token).await {
        Ok(req) => next.run(req).await,
        Err(res) => res,
    }
}

/// The live session the cookie names; a session found ended is audited.
async fn live_session(shared: &Shared, cookie: Option<String>) -> Option<(String, Session)> {
    let id = cookie?;
    match shared.sessions.lookup(&id) {
        Lookup::Live(s) => Some((id, s)),
        Lookup::Ended(s, why) => {
            shared.ctl.sign_out(&person(&s), why).await;
            None
        }
        Lookup::Missing => None,
    }
}

/// The person, checked against the roster and the permission; a refused permission is
/// audited.
async fn authorize(
    shared: &Shared,
    s: &Session,
    permission: Permission,
    route: &str,
) -> Result<Admin, CoreError> {
    let result = shared
        .ctl
        .authorize(Kind::User, &s.name, &s.serial, permission);
    if let Err(e) = &result
        && matches!(e, CoreError::PermissionDenied { .. })
    {
        tracing::warn!(name = %s.name, route, error = %e, "console permission refused");
        shared
            .ctl
            .record_refusal(
                Kind::User,
                &s.name,
                &s.serial,
                &format!("console {route}"),
                e,
            )
            .await;
    }
    result
}

/// Ends session `id` and audits why.
pub async fn end(shared: &Shared, id: &str, s: &Session, why: &str) {
    if shared.sessions.end(id).is_some() {
        shared.ctl.sign_out(&person(s), why).await;
    }
}

/// The session's person as the audit log names them (the role is not known here).
fn person(s: &Session) -> Admin {
    Admin {
        name: s.name.clone(),
        kind: Kind::User,
        role: Role::Viewer,
        serial: s.serial.clone(),
    }
}

/// The request again, if it carries the session's CSRF token (header `X-CSRF-Token` or
/// form field `csrf`); else the 403 answer.
async fn csrf_checked(req: Request, token: &str) -> Result<Request, Response> {
    let in_header = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(given) = in_header {
        return if same_token(&given, token) {
            Ok(req)
        } else {
            Err(csrf_refused())
        };
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is too large",
        ));
    };
    match form_field(&bytes, "csrf") {
        Some(given) if same_token(given, token) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(csrf_refused()),
    }
}

/// The raw value of field `name` in a URL-encoded form (CSRF tokens are hex: nothing to
/// decode).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn csrf_refused() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "this request lacks the page's CSRF token: reload the page and try again",
    )
}

/// Back to the sign-in page (the browser forgets the session).
pub fn to_sign_in() -> Response {
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cleared_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// An error page with `status`.
pub fn refused(status: StatusCode, message: &str) -> Response {
    let page = axum::response::Html(pages::error(status, message).into_string());
    (status, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_field_is_found_in_a_form() {
        assert_eq!(form_field(b"a=1&csrf=ab12&b=2", "csrf"), Some("ab12"));
        assert_eq!(form_field(b"xcsrf=ab12", "csrf"), None);
        assert_eq!(form_field(b"\xff", "csrf"), None);
    }

    #[test]
    fn the_csp_allows_no_inline_script_or_style() {
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
        assert!(CSP.contains("script-src 'self'") && CSP.contains("frame-ancestors 'none'"));
    }
}
