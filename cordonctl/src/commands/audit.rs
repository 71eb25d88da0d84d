//! `cordonctl audit`: the audit log, and `audit verify`, which checks its hash chain and exits
//! non-zero when an entry was edited, deleted or inserted.

use crate::cli::JSON_ONE;
use crate::cli::Listing;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::call;
use crate::term::{clean, outln};
use crate::text::time;
use crate::{json, parse};
use clap::{Args, Subcommand};
use cordon_proto::*;

/// `audit [--since T] [--actor NAME] [--limit N] [--json]`, or `audit verify [--json]`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditCmd {
    #[command(subcommand)]
    verify: Option<AuditSub>,
    /// Entries from this time on: RFC 3339, Unix milliseconds, or an age such as 1h (ago).
    #[arg(long, value_parser = parse::time)]
    since: Option<i64>,
    /// Only this principal's entries (a person, a service account, `playbook:NAME`, ...).
    #[arg(long)]
    actor: Option<String>,
    /// The newest entries, shown oldest first.
    #[command(flatten)]
    list: Listing,
}

#[derive(Subcommand, Debug)]
enum AuditSub {
    /// Walks the whole hash chain; names the first edited, deleted or inserted entry.
    Verify {
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: AuditCmd) -> Result<(), CtlError> {
    if let Some(AuditSub::Verify { json }) = cmd.verify {
        return verify(admin, json).await;
    }
    let list = call(admin.list_audit(ListAuditRequest {
        since_ms: cmd.since.unwrap_or(0),
        limit: cmd.list.limit,
        actor: cmd.actor.unwrap_or_default(),
    }))
    .await?;
    if cmd.list.json {
        return json::print_lines(&list.entries);
    }
    outln!(
        "{:>6}  {:<25}  {:<16}  {:<20}  {:<40}  {:<12}  DETAIL",
        "SEQ",
        "TIME",
        "ACTOR",
        "ACTION",
        "TARGET",
        "OUTCOME"
    );
    for e in &list.entries {
        outln!(
            "{:>6}  {:<25}  {:<16}  {:<20}  {:<40}  {:<12}  {}",
            e.seq,
            time(e.time_ms),
            e.actor,
            e.action,
            clean(&e.target),
            clean(&e.outcome),
            clean(&e.detail)
        );
    }
    Ok(())
}

async fn verify(admin: &mut AdminClient, json: bool) -> Result<(), CtlError> {
    let v = call(admin.verify_audit(VerifyAuditRequest {})).await?;
    if json {
        json::print_one(&v)?;
    } else if v.ok {
        outln!(
            "ok: {} entries, the hash chain is intact (last entry {}, hash {})",
            v.entries_checked,
            v.last_seq,
            v.last_hash
        );
    }
    if !v.ok {
        return Err(CtlError::AuditBroken {
            seq: v.first_bad_seq,
            problem: v.problem,
            checked: v.entries_checked,
        });
    }
    Ok(())
}
