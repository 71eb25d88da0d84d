//! `cordonctl playbooks list|apply|enable|disable|dry-run`: playbooks, checked by the
//! controller when applied (a mistake is refused with its line and field).

use crate::chunks;
use crate::cli::{JSON_LINES, JSON_ONE};
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json;
use crate::rpc::call;
use crate::term::{clean, outln};
use clap::Subcommand;
use cordon_proto::limits::MAX_PLAYBOOK_BYTES;
use cordon_proto::*;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum PlaybooksCmd {
    /// Lists the stored playbooks: name, enabled, dry run or live, steps.
    List {
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
    /// Checks and stores a playbook file (a mistake is refused with its line and field).
    Apply {
        /// The playbook file (YAML; schema in playbooks/README.md).
        file: PathBuf,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Enables a playbook: alerts trigger it from now on.
    Enable {
        /// Playbook name.
        name: String,
    },
    /// Disables a playbook: it stays stored but no alert triggers it.
    Disable {
        /// Playbook name.
        name: String,
    },
    /// Shows what a playbook file would do for a stored alert, changing nothing.
    DryRun {
        /// The playbook file.
        file: PathBuf,
        /// The id of a stored alert.
        #[arg(long)]
        alert: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: PlaybooksCmd) -> Result<(), CtlError> {
    match cmd {
        PlaybooksCmd::List { json } => {
            let list = call(admin.list_playbooks(ListPlaybooksRequest {})).await?;
            if json {
                return json::print_lines(&list.playbooks);
            }
            list.playbooks.iter().for_each(line);
        }
        PlaybooksCmd::Apply { file, json } => {
            let (origin, yaml) = (file.display().to_string(), read(&file)?);
            chunks::check_size("playbook", &origin, yaml.len(), MAX_PLAYBOOK_BYTES)?;
            let p = call(admin.apply_playbook(ApplyPlaybookRequest { origin, yaml })).await?;
            if json {
                return json::print_one(&p);
            }
            line(&p);
        }
        PlaybooksCmd::Enable { name } => set_enabled(admin, name, true).await?,
        PlaybooksCmd::Disable { name } => set_enabled(admin, name, false).await?,
        PlaybooksCmd::DryRun { file, alert, json } => dry_run(admin, &file, alert, json).await?,
    }
    Ok(())
}

fn read(file: &Path) -> Result<String, CtlError> {
    std::fs::read_to_string(file).map_err(CtlError::read(file))
}

fn line(p: &PlaybookRecord) {
    outln!(
        "{:<28}  {:<8}  {:<7}  {:>2} steps  {}",
        p.name,
        if p.enabled { "enabled" } else { "disabled" },
        if p.dry_run { "dry-run" } else { "live" },
        p.steps,
        clean(&p.description)
    )
}

async fn set_enabled(admin: &mut AdminClient, name: String, enabled: bool) -> Result<(), CtlError> {
    let req = SetPlaybookEnabledRequest { name, enabled };
    line(&call(admin.set_playbook_enabled(req)).await?);
    Ok(())
}

async fn dry_run(
    admin: &mut AdminClient,
    file: &Path,
    alert_id: String,
    json: bool,
) -> Result<(), CtlError> {
    let r = call(admin.dry_run_playbook(DryRunPlaybookRequest {
        origin: file.display().to_string(),
        yaml: read(file)?,
        alert_id,
    }))
    .await?;
    if json {
        return json::print_one(&r);
    }
    let verdict = if r.triggers {
        "triggers"
    } else {
        "does not trigger"
    };
    outln!("this alert {verdict} the playbook");
    for s in &r.steps {
        outln!("  {}", clean(s));
    }
    Ok(())
}
