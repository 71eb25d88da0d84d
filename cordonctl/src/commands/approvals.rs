//! `cordonctl approvals list|approve|deny`: playbook steps held for a person's decision,
//! decided with the admin's identity (whoever asked for a step cannot approve it).

use crate::cli::JSON_LINES;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json;
use crate::rpc::call;
use crate::term::{clean, outln};
use crate::text::time;
use clap::Subcommand;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum ApprovalsCmd {
    /// Lists the steps waiting for a decision.
    List {
        /// Decided ones too.
        #[arg(long)]
        all: bool,
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
    /// Approves a step: the playbook run carries it out.
    Approve {
        /// Approval id.
        id: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Denies a step: the playbook run skips it.
    Deny {
        /// Approval id.
        id: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: ApprovalsCmd) -> Result<(), CtlError> {
    let (approval_id, approve, reason) = match cmd {
        ApprovalsCmd::List { all, json } => {
            let list = call(admin.list_approvals(ListApprovalsRequest { all })).await?;
            if json {
                return json::print_lines(&list.approvals);
            }
            list.approvals.iter().for_each(approval_line);
            return Ok(());
        }
        ApprovalsCmd::Approve { id, reason } => (id, true, reason),
        ApprovalsCmd::Deny { id, reason } => (id, false, reason),
    };
    let req = DecideApprovalRequest {
        approval_id,
        approve,
        reason,
    };
    let a = call(admin.decide_approval(req)).await?;
    outln!("{} {} by {}", a.id, a.status, a.decided_by);
    Ok(())
}

/// One approval on one line (also under `incidents show`).
pub fn approval_line(a: &ApprovalRecord) {
    outln!(
        "{:<18}  {:<9}  {:<25}  {:<20}  {} ({}); asked by {}; decided by {}",
        a.id,
        a.status,
        time(a.requested_at_ms),
        a.incident_id,
        clean(&a.what),
        clean(&a.reason),
        clean(&a.requested_by),
        match a.decided_by.as_str() {
            "" => clean(&a.may_decide),
            by => clean(by),
        }
    );
}
