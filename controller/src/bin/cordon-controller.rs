//! cordon-controller: create (`init`) and run (`serve`) a Cordon controller.

use anyhow::Context;
use clap::{Parser, Subcommand};
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
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        /// DNS name or IP address agents use to reach the controller (repeatable; the first
        /// one goes into the URL).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Serves agents and administrators until SIGINT or SIGTERM.
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Checks DIR/controller.toml and exits.
    ValidateConfig {
        #[arg(long)]
        data_dir: PathBuf,
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
        } => {
            let done = cordon_controller::init::init(&data_dir, listen, names)
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
        Cmd::Serve { data_dir } => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(cordon_controller::api::run(&data_dir))
                .with_context(|| format!("serving from {}", data_dir.display()))
        }
        Cmd::ValidateConfig { data_dir } => {
            cordon_controller::config::ControllerConfig::load(&data_dir)?;
            println!(
                "{}: ok",
                data_dir
                    .join(cordon_controller::config::CONFIG_FILE)
                    .display()
            );
            Ok(())
        }
    }
}
