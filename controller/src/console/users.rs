//! The users page (`GET /users`, for those who manage users): people and service accounts
//! with their role and state; inviting one (the one-time code is shown once, with exactly
//! what the invitee does with it), disabling and enabling, and changing a role. Each change
//! goes through the core as the signed-in person, whose rules (the last enabled admin stays,
//! revocation is final) come back as the page's problem.

use super::Shared;
use super::guard::{Caller, refused};
use super::layout::{csrf, failed, html, page, status, when};
use crate::core::{CoreError, InviteRequest, Invited, PrincipalChange, PrincipalRow};
use crate::policy::people::{Kind, active};
use crate::policy::roles::Role;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, Uri};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// What the page shows besides the list.
#[derive(Default)]
struct View {
    problem: Option<String>,
    invited: Option<Shown>,
}

/// An invite just made, and where the invitee takes it up.
struct Shown {
    made: Invited,
    /// The console's address, as the inviting browser reached it.
    console: String,
    /// The controller's gRPC URL and its CA's fingerprint, for `cordonctl login`.
    controller: String,
    ca: String,
}

/// `GET /users`.
pub async fn users(State(s): State<Arc<Shared>>, Extension(c): Extension<Caller>) -> Response {
    show(&s, &c, StatusCode::OK, View::default()).await
}

async fn show(s: &Shared, c: &Caller, code: StatusCode, v: View) -> Response {
    match s.ctl.users().await {
        Ok(all) => (code, html(render(c, &all, &v))).into_response(),
        Err(e) => failed(&e),
    }
}

/// The page again with a refusal, or the error page for an internal failure.
async fn problem(s: &Shared, c: &Caller, e: CoreError) -> Response {
    if e.is_internal() {
        return failed(&e);
    }
    let v = View {
        problem: Some(e.public_message()),
        ..View::default()
    };
    show(s, c, status(&e), v).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    name: String,
    role: String,
    #[serde(default)]
    service: Option<String>,
}

/// `POST /users/invite`: the page with the new code, shown this once.
pub async fn invite(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<InviteForm>,
) -> Response {
    let role = match f.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => return problem(&s, &c, e.into()).await,
    };
    let asked = InviteRequest {
        name: f.name.trim().to_string(),
        kind: if f.service.is_some() {
            Kind::Service
        } else {
            Kind::User
        },
        role,
        expires_at_ms: None,
    };
    match s.ctl.invite(&c.admin, asked).await {
        Ok(made) => {
            let shown = Shown {
                made,
                console: console_address(&headers, &uri),
                controller: s.ctl.config.url.clone(),
                ca: s.ctl.ca.fingerprint(),
            };
            let v = View {
                invited: Some(shown),
                ..View::default()
            };
            show(&s, &c, StatusCode::OK, v).await
        }
        Err(e) => problem(&s, &c, e).await,
    }
}

/// `https://HOST[:PORT]` as the person's browser reached the console.
fn console_address(headers: &HeaderMap, uri: &Uri) -> String {
    let host = uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            headers
                .get(http::header::HOST)?
                .to_str()
                .ok()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "CONSOLE".into());
    format!("https://{host}")
}

#[derive(Deserialize)]
pub struct StateForm {
    state: String,
}

/// `POST /users/{name}/state`: enabled or disabled.
pub async fn set_state(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    Form(f): Form<StateForm>,
) -> Response {
    let change = match f.state.as_str() {
        "enabled" => PrincipalChange::Enable,
        "disabled" => PrincipalChange::Disable,
        _ => {
            return refused(StatusCode::BAD_REQUEST, "the state is enabled or disabled");
        }
    };
    changed(&s, &c, s.ctl.change_user(&c.admin, &name, change).await).await
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

/// `POST /users/{name}/role`.
pub async fn set_role(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    let result = match f.role.parse::<Role>() {
        Ok(r) => {
            s.ctl
                .change_user(&c.admin, &name, PrincipalChange::SetRole(r))
                .await
        }
        Err(e) => Err(e.into()),
    };
    changed(&s, &c, result).await
}

async fn changed(s: &Shared, c: &Caller, r: Result<PrincipalRow, CoreError>) -> Response {
    match r {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => problem(s, c, e).await,
    }
}

fn render(c: &Caller, all: &[PrincipalRow], v: &View) -> Markup {
    let now = cordon_proto::time::now_ms();
    let body = html! {
        @if let Some(p) = &v.problem { p.problem #users-problem role="alert" { (p) } }
        @if let Some(shown) = &v.invited { (invited(shown)) }
        table {
            thead { tr { th { "Name" } th { "Kind" } th { "Role" } th { "State" } th { "Console password" } th { "Last credential or sign-in" } th { "Invited by" } } }
            tbody #users { @for p in all { (row(c, p, now)) } }
        }
        h2 { "Invite someone" }
        form.stack #invite-form method="post" action="/users/invite" {
            (csrf(c))
            label { "Name (a-z, 0-9, '.', '_', '-')" input type="text" name="name" required maxlength="64" pattern="[a-z0-9][a-z0-9._-]*"; }
            label { "Role" (role_select(Role::Viewer)) }
            label { input type="checkbox" name="service" value="yes"; " A service account (an automation), not a person" }
            button type="submit" { "Invite" }
        }
    };
    page("Users", Some(c), body)
}

fn role_select(current: Role) -> Markup {
    html! {
        select name="role" {
            @for r in Role::ALL { option value=(r.name()) selected[r == current] { (r.name()) } }
        }
    }
}

fn row(c: &Caller, p: &PrincipalRow, now: i64) -> Markup {
    let s = &p.standing;
    let state = match active(Some(s), now) {
        Ok(()) => "active".to_string(),
        Err(why) => why.to_string(),
    };
    let revoked = s.revoked_at_ms.is_some();
    html! {
        tr data-user=(p.name) {
            td { (p.name) @if p.name == c.admin.name { " (you)" } }
            td { (s.kind.name()) }
            td {
                (s.role.name())
                @if !revoked {
                    form.inline method="post" action={ "/users/" (p.name) "/role" } {
                        (csrf(c))
                        label { span.hidden { "New role for " (p.name) } (role_select(s.role)) }
                        button type="submit" { "Change role" }
                    }
                }
            }
            td {
                (state)
                @if !revoked {
                    form.inline method="post" action={ "/users/" (p.name) "/state" } {
                        (csrf(c))
                        @if s.enabled {
                            input type="hidden" name="state" value="disabled";
                            button type="submit" aria-label={ "Disable " (p.name) } { "Disable" }
                        } @else {
                            input type="hidden" name="state" value="enabled";
                            button type="submit" aria-label={ "Enable " (p.name) } { "Enable" }
                        }
                    }
                }
            }
            td { @if p.has_password { "set" } @else { "none" } @if p.has_totp { ", with TOTP" } }
            td { @match p.last_login_ms { Some(ms) => (when(ms)), None => "never" } }
            td { (p.created_by) }
        }
    }
}

/// The invite just made: its code, once, and what the invitee does with it.
fn invited(s: &Shown) -> Markup {
    let (made, console) = (&s.made, &s.console);
    let u = &made.user;
    let login = format!(
        "cordonctl login --controller {} --ca-fingerprint {} --invite-file FILE",
        s.controller, s.ca
    );
    html! {
        section #invite role="status" {
            h2 { "Invited " (u.name) " (" (u.standing.kind.name()) ", " (u.standing.role.name()) ")" }
            p { "Invite code (shown only now; it works once, until " (when(made.code_expires_at_ms)) "): " }
            p { code #invite-code { (made.code) } " " button.copy type="button" data-copy=(made.code) { "Copy the code" } }
            p { "Give it to them privately. Then they do one of these:" }
            ol {
                @if u.standing.kind == Kind::User {
                    li { "For the web console: open " a href={ (console) "/invite" } { (console) "/invite" }
                         ", enter the code and choose a password of at least 12 characters, then sign in as " code { (u.name) } "." }
                }
                li { "For the command line, on their own machine: save the code in a file and run "
                     code #invite-command { (login) }
                     " (or set CORDON_INVITE to the code instead of --invite-file)." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::caller;
    use crate::policy::people::Standing;

    fn person(name: &str, role: Role, enabled: bool) -> PrincipalRow {
        PrincipalRow {
            name: name.into(),
            standing: Standing {
                kind: Kind::User,
                role,
                enabled,
                expires_at_ms: None,
                revoked_at_ms: None,
            },
            created_by: "admin".into(),
            created_at_ms: 0,
            has_password: true,
            has_totp: false,
            last_login_ms: None,
            cert_serial: String::new(),
        }
    }

    #[test]
    fn people_are_listed_with_their_forms_and_an_invite_shows_its_code() {
        let all = [
            person("ada", Role::Admin, true),
            person("vic", Role::Viewer, false),
        ];
        let made = Invited {
            code: "s3cret".into(),
            code_expires_at_ms: 0,
            user: person("nia", Role::Analyst, true),
        };
        let v = View {
            invited: Some(Shown {
                made,
                console: "https://127.0.0.1:9443".into(),
                controller: "https://127.0.0.1:9442".into(),
                ca: "sha256:ab".into(),
            }),
            ..View::default()
        };
        let page = render(&caller("ada", Role::Admin), &all, &v).into_string();
        assert!(page.contains("action=\"/users/vic/state\"") && page.contains(">Enable<"));
        assert!(page.contains("action=\"/users/ada/role\"") && page.contains("ada (you)"));
        assert!(page.contains("id=\"invite-code\">s3cret<"));
        assert!(page.contains("href=\"https://127.0.0.1:9443/invite\""));
        assert!(page.contains("--controller https://127.0.0.1:9442 --ca-fingerprint sha256:ab"));
    }
}
