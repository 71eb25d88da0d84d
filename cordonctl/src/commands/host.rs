//! Host actions: `ping`, `isolate`, `release`, `kill`, `quarantine` (and `quarantine list`),
//! `restore`, `block-ip`, `unblock-ip`. Each is a signed command that cordonctl waits for
//! until the agent confirms its result; a refusal or failure is an error with the reason.

use super::fanout::FanOutArgs;
use crate::cli::{JSON_LINES, JSON_ONE};
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::submit;
use crate::term::{clean, outln};
use crate::text::{short, status_name, time};
use crate::{json, parse};
use clap::{Args, Subcommand};
use cordon_proto::limits::parse_label;
use cordon_proto::*;
use serde_json::json;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum HostCmd {
    /// Round trip to an agent: prints its clock and the time taken.
    Ping {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Cuts the host off the network but for loopback, the controller and the allowlist; with
    /// --labels, every host carrying all the labels (a fan-out, printed one host a line).
    Isolate {
        /// Agent id (or an unambiguous prefix).
        #[arg(required_unless_present = "labels", conflicts_with = "labels")]
        id: Option<String>,
        /// Isolate every unrevoked host carrying this label, KEY=VALUE (repeatable: all must
        /// match).
        #[arg(long = "labels", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// With --labels: the most hosts to isolate; more matching refuses the whole request
        /// (without it, the controller's [people] fanout_cap).
        #[arg(long, default_value_t = 0, requires = "labels")]
        max: u32,
        /// With --labels: list the hosts that would be isolated, and isolate none.
        #[arg(long, requires = "labels")]
        dry_run: bool,
        /// With --labels: leave out hosts carrying a protected label instead of refusing.
        #[arg(long, requires = "labels")]
        skip_protected: bool,
        /// CIDR or CIDR:PORT ([IPv6-CIDR]:PORT) that stays reachable (repeatable).
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// Why, for the record (shown with the command and in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Lifts the isolation.
    Release {
        /// Agent id (or an unambiguous prefix).
        id: String,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Kills a process (checked by its start time, so a recycled pid is never hit).
    Kill {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// The process id on the host (a thread id stands for its process).
        #[arg(long)]
        pid: u32,
        /// Start time from /proc/PID/stat field 22 (clock ticks after boot); 0 = as it is now.
        #[arg(long, default_value_t = 0)]
        start_time: u64,
        /// Kill its descendants too.
        #[arg(long)]
        tree: bool,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Quarantines a file (`quarantine ID --path PATH`), or lists them (`quarantine list ID`).
    #[command(args_conflicts_with_subcommands = true)]
    Quarantine {
        #[command(subcommand)]
        list: Option<QuarantineCmd>,
        /// Agent id (or an unambiguous prefix).
        id: Option<String>,
        /// The file's absolute path on the host.
        #[arg(long)]
        path: Option<String>,
        /// Quarantine even a file the agent protects (its own config or binary, the host's
        /// critical files, the libraries and tools it runs on); recorded in the audit log.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Puts a quarantined file back where it was, as it was.
    Restore {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// The id `quarantine` gave the file (see `quarantine list ID`).
        #[arg(long)]
        quarantine_id: String,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Blocks traffic to and from an address or network, optionally for a time.
    BlockIp {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// ADDR or ADDR/PREFIX, IPv4 or IPv6.
        cidr: String,
        /// How long the block lasts (e.g. 40s, 1h); without it, until unblocked.
        #[arg(long, value_parser = parse::ttl)]
        ttl: Option<Duration>,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Lifts a block made with `block-ip`.
    UnblockIp {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// The address or network as it was blocked.
        cidr: String,
        #[command(flatten)]
        opts: ActOpts,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Lists the files in the agent's quarantine.
    List {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// Seconds to wait for the agent's confirmed result.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
}

// The options every host action takes (no doc comment: clap would show it as the help of a
// subcommand that has none of its own).
#[derive(Args, Debug, Clone, Copy)]
pub struct ActOpts {
    /// Seconds to wait for the agent's confirmed result.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    #[arg(long, help = JSON_ONE)]
    pub json: bool,
}

pub async fn run(admin: &mut AdminClient, cmd: HostCmd) -> Result<(), CtlError> {
    use action::Kind;
    let (id, action, opts) = match cmd {
        HostCmd::Ping { id, wait, json } => return ping(admin, id, wait, json).await,
        HostCmd::Quarantine {
            list: Some(QuarantineCmd::List { id, wait, json }),
            ..
        } => return quarantine_list(admin, id, wait, json).await,
        HostCmd::Quarantine {
            list: None,
            id,
            path,
            force,
            opts,
        } => {
            let (id, path) = quarantine_target(id, path)?;
            (id, Kind::Quarantine(Quarantine { path, force }), opts)
        }
        HostCmd::Isolate {
            id,
            labels,
            max,
            dry_run,
            skip_protected,
            allow,
            reason,
            opts,
        } => {
            let isolate = Isolate { allow, reason };
            let Some(id) = id else {
                let args = FanOutArgs {
                    labels,
                    max,
                    dry_run,
                    skip_protected,
                    isolate,
                    wait: opts.wait,
                    json: opts.json,
                };
                return super::fanout::run(admin, args).await;
            };
            (id, Kind::Isolate(isolate), opts)
        }
        HostCmd::Release { id, opts } => (id, Kind::Release(Release {}), opts),
        HostCmd::Kill {
            id,
            pid,
            start_time,
            tree,
            opts,
        } => {
            let kill = KillProcess {
                pid,
                start_time,
                tree,
            };
            (id, Kind::Kill(kill), opts)
        }
        HostCmd::Restore {
            id,
            quarantine_id,
            opts,
        } => (id, Kind::Restore(Restore { quarantine_id }), opts),
        HostCmd::BlockIp {
            id,
            cidr,
            ttl,
            opts,
        } => {
            let ttl_secs = ttl.map_or(0, |t| t.as_secs());
            (id, Kind::BlockIp(BlockIp { cidr, ttl_secs }), opts)
        }
        HostCmd::UnblockIp { id, cidr, opts } => (id, Kind::UnblockIp(UnblockIp { cidr }), opts),
    };
    let (rec, _) = submit(admin, id, action, opts.wait).await?;
    if opts.json {
        return json::print_one(&rec);
    }
    show_result(&rec);
    Ok(())
}

fn quarantine_target(
    id: Option<String>,
    path: Option<String>,
) -> Result<(String, String), CtlError> {
    let id = id.ok_or_else(|| {
        CtlError::Input(
            "usage: cordonctl quarantine ID --path PATH, or cordonctl quarantine list ID".into(),
        )
    })?;
    let path = path.ok_or_else(|| CtlError::Input("--path PATH is required".into()))?;
    Ok((id, path))
}

async fn ping(
    admin: &mut AdminClient,
    id: String,
    wait: u64,
    as_json: bool,
) -> Result<(), CtlError> {
    let (rec, rtt) = submit(admin, id, action::Kind::Ping(Ping {}), wait).await?;
    let agent_ms = match rec.result.as_ref().and_then(|r| r.output.as_ref()) {
        Some(command_result::Output::Pong(p)) => p.agent_time_ms,
        _ => rec.result.as_ref().map_or(0, |r| r.agent_time_ms),
    };
    let rtt_ms = rtt.as_secs_f64() * 1000.0;
    if as_json {
        return json::print_one(&json!({
            "agent_id": rec.agent_id,
            "command_id": rec.command_id,
            "agent_time_ms": agent_ms,
            "round_trip_ms": rtt_ms,
        }));
    }
    outln!(
        "pong from {} in {rtt_ms:.1} ms (agent clock {})",
        rec.agent_id,
        time(agent_ms)
    );
    Ok(())
}

/// `quarantine list ID`: a listing, so `--json` prints one entry per line.
async fn quarantine_list(
    admin: &mut AdminClient,
    id: String,
    wait: u64,
    as_json: bool,
) -> Result<(), CtlError> {
    let action = action::Kind::ListQuarantine(ListQuarantine {});
    let (rec, _) = submit(admin, id, action, wait).await?;
    let entries = match rec.result.and_then(|r| r.output) {
        Some(command_result::Output::QuarantineList(l)) => l.entries,
        _ => {
            return Err(CtlError::Command(
                "the agent sent no quarantine list".into(),
            ));
        }
    };
    if as_json {
        return json::print_lines(&entries);
    }
    outln!(
        "{:<28}  {:<25}  {:<10}  ORIGINAL PATH",
        "QUARANTINE ID",
        "WHEN",
        "SIZE"
    );
    for q in &entries {
        outln!(
            "{:<28}  {:<25}  {:<10}  {}",
            q.id,
            time(q.quarantined_at_ms),
            q.size,
            clean(&q.original_path)
        );
    }
    Ok(())
}

/// The confirmed result of a host action, in a sentence.
fn show_result(rec: &CommandRecord) {
    use command_result::Output;
    let agent = &rec.agent_id;
    match rec.result.as_ref().and_then(|r| r.output.as_ref()) {
        Some(Output::Isolation(i)) if i.isolated => {
            let allowed = if i.allowed.is_empty() {
                String::new()
            } else {
                format!("; allowed {}", i.allowed.join(", "))
            };
            outln!(
                "{agent} isolated (ruleset {}, applied in {} us); reachable: controller {}{allowed}",
                short(&i.ruleset_hash),
                i.apply_micros,
                i.controller_addresses.join(", "),
            )
        }
        Some(Output::Isolation(_)) => outln!("{agent} released from isolation"),
        Some(Output::Kill(k)) => {
            outln!("killed on {agent}:");
            for p in &k.killed {
                outln!(
                    "  pid {:<8} start {:<12} {} ({})",
                    p.pid,
                    p.start_time,
                    clean(&p.exe),
                    clean(&p.comm)
                );
            }
        }
        Some(Output::Quarantined(q)) => outln!(
            "quarantined {} on {agent} as {} (sha256 {}, {} bytes)",
            clean(&q.original_path),
            q.id,
            q.sha256,
            q.size
        ),
        Some(Output::Restored(q)) => outln!(
            "restored {} on {agent} from {}",
            clean(&q.original_path),
            q.id
        ),
        Some(Output::Block(b)) if b.blocked => {
            let ttl = if b.ttl_secs > 0 {
                format!(" for {}s", b.ttl_secs)
            } else {
                String::new()
            };
            outln!("{} blocked on {agent}{ttl}", b.cidr)
        }
        Some(Output::Block(b)) => outln!("{} unblocked on {agent}", b.cidr),
        _ => outln!("command {} {}", rec.command_id, status_name(rec.status)),
    }
}
