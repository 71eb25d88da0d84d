//! Host actions from the console, each confirmed and given a reason, without script: the
//! agent page links to `GET /agents/{id}/{action}`, a page saying exactly what will happen
//! with a form (the action's fields and a required reason) that posts to
//! `POST /agents/{id}/{action}`. That submits the command through the core as the person
//! (`Controller::submit_with_reason`, audited with the reason, four eyes applying), waits
//! briefly for the agent's confirmed result and goes back to the agent page, which says what
//! became of it: done, failed, or waiting for another person's approval. Here: the table of
//! actions, building each command from its form, and the two handlers (the pages are in
//! `action_page.rs`).

use super::guard::{Caller, refused};
use super::layout::{failed, html, reason_too_long};
use super::{Shared, action_page};
use crate::core::{CommandRequest, CoreError, Presence};
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use cordon_proto::{
    BlockIp, CollectInventory, Isolate, KillProcess, Quarantine, Release, Restore, UnblockIp,
    action,
};
use http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// How long a console action waits for the agent's confirmed result before showing the
/// agent page (which shows the command's state either way).
const WAIT_SECS: u64 = 5;

/// The fields an action's form may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Allow,
    Pid,
    StartTime,
    Tree,
    FilePath,
    QuarantineId,
    Cidr,
    Ttl,
}

/// One action: its path segment, its title, what it does, and its fields.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub title: &'static str,
    pub(super) effect: &'static str,
    pub(super) fields: &'static [Field],
    /// Read-only actions (the inventory) need no reason.
    pub needs_reason: bool,
}

use Field::*;

/// Every action the console offers, in the order the agent page lists them.
pub const ACTIONS: &[Spec] = &[
    Spec {
        name: "isolate",
        title: "Isolate the host",
        effect: "The agent replaces the host's firewall with one that drops all traffic in and \
                 out except loopback, the controller and the addresses allowed below; open \
                 connections to anything else are cut. It stays so, across restarts, until \
                 released.",
        fields: &[Allow],
        needs_reason: true,
    },
    Spec {
        name: "release",
        title: "Release the host",
        effect: "The agent removes the isolation firewall and the host's traffic flows as \
                 before.",
        fields: &[],
        needs_reason: true,
    },
    Spec {
        name: "kill",
        title: "Kill a process",
        effect: "The agent kills the process (checked by its start time when given, so a \
                 recycled pid is never hit), and its descendants if asked. It refuses pid 1, \
                 kernel threads, itself and protected processes.",
        fields: &[Pid, StartTime, Tree],
        needs_reason: true,
    },
    Spec {
        name: "quarantine",
        title: "Quarantine a file",
        effect: "The agent moves the file into its quarantine (without following symbolic \
                 links), strips its permissions and keeps its metadata and hash, so it can be \
                 restored exactly. It refuses its own and the host's critical files.",
        fields: &[FilePath],
        needs_reason: true,
    },
    Spec {
        name: "restore",
        title: "Restore a quarantined file",
        effect: "The agent puts the file back where it was, as it was.",
        fields: &[QuarantineId],
        needs_reason: true,
    },
    Spec {
        name: "block",
        title: "Block an address",
        effect: "The agent drops traffic to and from the address or network, for the time \
                 given or until unblocked. It refuses a block that would cut off the \
                 controller.",
        fields: &[Cidr, Ttl],
        needs_reason: true,
    },
    Spec {
        name: "unblock",
        title: "Unblock an address",
        effect: "The agent lifts the block on the address or network.",
        fields: &[Cidr],
        needs_reason: true,
    },
    Spec {
        name: "inventory",
        title: "Collect the inventory",
        effect: "The agent reports the host's hardware, disks, network interfaces and users.",
        fields: &[],
        needs_reason: false,
    },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    ACTIONS.iter().find(|s| s.name == name)
}

/// An action's form (and the query that fills the confirmation page in).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    pub reason: String,
    /// Addresses that stay reachable, separated by spaces, commas or lines.
    pub allow: String,
    pub pid: String,
    pub start_time: String,
    pub tree: String,
    pub path: String,
    pub quarantine_id: String,
    pub cidr: String,
    pub ttl_secs: String,
    /// The event a kill was started from (the events page links here with it).
    pub event: String,
}

/// The command the form asks for, or why the form is wrong.
fn build(spec: &Spec, f: &ActionForm) -> Result<action::Kind, String> {
    let required = |v: &str, what: &str| match v.trim() {
        "" => Err(format!("{what} is required")),
        v => Ok(v.to_string()),
    };
    let number = |v: &str, what: &str| match v.trim() {
        "" => Ok(0),
        v => v
            .parse::<u64>()
            .map_err(|_| format!("{what} must be a number")),
    };
    Ok(match spec.name {
        "isolate" => action::Kind::Isolate(Isolate {
            allow: f
                .allow
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            reason: f.reason.trim().to_string(),
        }),
        "release" => action::Kind::Release(Release {}),
        "kill" => {
            let pid = required(&f.pid, "the pid")?
                .parse::<u32>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the pid must be a positive number")?;
            action::Kind::Kill(KillProcess {
                pid,
                start_time: number(&f.start_time, "the start time")?,
                tree: f.tree == "on",
            })
        }
        "quarantine" => {
            let path = required(&f.path, "the path")?;
            if !path.starts_with('/') {
                return Err("the path must be absolute".into());
            }
            action::Kind::Quarantine(Quarantine { path, force: false })
        }
        "restore" => action::Kind::Restore(Restore {
            quarantine_id: required(&f.quarantine_id, "the quarantine id")?,
        }),
        "block" => action::Kind::BlockIp(BlockIp {
            cidr: required(&f.cidr, "the address")?,
            ttl_secs: number(&f.ttl_secs, "the duration")?,
        }),
        "unblock" => action::Kind::UnblockIp(UnblockIp {
            cidr: required(&f.cidr, "the address")?,
        }),
        "inventory" => action::Kind::CollectInventory(CollectInventory {}),
        other => return Err(format!("there is no action {other}")),
    })
}

/// The agent named in the path, or the error page.
async fn target(shared: &Shared, asked: &str) -> Result<Presence, Response> {
    shared.ctl.agent(asked).await.map_err(|e| failed(&e))
}

/// `GET /agents/{id}/{action}`: what the action will do, and the form that does it.
pub async fn confirm(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((asked, name)): Path<(String, String)>,
    Query(filled): Query<ActionForm>,
) -> Response {
    let Some(spec) = spec(&name) else {
        return refused(StatusCode::NOT_FOUND, "there is no such action");
    };
    match target(&shared, &asked).await {
        Ok(p) => {
            let four_eyes = shared.ctl.config.people.four_eyes;
            html(action_page::confirmation(
                &caller, spec, &p, &filled, four_eyes,
            ))
        }
        Err(res) => res,
    }
}

/// `POST /agents/{id}/{action}`: the command, sent as the person with their reason.
pub async fn act(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((asked, name)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let Some(spec) = spec(&name) else {
        return refused(StatusCode::NOT_FOUND, "there is no such action");
    };
    let agent = match target(&shared, &asked).await {
        Ok(p) => p.agent.id,
        Err(res) => return res,
    };
    if spec.needs_reason && f.reason.trim().is_empty() {
        return refused(StatusCode::BAD_REQUEST, "a reason is required");
    }
    if let Some(res) = reason_too_long(&f.reason) {
        return res;
    }
    let kind = match build(spec, &f) {
        Ok(k) => k,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    let req = CommandRequest {
        agent: agent.clone(),
        action: Some(kind),
        ttl_secs: 0,
        wait_secs: WAIT_SECS,
    };
    // In a task of its own: a browser that goes away must not cancel the audit entry of a
    // command already sent.
    let ctl = shared.ctl.clone();
    let (admin, reason) = (caller.admin.clone(), f.reason.trim().to_string());
    let done =
        tokio::spawn(async move { ctl.submit_with_reason(&admin, req, &reason).await }).await;
    match done {
        Ok(Ok(row)) => Redirect::to(&format!("/agents/{agent}?command={}", row.id)).into_response(),
        Ok(Err(CoreError::AwaitsSecondPerson(apr))) => {
            Redirect::to(&format!("/agents/{agent}?pending={apr}")).into_response()
        }
        Ok(Err(e)) => failed(&e),
        Err(e) => {
            tracing::error!(error = %e, "console: the command task failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, crate::core::INTERNAL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> ActionForm {
        ActionForm {
            reason: "why".into(),
            ..Default::default()
        }
    }

    #[test]
    fn forms_become_the_same_commands_cordonctl_sends() {
        let mut f = form();
        f.allow = "10.0.0.1:22, 10.0.1.0/24\n[fd00::1]:443".into();
        match build(spec("isolate").unwrap(), &f).unwrap() {
            action::Kind::Isolate(i) => {
                assert_eq!(i.allow, ["10.0.0.1:22", "10.0.1.0/24", "[fd00::1]:443"]);
                assert_eq!(i.reason, "why");
            }
            k => panic!("{k:?}"),
        }
        f.pid = "42".into();
        f.tree = "on".into();
        assert!(matches!(
            build(spec("kill").unwrap(), &f).unwrap(),
            action::Kind::Kill(KillProcess {
                pid: 42,
                start_time: 0,
                tree: true
            })
        ));
        f.cidr = "192.0.2.0/24".into();
        f.ttl_secs = "60".into();
        assert!(matches!(
            build(spec("block").unwrap(), &f).unwrap(),
            action::Kind::BlockIp(BlockIp { ttl_secs: 60, .. })
        ));
    }

    #[test]
    fn missing_or_malformed_fields_are_refused() {
        let f = form();
        assert!(
            build(spec("kill").unwrap(), &f)
                .unwrap_err()
                .contains("pid")
        );
        let mut bad = form();
        bad.pid = "0".into();
        assert!(build(spec("kill").unwrap(), &bad).is_err());
        bad.path = "relative/file".into();
        assert!(
            build(spec("quarantine").unwrap(), &bad)
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            build(spec("unblock").unwrap(), &f)
                .unwrap_err()
                .contains("address")
        );
        assert!(build(spec("restore").unwrap(), &f).is_err());
        assert!(spec("format-disk").is_none());
    }
}
