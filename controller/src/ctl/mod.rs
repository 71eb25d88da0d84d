//! `cordonctl`: the administrator's command line. Every subcommand talks to the admin
//! service over mTLS with the credential from `--admin FILE` or `CORDON_ADMIN`.

mod audit;
mod chunks;
mod detection;
mod output;
mod playbooks;
mod report;
mod term;

pub use audit::AuditCmd;
pub use detection::{AlertsCmd, IncidentsCmd, IocsCmd, RulesCmd};
pub use playbooks::{ApprovalsCmd, PlaybooksCmd};

use crate::client::AdminConfig;
use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::limits::{self, parse_label};
use cordon_proto::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use term::outln;
use tonic::transport::Channel;

#[derive(Parser, Debug)]
#[command(name = "cordonctl", version, about = "Administer a Cordon controller")]
pub struct Cli {
    /// Admin credential file written by `cordon-controller init` (DATA_DIR/admin.toml).
    #[arg(long, env = "CORDON_ADMIN", global = true)]
    pub admin: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Enrolment tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Enrolled agents.
    #[command(subcommand)]
    Agents(AgentsCmd),
    /// Round trip to an agent: prints its clock and the time taken.
    Ping {
        id: String,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[arg(long)]
        json: bool,
    },
    /// Commands sent to agents and their results.
    #[command(subcommand)]
    Commands(CommandsCmd),
    /// Stored telemetry.
    #[command(subcommand)]
    Events(EventsCmd),
    /// Sigma detection rules.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Indicator lists (hashes, addresses, domains).
    #[command(subcommand)]
    Iocs(IocsCmd),
    /// Alerts raised by rules and indicators.
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// Alerts on a host, grouped, with their status and timeline.
    #[command(subcommand)]
    Incidents(IncidentsCmd),
    /// Automated response to alerts.
    #[command(subcommand)]
    Playbooks(PlaybooksCmd),
    /// Playbook steps waiting for a person's decision.
    #[command(subcommand)]
    Approvals(ApprovalsCmd),
    /// The audit log of every admin and automatic action; `audit verify` checks its chain.
    Audit(AuditCmd),
    /// Cuts the host off the network but for loopback, the controller and the allowlist.
    Isolate {
        id: String,
        /// CIDR or CIDR:PORT ([IPv6-CIDR]:PORT) that stays reachable (repeatable).
        #[arg(long = "allow")]
        allow: Vec<String>,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Lifts the isolation.
    Release {
        id: String,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Kills a process (checked by its start time, so a recycled pid is never hit).
    Kill {
        id: String,
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
        id: Option<String>,
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
        id: String,
        #[arg(long)]
        quarantine_id: String,
        #[command(flatten)]
        opts: ActOpts,
    },
    /// Blocks traffic to and from an address or network, optionally for a time.
    BlockIp {
        id: String,
        cidr: String,
        /// How long the block lasts (e.g. 40s, 1h); without it, until unblocked.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        #[command(flatten)]
        opts: ActOpts,
    },
    UnblockIp {
        id: String,
        cidr: String,
        #[command(flatten)]
        opts: ActOpts,
    },
}

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// Stored events, oldest first (the newest LIMIT that match).
    Query {
        #[arg(long)]
        agent: Option<String>,
        /// file, notice, ...
        #[arg(long)]
        kind: Option<String>,
        /// A time: RFC 3339, Unix milliseconds, or an age such as 15m (ago).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// Text the event must contain (case-insensitive).
        #[arg(long)]
        contains: Option<String>,
        #[arg(long, default_value_t = 100, value_parser = parse_limit)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Follows events as they are stored, until interrupted.
    Tail {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Parses RFC 3339, Unix milliseconds, or an age (`15m` = 15 minutes ago) into Unix ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) =
        ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
    {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let age = parse_duration(s)
        .map_err(|_| format!("{s:?} is not RFC 3339, Unix milliseconds or an age like 15m"))?;
    Ok(cordon_proto::time::now_ms() - age.as_millis() as i64)
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    List {
        id: String,
        #[command(flatten)]
        opts: ActOpts,
    },
}

/// Options every host action takes.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ActOpts {
    /// Seconds to wait for the agent's confirmed result.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Creates an enrolment token and prints it with the controller URL and CA fingerprint.
    Create {
        /// How long the token stays valid (e.g. 30m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
        /// How many enrolments it allows (1 to 100000).
        #[arg(long, default_value_t = 1, value_parser = parse_uses)]
        uses: u32,
        /// Label every agent enrolled with it (key=value; repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentsCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revokes an agent: its stream closes at once and its certificate is refused from now on.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Collects the host inventory (OS, kernel, CPUs, memory, disks, interfaces, users).
    Inventory {
        id: String,
        #[arg(long, default_value_t = 30)]
        wait: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CommandsCmd {
    List {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 100, value_parser = parse_limit)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// Parses `90s`, `15m`, `1h`, `7d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} must look like 90s, 15m, 1h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "duration {s:?}: unknown unit {unit:?} (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

/// A duration that must not be zero (a TTL of nothing would be a silent default).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be longer than 0s")),
        d => Ok(d),
    }
}

/// A listing's `--limit`: 1 to [`limits::MAX_LIST`], never quietly changed.
pub fn parse_limit(s: &str) -> Result<u32, String> {
    parse_bounded(s, limits::MAX_LIST)
}

/// A token's `--uses`: 1 to [`limits::MAX_TOKEN_USES`].
fn parse_uses(s: &str) -> Result<u32, String> {
    parse_bounded(s, limits::MAX_TOKEN_USES)
}

fn parse_bounded(s: &str, max: u32) -> Result<u32, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=u64::from(max)).contains(&n) => Ok(n as u32),
        _ => Err(format!("{s:?}: must be a whole number from 1 to {max}")),
    }
}

/// Runs one cordonctl invocation; the error is what the user sees.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Offline: no controller needed.
    if let Cmd::Rules(RulesCmd::Test { file, event }) = &cli.command {
        if detection::test_rule(file, event)? {
            return Ok(());
        }
        std::process::exit(1);
    }
    let path = cli.admin.ok_or_else(|| {
        anyhow!("no admin credential: pass --admin DATA_DIR/admin.toml or set CORDON_ADMIN")
    })?;
    let cfg = AdminConfig::load(&path)?;
    let mut client = cfg.connect().await?;
    match cli.command {
        Cmd::Token(TokenCmd::Create {
            ttl,
            uses,
            labels,
            json,
        }) => {
            let labels: HashMap<_, _> = labels.into_iter().collect();
            let req = CreateTokenRequest {
                ttl_secs: ttl.as_secs(),
                uses,
                labels,
            };
            let t = call(client.create_token(req)).await?;
            output::token(&t, json)
        }
        Cmd::Agents(AgentsCmd::List { json }) => {
            let list = call(client.list_agents(ListAgentsRequest {})).await?;
            output::agents(&list.agents, json)
        }
        Cmd::Agents(AgentsCmd::Show { id, json }) => {
            let a = call(client.get_agent(GetAgentRequest { agent_id: id })).await?;
            output::agent(&a, json)
        }
        Cmd::Agents(AgentsCmd::Revoke { id, json }) => {
            let a = call(client.revoke_agent(RevokeAgentRequest { agent_id: id })).await?;
            if !json {
                outln!(
                    "revoked agent {}: its stream is closed and its certificate refused",
                    a.agent_id
                );
                return Ok(());
            }
            output::agent(&a, json)
        }
        Cmd::Agents(AgentsCmd::Inventory { id, wait, json }) => {
            let action = action::Kind::CollectInventory(CollectInventory {});
            let (rec, _) = submit(&mut client, id, action, wait).await?;
            match rec.result.as_ref().and_then(|r| r.output.as_ref()) {
                Some(command_result::Output::Inventory(inv)) => {
                    output::inventory(&rec.agent_id, inv, json)
                }
                _ => Err(anyhow!("the agent sent no inventory")),
            }
        }
        Cmd::Isolate {
            id,
            allow,
            reason,
            opts,
        } => {
            act(
                &mut client,
                id,
                action::Kind::Isolate(Isolate { allow, reason }),
                opts,
            )
            .await
        }
        Cmd::Release { id, opts } => {
            act(&mut client, id, action::Kind::Release(Release {}), opts).await
        }
        Cmd::Kill {
            id,
            pid,
            start_time,
            tree,
            opts,
        } => {
            act(
                &mut client,
                id,
                action::Kind::Kill(KillProcess {
                    pid,
                    start_time,
                    tree,
                }),
                opts,
            )
            .await
        }
        Cmd::Quarantine {
            list: Some(QuarantineCmd::List { id, opts }),
            ..
        } => {
            act(
                &mut client,
                id,
                action::Kind::ListQuarantine(ListQuarantine {}),
                opts,
            )
            .await
        }
        Cmd::Quarantine {
            list: None,
            id,
            path,
            force,
            opts,
        } => {
            let id = id.ok_or_else(|| {
                anyhow!(
                    "usage: cordonctl quarantine ID --path PATH, or cordonctl quarantine list ID"
                )
            })?;
            let path = path.ok_or_else(|| anyhow!("--path PATH is required"))?;
            act(
                &mut client,
                id,
                action::Kind::Quarantine(Quarantine { path, force }),
                opts,
            )
            .await
        }
        Cmd::Restore {
            id,
            quarantine_id,
            opts,
        } => {
            act(
                &mut client,
                id,
                action::Kind::Restore(Restore { quarantine_id }),
                opts,
            )
            .await
        }
        Cmd::BlockIp {
            id,
            cidr,
            ttl,
            opts,
        } => {
            let ttl_secs = ttl.map(|t| t.as_secs()).unwrap_or(0);
            act(
                &mut client,
                id,
                action::Kind::BlockIp(BlockIp { cidr, ttl_secs }),
                opts,
            )
            .await
        }
        Cmd::UnblockIp { id, cidr, opts } => {
            act(
                &mut client,
                id,
                action::Kind::UnblockIp(UnblockIp { cidr }),
                opts,
            )
            .await
        }
        Cmd::Events(EventsCmd::Query {
            agent,
            kind,
            since,
            until,
            contains,
            limit,
            json,
        }) => {
            let req = QueryEventsRequest {
                agent_id: agent.unwrap_or_default(),
                kind: kind.unwrap_or_default(),
                since_ms: since,
                until_ms: until,
                contains: contains.unwrap_or_default(),
                limit,
            };
            let resp = call(client.query_events(req)).await?;
            output::events(&resp.events, json)
        }
        Cmd::Events(EventsCmd::Tail { agent, json }) => {
            let mut stream = call(client.tail_events(TailEventsRequest {
                agent_id: agent.unwrap_or_default(),
            }))
            .await?;
            loop {
                match stream.message().await {
                    Ok(Some(e)) => output::events(std::slice::from_ref(&e), json)?,
                    Ok(None) => return Ok(()),
                    Err(s) => {
                        return Err(anyhow!(
                            "the event stream ended: {}",
                            cordon_proto::status::describe(&s)
                        ));
                    }
                }
            }
        }
        Cmd::Ping { id, wait, json } => {
            let (rec, rtt) = submit(&mut client, id, action::Kind::Ping(Ping {}), wait).await?;
            output::pong(&rec, rtt, json)
        }
        Cmd::Commands(CommandsCmd::List { agent, limit, json }) => {
            let req = ListCommandsRequest {
                agent_id: agent.unwrap_or_default(),
                limit,
            };
            let list = call(client.list_commands(req)).await?;
            output::commands(&list.commands, json)
        }
        Cmd::Commands(CommandsCmd::Show { id, json }) => {
            let c = call(client.get_command(GetCommandRequest { command_id: id })).await?;
            output::command(&c, json)
        }
        Cmd::Rules(cmd) => detection::rules(&mut client, cmd).await,
        Cmd::Iocs(cmd) => detection::iocs(&mut client, cmd).await,
        Cmd::Alerts(cmd) => detection::alerts(&mut client, cmd).await,
        Cmd::Incidents(cmd) => detection::incidents(&mut client, cmd).await,
        Cmd::Playbooks(cmd) => playbooks::playbooks(&mut client, cmd).await,
        Cmd::Approvals(cmd) => playbooks::approvals(&mut client, cmd).await,
        Cmd::Audit(cmd) => audit::audit(&mut client, cmd).await,
    }
}

/// Submits a command and waits for its result; an unfinished or failed command is an error
/// that says where it stands.
async fn submit(
    client: &mut AdminServiceClient<Channel>,
    agent_id: String,
    action: action::Kind,
    wait: u64,
) -> anyhow::Result<(CommandRecord, Duration)> {
    let started = Instant::now();
    let req = SubmitCommandRequest {
        agent_id,
        ttl_secs: 0,
        wait_secs: wait.max(1),
        action: Some(action.into()),
    };
    let rec = call(client.submit_command(req)).await?;
    let rtt = started.elapsed();
    match rec.status() {
        CommandStatus::Succeeded => Ok((rec, rtt)),
        CommandStatus::Failed | CommandStatus::Expired => Err(anyhow!(
            "command {} {}: {}",
            rec.command_id,
            output::status_name(rec.status),
            rec.error
        )),
        _ => Err(anyhow!(
            "no result within {wait}s: command {} is {} and stays queued until {} (see `cordonctl commands show {}`)",
            rec.command_id,
            output::status_name(rec.status),
            output::time(rec.expires_at_ms),
            rec.command_id
        )),
    }
}

/// Runs a host action and shows the agent's confirmed result.
async fn act(
    client: &mut AdminServiceClient<Channel>,
    agent_id: String,
    action: action::Kind,
    opts: ActOpts,
) -> anyhow::Result<()> {
    let (rec, _) = submit(client, agent_id, action, opts.wait).await?;
    output::action_result(&rec, opts.json)
}

/// Awaits an RPC, turning a refusal into a readable error.
async fn call<T>(
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<T> {
    let resp = fut.await.map_err(|s| {
        anyhow!(
            "the controller refused: {} ({:?})",
            cordon_proto::status::describe(&s),
            s.code()
        )
    })?;
    Ok(resp.into_inner())
}

/// Prints a JSON value on stdout.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("encoding JSON")?;
    text.push('\n');
    term::emit(&text, false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
