//! cordon-controller: create (`init`) and run (`serve`) a Cordon controller.

use anyhow::Context;
use clap::{Parser, Subcommand};
use cordon_controller::config::{CONFIG_FILE, ControllerConfig};
use cordon_controller::init;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cordon-controller",
    version,
    about = "The Cordon EDR controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    /// Serves agents and administrators until SIGINT or SIGTERM.
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
        /// Settings file (default: DATA_DIR/controller.toml).
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cordon_proto::process::init_tracing("info");
    match cli.command {
        Cmd::Init {
            data_dir,
            listen,
            names,
            config,
            if_missing,
        } => {
            if if_missing && init::is_initialised(&data_dir) {
                println!("{} already holds a controller", data_dir.display());
                return Ok(());
            }
            let done = match config {
                Some(path) => {
                    init::init_with(&data_dir, &ControllerConfig::load_file(&path)?, false)
                }
                None => init::init(&data_dir, listen, names),
            }
            .with_context(|| format!("initialising {}", data_dir.display()))?;
            println!("controller initialised in {}", data_dir.display());
            println!("url:            {}", done.url);
            println!("ca fingerprint: {}", done.ca_fingerprint);
            println!("admin:          {}", done.admin_config.display());
            println!(
                "next: cordon-controller serve --data-dir {}",
                data_dir.display()
            );
            Ok(())
        }
        Cmd::Serve { data_dir, config } => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(cordon_controller::api::run(&data_dir, config.as_deref()))
                .with_context(|| format!("serving from {}", data_dir.display()))
        }
        Cmd::ValidateConfig { data_dir, config } => {
            let path = config.unwrap_or_else(|| data_dir.unwrap_or_default().join(CONFIG_FILE));
            ControllerConfig::load_file(&path)?;
            println!("{}: ok", path.display());
            Ok(())
        }
    }
}
