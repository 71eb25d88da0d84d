//! `isolate --labels k=v [--labels k2=v2]`: one request isolates every host carrying all the
//! labels. The controller refuses the whole fan-out when more hosts match than `--max` (or
//! its configured cap) or a matching host is protected (unless `--skip-protected`); cordonctl
//! prints each host as issued, confirmed, failed or skipped, and fails when any host failed
//! or, with `--wait`, is still unconfirmed.

use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json::{self, ToJson};
use crate::rpc::call;
use crate::term::{clean, outln};
use cordon_proto::{CommandStatus, FanOutHost, IsolateByLabelsRequest, IsolateByLabelsResponse};
use serde_json::json;

/// A fan-out as cordonctl was asked for it.
#[derive(Debug, Clone, Default)]
pub struct FanOutArgs {
    pub labels: Vec<(String, String)>,
    pub max: u32,
    pub dry_run: bool,
    pub skip_protected: bool,
    pub isolate: cordon_proto::Isolate,
    pub wait: u64,
    pub json: bool,
}

/// What became of one host, in a word.
fn outcome(h: &FanOutHost, dry_run: bool) -> &'static str {
    if h.skipped {
        return "skipped";
    }
    if dry_run {
        return "would isolate";
    }
    match h.command.as_ref().map(|c| c.status()) {
        None => "failed",
        Some(CommandStatus::Succeeded) => "confirmed",
        Some(CommandStatus::Failed | CommandStatus::Expired) => "failed",
        Some(_) => "issued",
    }
}

pub async fn run(admin: &mut AdminClient, a: FanOutArgs) -> Result<(), CtlError> {
    let req = IsolateByLabelsRequest {
        labels: a.labels.into_iter().collect(),
        max_hosts: a.max,
        dry_run: a.dry_run,
        skip_protected: a.skip_protected,
        isolate: Some(a.isolate),
        ttl_secs: 0,
        wait_secs: a.wait,
    };
    let done = call(admin.isolate_by_labels(req)).await?;
    if a.json {
        json::print_lines(&host_lines(&done)?)?;
    } else {
        show(&done);
    }
    verdict(&done, a.wait)
}

/// One JSON object per host: its id, hostname, outcome, error and command (or null).
fn host_lines(done: &IsolateByLabelsResponse) -> Result<Vec<serde_json::Value>, CtlError> {
    let mut lines = Vec::with_capacity(done.hosts.len());
    for h in &done.hosts {
        let command = match &h.command {
            Some(c) => c.to_json()?,
            None => serde_json::Value::Null,
        };
        lines.push(json!({
            "agent_id": h.agent_id,
            "hostname": h.hostname,
            "outcome": outcome(h, done.dry_run),
            "error": h.error,
            "command": command,
        }));
    }
    Ok(lines)
}

fn show(done: &IsolateByLabelsResponse) {
    outln!(
        "{:<40}  {:<24}  {:<13}  DETAIL",
        "AGENT",
        "HOSTNAME",
        "OUTCOME"
    );
    for h in &done.hosts {
        let detail = match &h.command {
            Some(c) if c.error.is_empty() => c.command_id.clone(),
            Some(c) => format!("{}: {}", c.command_id, c.error),
            None => h.error.clone(),
        };
        outln!(
            "{:<40}  {:<24}  {:<13}  {}",
            h.agent_id,
            clean(&h.hostname),
            outcome(h, done.dry_run),
            clean(&detail)
        );
    }
    let count = |o: &str| {
        done.hosts
            .iter()
            .filter(|h| outcome(h, done.dry_run) == o)
            .count()
    };
    if done.dry_run {
        outln!(
            "dry run: {} hosts match; {} would be isolated, {} left out",
            done.matched,
            count("would isolate"),
            count("skipped")
        );
        return;
    }
    outln!(
        "{} hosts match: {} confirmed, {} issued, {} failed, {} skipped",
        done.matched,
        count("confirmed"),
        count("issued"),
        count("failed"),
        count("skipped")
    );
}

/// An error when a host failed, or (having waited) one is still unconfirmed.
fn verdict(done: &IsolateByLabelsResponse, wait: u64) -> Result<(), CtlError> {
    if done.dry_run {
        return Ok(());
    }
    let of = |o: &str| done.hosts.iter().filter(|h| outcome(h, false) == o).count();
    let (failed, open) = (of("failed"), of("issued"));
    if failed > 0 {
        return Err(CtlError::Command(format!(
            "{failed} of {} hosts failed (see above)",
            done.hosts.len()
        )));
    }
    if wait > 0 && open > 0 {
        return Err(CtlError::Command(format!(
            "{open} hosts did not confirm within {wait}s; their commands stay queued (see `cordonctl commands list`)"
        )));
    }
    Ok(())
}
