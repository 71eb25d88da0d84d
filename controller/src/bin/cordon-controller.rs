//! cordon-controller: create (`init`) and run (`serve`) a Cordon controller.

use anyhow::Context;
use clap::Parser;
use cordon_controller::cli::{Cli, Cmd};
use cordon_controller::config::{CONFIG_FILE, ControllerConfig};
use cordon_controller::init;

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
            rt.block_on(cordon_controller::server::run(&data_dir, config.as_deref()))
                .with_context(|| format!("serving from {}", data_dir.display()))
        }
        Cmd::AdminCredential {
            data_dir,
            config,
            name,
        } => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let made = rt.block_on(cordon_controller::recover::admin_credential(
                &data_dir,
                config.as_deref(),
                &name,
            ))?;
            println!("credential for {name} written: {}", made.display());
            Ok(())
        }
        Cmd::MigrateStore { from, to, config } => {
            let to = match to {
                Some(url) => cordon_controller::store::pg::PgOptions::new(url),
                None => ControllerConfig::load_from(&from, config.as_deref())?
                    .store
                    .postgres()
                    .context(
                        "no database to migrate to: give --to, or [store] url in the settings",
                    )?,
            };
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let summary = rt
                .block_on(cordon_controller::store::migrate::migrate_store(&from, &to))
                .with_context(|| format!("migrating the store in {}", from.display()))?;
            println!("{summary}");
            Ok(())
        }
        Cmd::ValidateConfig { data_dir, config } => {
            let path = config.unwrap_or_else(|| data_dir.unwrap_or_default().join(CONFIG_FILE));
            ControllerConfig::load_file(&path)?;
            println!("{}: ok", path.display());
            Ok(())
        }
    }
}
