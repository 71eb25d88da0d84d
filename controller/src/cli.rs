//! The controller's command line (`cordon-controller init|serve|validate-config|...`), declared
//! here so the manual page and shell completions are generated from the same definition.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cordon-controller",
    version,
    about = "The Cordon EDR controller"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Creates a CA, server certificate, command-signing key and admin credential in DIR.
    Init {
        #[arg(long)]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7443", conflicts_with = "config")]
        listen: SocketAddr,
        /// DNS name or IP address agents use to reach the controller (repeatable; the first
        /// one goes into the URL).
        #[arg(long = "name", conflicts_with = "config")]
        names: Vec<String>,
        /// Take listen, url and names from this file, and leave the settings there.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Do nothing (and succeed) if DIR already holds a controller.
        #[arg(long)]
        if_missing: bool,
    },
    /// Serves agents, administrators and the web console until SIGINT or SIGTERM.
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
        /// Settings file (default: DATA_DIR/controller.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Issues an enabled admin a fresh credential in DATA_DIR/admin.toml, from the CA key on
    /// this host: the way back in when every admin credential has lapsed unused.
    AdminCredential {
        #[arg(long)]
        data_dir: PathBuf,
        /// Settings file (default: DATA_DIR/controller.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The admin's name.
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// Copies the SQLite store in DATA_DIR into a new, empty PostgreSQL database, then checks
    /// the copy (each table's row count, the audit chain). Stop the controller first.
    MigrateStore {
        /// The controller's data directory, which holds cordon.db.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database: a postgres:// URL or a key=value connection string (from
        /// the environment, a password stays out of process listings). Default: the settings'
        /// `[store] url`, with its pool and timeouts.
        #[arg(long, env = "CORDON_STORE_URL", hide_env_values = true)]
        to: Option<String>,
        /// Settings file whose `[store]` is used without --to (default:
        /// DATA_DIR/controller.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Checks the settings (--config FILE, or DATA_DIR/controller.toml) and exits.
    ValidateConfig {
        #[arg(long, required_unless_present = "config")]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The whole command tree, for completions and manual pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
