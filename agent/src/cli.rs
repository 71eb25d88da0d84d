//! The agent's command line (`cordon-agent enroll|run|validate-config`), declared here so
//! the manual page and shell completions are generated from the same definition.

use crate::state::DEFAULT_STATE_DIR;
use clap::{Parser, Subcommand};
use cordon_proto::limits::parse_label;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cordon-agent", version, about = "The Cordon EDR agent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Enrols this host: makes a key pair here and trades a token for a client certificate.
    Enroll {
        /// Controller URL, https://HOST:PORT; repeat it (or separate with commas) for the
        /// controller's replicas: enrolment goes through the first that answers, and the agent
        /// fails over between them all.
        #[arg(long = "controller", required = true, value_delimiter = ',')]
        controllers: Vec<String>,
        /// Enrolment token (or --token-file, or the CORDON_TOKEN environment variable).
        #[arg(long, env = "CORDON_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// File holding the enrolment token, for unattended rollout.
        #[arg(long, conflicts_with = "token")]
        token_file: Option<PathBuf>,
        /// The controller's CA fingerprint, sha256:HEX, as printed by `cordonctl token create`.
        #[arg(long)]
        ca_fingerprint: String,
        #[arg(long, env = "CORDON_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Label this agent (key=value; repeatable). Token labels take precedence.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Enrol from inside this network namespace.
        #[arg(long)]
        netns: Option<String>,
        /// Enrol again with a new key even if already enrolled.
        #[arg(long)]
        force: bool,
    },
    /// Runs the agent: connects, reports, and carries out signed commands.
    Run {
        #[arg(long, env = "CORDON_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Enter this network namespace for connections and containment after opening the
        /// host-wide sensors.
        #[arg(long)]
        netns: Option<String>,
    },
    /// Runs a collection on this host now and prints its rows, one JSON object per line
    /// (what a signed collection command gathers): processes, sockets, logins, persistence,
    /// packages, files.
    Collect {
        /// The collector.
        name: String,
        /// Its arguments, key=value (a key may repeat, as root does).
        #[arg(value_parser = crate::collect::args::pair)]
        args: Vec<(String, String)>,
        /// Stop after this many seconds (the rows so far are kept, marked truncated).
        #[arg(long, default_value_t = 300)]
        max_secs: u64,
        /// Pause while the agent uses more than this many cores (0: no limit).
        #[arg(long, default_value_t = 0.5)]
        cpu: f64,
    },
    /// Checks a config file and exits.
    ValidateConfig {
        #[arg(long)]
        config: PathBuf,
    },
}

/// The whole command tree, for completions and manual pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
