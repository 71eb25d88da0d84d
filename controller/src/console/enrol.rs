//! Enrol a host: `GET /enrol` is a form (labels, uses, lifetime); `POST /enrol` creates the
//! token through the core as the person (`Controller::create_token`, audited as
//! `token.create` like `cordonctl token create`) and shows it once, inside the exact command
//! to run on the host, with a copy button. The token is never stored in clear or shown again.

use super::Shared;
use super::agents::parse_labels;
use super::guard::{Caller, refused};
use super::layout::{csrf, failed, html, page, when};
use crate::core::{MAX_TOKEN_TTL, NewToken};
use axum::Extension;
use axum::extract::{Form, State};
use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Where the packaged agent keeps its enrolment.
const STATE_DIR: &str = "/var/lib/cordon-agent";

/// `GET /enrol`.
pub async fn form(Extension(caller): Extension<Caller>) -> Response {
    html(form_page(&caller))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EnrolForm {
    /// `key=value` lines.
    labels: String,
    uses: String,
    /// Minutes.
    ttl: String,
}

/// `POST /enrol`: a new token and the command that uses it.
pub async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Form(f): Form<EnrolForm>,
) -> Response {
    let (labels, uses, ttl_secs) = match parse(&f) {
        Ok(parsed) => parsed,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    let ctl = &shared.ctl;
    match ctl
        .create_token(&caller.admin, ttl_secs, uses, labels)
        .await
    {
        Ok(t) => {
            let command = command(
                &ctl.config.controller_urls(),
                &ctl.ca.fingerprint(),
                &t.token,
            );
            html(created_page(&caller, &t, &command))
        }
        Err(e) => failed(&e),
    }
}

/// The labels, uses and lifetime in seconds the form asks for (0: the default).
fn parse(f: &EnrolForm) -> Result<(HashMap<String, String>, u32, u64), String> {
    let labels = parse_labels(&f.labels)?;
    let number = |s: &str, what: &str| match s.trim() {
        "" => Ok(0),
        n => n
            .parse::<u64>()
            .map_err(|_| format!("{what} must be a number")),
    };
    let uses = u32::try_from(number(&f.uses, "uses")?).map_err(|_| "too many uses")?;
    let ttl = number(&f.ttl, "the lifetime")?.saturating_mul(60);
    Ok((labels, uses, ttl))
}

/// The command that enrols a host with `token` (the token in the environment, so the
/// host's process listing does not show it), with one `--controller` for each replica.
fn command(urls: &[String], fingerprint: &str, token: &str) -> String {
    let controllers: String = urls.iter().map(|u| format!("--controller {u} ")).collect();
    format!(
        "CORDON_TOKEN={token} cordon-agent enroll {controllers}\
         --ca-fingerprint {fingerprint} --state-dir {STATE_DIR}\n\
         systemctl enable --now cordon-agent"
    )
}

fn form_page(c: &Caller) -> Markup {
    let body = html! {
        p { "A token lets hosts enrol: each enrolment takes one use, until it expires. Labels given here are set on every host that enrols with it." }
        form.enrol method="post" action="/enrol" {
            (csrf(c))
            label { "Labels, one key=value a line" textarea name="labels" rows="3" {} }
            label { "Uses" input type="number" name="uses" min="1" value="1"; }
            label { "Valid for (minutes)" input type="number" name="ttl" min="1" max=(MAX_TOKEN_TTL / 60) value="60"; }
            button #create-token type="submit" { "Create token" }
        }
    };
    page("Enrol a host", Some(c), body)
}

fn created_page(c: &Caller, t: &NewToken, command: &str) -> Markup {
    let mut labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let body = html! {
        p.notice role="status" {
            "Token created for " (t.uses) " enrolment(s), valid until " (when(t.expires_at_ms)) "."
            @if !labels.is_empty() { " Hosts get the labels " (labels.join(", ")) "." }
            " It is shown only this once."
        }
        h2 { "Run this on the host, as root" }
        pre #enrol-command { code { (command) } }
        button.copy #copy-enrol-command type="button" data-copy=(command) { "Copy the command" }
        p { a href="/enrol" { "Create another token" } " · " a href="/agents" { "Agents" } }
    };
    page("Enrol a host", Some(c), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_gives_labels_uses_and_seconds() {
        let f = EnrolForm {
            labels: "env=prod\nteam=red".into(),
            uses: "3".into(),
            ttl: "90".into(),
        };
        let (labels, uses, ttl) = parse(&f).unwrap();
        assert_eq!((labels.len(), uses, ttl), (2, 3, 5400));
        let bad = EnrolForm {
            uses: "many".into(),
            ..Default::default()
        };
        assert!(parse(&bad).unwrap_err().contains("uses"));
    }

    #[test]
    fn the_command_enrols_with_the_token_in_the_environment() {
        let cmd = command(&["https://ctl:7443".into()], "sha256:ab", "cdt_x");
        assert!(
            cmd.starts_with("CORDON_TOKEN=cdt_x cordon-agent enroll --controller https://ctl:7443")
        );
        assert!(cmd.contains("--ca-fingerprint sha256:ab --state-dir /var/lib/cordon-agent"));
        let urls = ["https://a:7443".to_string(), "https://b:7443".to_string()];
        let cmd = command(&urls, "sha256:ab", "cdt_x");
        assert!(
            cmd.contains(
                "--controller https://a:7443 --controller https://b:7443 --ca-fingerprint"
            ),
            "{cmd}"
        );
    }
}
