//! The command line: global options and one subcommand per command group. Each group's
//! subcommands and flags are declared beside the code that runs them (`commands/`); every
//! subcommand and flag has help text of its own (a test walks the whole tree).

use crate::commands::{
    agents::AgentsCmd,
    alerts::AlertsCmd,
    approvals::ApprovalsCmd,
    audit::AuditCmd,
    collect::{CollectArgs, CollectionsCmd},
    command::CommandsCmd,
    events::EventsCmd,
    files::FilesCmd,
    host::HostCmd,
    hunts::HuntsCmd,
    incidents::IncidentsCmd,
    iocs::IocsCmd,
    playbooks::PlaybooksCmd,
    rules::RulesCmd,
    token::TokenCmd,
    users::UsersCmd,
};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Help for `--json` on a command that prints one thing.
pub const JSON_ONE: &str = "Print one JSON object instead of text";
/// Help for `--json` on a listing or stream.
pub const JSON_LINES: &str = "Print JSON lines (one object per line) instead of text";

/// What every listing takes: how many rows at most, and text or JSON lines.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Listing {
    /// Show at most this many (1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = crate::parse::limit)]
    pub limit: u32,
    #[arg(long, help = JSON_LINES)]
    pub json: bool,
}

#[derive(Parser, Debug)]
#[command(name = "cordonctl", version, about = "Administer a Cordon controller")]
pub struct Cli {
    /// Credential file: the one `cordonctl login` wrote (the default,
    /// ~/.config/cordon/credential.toml), or the first admin's from `cordon-controller init`
    /// (DATA_DIR/admin.toml).
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
    #[command(flatten)]
    Host(HostCmd),
    /// Commands sent to agents and their results.
    #[command(subcommand)]
    Commands(CommandsCmd),
    /// Runs a collection on a host (processes, sockets, logins, persistence, packages,
    /// files) and prints its rows.
    Collect(CollectArgs),
    /// The rows of collections run before.
    #[command(subcommand)]
    Collections(CollectionsCmd),
    /// Hunts: one collection across the fleet, its progress and results.
    #[command(subcommand)]
    Hunts(HuntsCmd),
    /// Files fetched from hosts: fetch one, list them, download one.
    #[command(subcommand)]
    Files(FilesCmd),
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
    /// People and service accounts, and the caller's own identity.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Trades a one-time invite code for a credential made on this machine.
    Login(LoginArgs),
}

/// `cordonctl login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Controller URL, https://HOST:PORT.
    #[arg(long)]
    pub controller: String,
    /// The CA fingerprint from the invite (sha256:HEX).
    #[arg(long)]
    pub ca_fingerprint: String,
    /// The invite code (better from a file or CORDON_INVITE: a command line is visible to
    /// every process).
    #[arg(long, env = "CORDON_INVITE", hide_env_values = true)]
    pub invite: Option<String>,
    /// A file holding the invite code.
    #[arg(long, conflicts_with = "invite")]
    pub invite_file: Option<PathBuf>,
    /// Where to write the credential (default ~/.config/cordon).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Replace a credential already there.
    #[arg(long)]
    pub force: bool,
}

/// The whole command tree, for completions and manual pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests;
