//! `cordonctl playbooks|approvals` and `incidents note`.

use super::output::time;
use super::term::outln;
use super::{call, print_json};
use anyhow::Context;
use clap::Subcommand;
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::*;
use std::path::PathBuf;
use tonic::transport::Channel;

#[derive(Subcommand, Debug)]
pub enum PlaybooksCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Checks and stores a playbook file (a mistake is refused with its line and field).
    Apply {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    /// Shows what a playbook file would do for a stored alert, changing nothing.
    DryRun {
        file: PathBuf,
        #[arg(long)]
        alert: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCmd {
    List {
        /// Decided ones too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Deny {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

pub async fn playbooks(
    client: &mut AdminServiceClient<Channel>,
    cmd: PlaybooksCmd,
) -> anyhow::Result<()> {
    let line = |p: &PlaybookRecord| {
        outln!(
            "{:<28}  {:<8}  {:<7}  {:>2} steps  {}",
            p.name,
            if p.enabled { "enabled" } else { "disabled" },
            if p.dry_run { "dry-run" } else { "live" },
            p.steps,
            p.description
        )
    };
    match cmd {
        PlaybooksCmd::List { json } => {
            let list = call(client.list_playbooks(ListPlaybooksRequest {})).await?;
            if json {
                return print_json(&list);
            }
            list.playbooks.iter().for_each(line);
        }
        PlaybooksCmd::Apply { file, json } => {
            let (origin, yaml) = (file.display().to_string(), read(&file)?);
            let max = cordon_proto::limits::MAX_PLAYBOOK_BYTES;
            super::chunks::check_size("playbook", &origin, yaml.len(), max)?;
            let p = call(client.apply_playbook(ApplyPlaybookRequest { origin, yaml })).await?;
            if json {
                return print_json(&p);
            }
            line(&p);
        }
        PlaybooksCmd::Enable { name } => line(
            &call(client.set_playbook_enabled(SetPlaybookEnabledRequest {
                name,
                enabled: true,
            }))
            .await?,
        ),
        PlaybooksCmd::Disable { name } => line(
            &call(client.set_playbook_enabled(SetPlaybookEnabledRequest {
                name,
                enabled: false,
            }))
            .await?,
        ),
        PlaybooksCmd::DryRun { file, alert, json } => {
            let r = call(client.dry_run_playbook(DryRunPlaybookRequest {
                origin: file.display().to_string(),
                yaml: read(&file)?,
                alert_id: alert,
            }))
            .await?;
            if json {
                return print_json(&r);
            }
            outln!(
                "this alert {} the playbook",
                if r.triggers {
                    "triggers"
                } else {
                    "does not trigger"
                }
            );
            for s in &r.steps {
                outln!("  {s}");
            }
        }
    }
    Ok(())
}

pub fn approval_line(a: &ApprovalRecord) {
    outln!(
        "{:<18}  {:<9}  {:<25}  {:<20}  {} ({})",
        a.id,
        a.status,
        time(a.requested_at_ms),
        a.incident_id,
        a.what,
        a.reason
    );
}

pub async fn approvals(
    client: &mut AdminServiceClient<Channel>,
    cmd: ApprovalsCmd,
) -> anyhow::Result<()> {
    let (id, approve, reason) = match cmd {
        ApprovalsCmd::List { all, json } => {
            let list = call(client.list_approvals(ListApprovalsRequest { all })).await?;
            if json {
                return print_json(&list);
            }
            list.approvals.iter().for_each(approval_line);
            return Ok(());
        }
        ApprovalsCmd::Approve { id, reason } => (id, true, reason),
        ApprovalsCmd::Deny { id, reason } => (id, false, reason),
    };
    let a = call(client.decide_approval(DecideApprovalRequest {
        approval_id: id,
        approve,
        reason,
    }))
    .await?;
    outln!("{} {} by {}", a.id, a.status, a.decided_by);
    Ok(())
}
