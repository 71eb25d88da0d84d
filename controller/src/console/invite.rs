//! Taking up an invite in the web console (`GET` and `POST /invite`, reachable before signing
//! in): the invitee enters the one-time code an administrator gave them and chooses their
//! console password; the core uses the code up, sets the password and audits it
//! (`user.accept_invite`). They then sign in as usual. The form carries a CSRF token bound to
//! a cookie, as the sign-in form does.

use super::Shared;
use super::handlers::public_form;
use super::layout::page;
use crate::core::MIN_PASSWORD;
use axum::extract::{Form, State};
use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// `GET /invite`.
pub async fn invite_page() -> Response {
    public_form(StatusCode::OK, |token| form(token, None))
}

#[derive(Deserialize)]
pub struct AcceptForm {
    code: String,
    password: String,
    again: String,
}

/// `POST /invite`: the welcome page, or the form again saying what went wrong.
pub async fn accept(State(s): State<Arc<Shared>>, Form(f): Form<AcceptForm>) -> Response {
    if f.password != f.again {
        let why = "The two passwords differ.";
        return public_form(StatusCode::BAD_REQUEST, |t| form(t, Some(why)));
    }
    match s.ctl.accept_invite(f.code.trim(), &f.password).await {
        Ok(p) => public_form(StatusCode::OK, |_| welcome(&p.name)),
        Err(e) => {
            let code = if e.is_internal() {
                tracing::error!(error = %e, "console: taking up an invite failed");
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            public_form(code, |t| form(t, Some(&e.public_message())))
        }
    }
}

fn form(token: &str, problem: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(msg) = problem { p.problem role="alert" { (msg) } }
        p { "Enter the invite code an administrator gave you and choose your password for this console." }
        form.login #accept-invite method="post" action="/invite" {
            input type="hidden" name="csrf" value=(token);
            label { "Invite code" input type="text" name="code" autocomplete="off" required; }
            label { "New password (at least " (MIN_PASSWORD) " characters)" input type="password" name="password" autocomplete="new-password" minlength=(MIN_PASSWORD) required; }
            label { "The password again" input type="password" name="again" autocomplete="new-password" minlength=(MIN_PASSWORD) required; }
            button type="submit" { "Set my password" }
        }
    };
    page("Accept an invite", None, body)
}

fn welcome(name: &str) -> Markup {
    let body = html! {
        p #invite-accepted role="status" { "Welcome, " (name) ": your password is set and the invite code is used up." }
        p { a href="/login" { "Sign in" } }
    };
    page("Invite accepted", None, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_carries_its_token_and_escapes_the_problem() {
        let page = form("t0k", Some("<i>used</i>")).into_string();
        assert!(page.contains("name=\"csrf\" value=\"t0k\"") && page.contains("&lt;i&gt;used"));
        assert!(
            page.contains("action=\"/invite\"") && page.contains("autocomplete=\"new-password\"")
        );
    }
}
