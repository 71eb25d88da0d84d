//! `cordonctl audit`: the audit log, and `audit verify`, which checks its hash chain and exits
//! non-zero when an entry was edited, deleted or inserted.

use super::output::time;
use super::term::{clean, outln};
use super::{call, parse_time, print_json};
use anyhow::bail;
use clap::{Args, Subcommand};
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::*;
use serde_json::Value;
use tonic::transport::Channel;

/// `audit [--since T] [--limit N] [--json]`, or `audit verify [--json]`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditCmd {
    #[command(subcommand)]
    verify: Option<AuditSub>,
    /// A time: RFC 3339, Unix milliseconds, or an age such as 1h (ago).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Show the newest N entries (oldest first).
    #[arg(long, default_value_t = 100, value_parser = super::parse_limit)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum AuditSub {
    /// Walks the whole hash chain; names the first edited, deleted or inserted entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

pub async fn audit(client: &mut AdminServiceClient<Channel>, cmd: AuditCmd) -> anyhow::Result<()> {
    if let Some(AuditSub::Verify { json }) = cmd.verify {
        return verify(client, json).await;
    }
    let list = call(client.list_audit(ListAuditRequest {
        since_ms: cmd.since.unwrap_or(0),
        limit: cmd.limit,
    }))
    .await?;
    if cmd.json {
        let entries: Vec<Value> = list.entries.iter().map(entry_json).collect();
        return print_json(&entries);
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

/// An entry as JSON, its detail as a JSON value rather than a string of JSON. (The hash
/// covers the detail's exact text: that is the `detail` of `ListAudit` itself.)
fn entry_json(e: &AuditRecord) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Ok(detail) = serde_json::from_str::<Value>(&e.detail) {
        v["detail"] = detail;
    }
    v
}

async fn verify(client: &mut AdminServiceClient<Channel>, json: bool) -> anyhow::Result<()> {
    let v = call(client.verify_audit(VerifyAuditRequest {})).await?;
    if json {
        print_json(&v)?;
    } else if v.ok {
        outln!(
            "ok: {} entries, the hash chain is intact (last entry {}, hash {})",
            v.entries_checked,
            v.last_seq,
            v.last_hash
        );
    }
    if !v.ok {
        bail!(
            "the audit log FAILED verification at entry {}: {} ({} entries checked)",
            v.first_bad_seq,
            v.problem,
            v.entries_checked
        );
    }
    Ok(())
}
