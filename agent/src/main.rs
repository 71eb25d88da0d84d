//! cordon-agent: enrol this host with a Cordon controller, then run as its agent.

use anyhow::Context;
use clap::Parser;
use cordon_agent::cli::{Cli, Cmd};
use cordon_agent::collect;
use cordon_agent::config::AgentConfig;
use cordon_agent::reload::Hangups;
use cordon_agent::sensors::process::ProcessSensor;
use cordon_agent::state::StateDir;
use cordon_agent::sys::{netns, privileges};
use cordon_agent::uplink::{self, Uplink, enroll::EnrollOptions};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cordon_proto::process::init_tracing("info");
    match cli.command {
        Cmd::Enroll {
            controllers,
            token,
            token_file,
            ca_fingerprint,
            state_dir,
            labels,
            netns,
            force,
        } => {
            let token = match (token, token_file) {
                (Some(t), _) => t,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading the token file {}", f.display()))?,
                (None, None) => anyhow::bail!(
                    "an enrolment token is required: --token, --token-file or CORDON_TOKEN"
                ),
            };
            if let Some(ns) = &netns {
                netns::enter(ns)?;
            }
            let opts = EnrollOptions {
                controllers,
                token,
                ca_fingerprint,
                labels: labels.into_iter().collect(),
                force,
            };
            let state = StateDir::new(state_dir);
            let identity = runtime()?.block_on(uplink::enroll::enroll(&state, opts))?;
            println!("enrolled as agent {}", identity.agent_id);
            println!("next: cordon-agent run --state-dir {}", state.dir.display());
            Ok(())
        }
        Cmd::Run {
            state_dir,
            config,
            netns,
        } => {
            let config_path = config;
            let config = AgentConfig::load(config_path.as_deref())?;
            report_privileges();
            // Host-wide sensors open here, before the namespace switch: the process connector
            // exists only in the initial network namespace.
            let process_sensor = ProcessSensor::open(&config.process);
            if let Some(ns) = &netns {
                netns::enter(ns)?;
                tracing::info!(netns = %ns, "entered network namespace");
            }
            let rt = runtime()?;
            rt.block_on(async {
                let hangups = Hangups::catch().context("catching SIGHUP")?;
                let up = Uplink::new(StateDir::new(state_dir), config, process_sensor)?;
                tracing::info!(agent_id = %up.agent_id, "agent starting");
                tokio::spawn(hangups.reload_into(up.clone(), config_path));
                tokio::select! {
                    _ = uplink::run(up) => {}
                    _ = cordon_proto::process::shutdown_signal() => tracing::info!("agent stopping"),
                }
                Ok(())
            })
        }
        Cmd::Collect {
            name,
            args,
            max_secs,
            cpu,
        } => {
            let limits = collect::Limits {
                time: std::time::Duration::from_secs(max_secs),
                cpu,
                ..collect::Limits::default()
            };
            let args = collect::Args::new(args);
            collect::print(&name, args, limits, &mut std::io::stdout().lock())
        }
        Cmd::ValidateConfig { config } => {
            AgentConfig::load(Some(&config))?;
            println!("{}: ok", config.display());
            Ok(())
        }
    }
}

/// Built after any namespace switch, so every runtime thread lives in that namespace.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn report_privileges() {
    if privileges::is_root() {
        return;
    }
    tracing::warn!("running without root: these sensors and actions are unavailable:");
    for item in privileges::NEEDS_ROOT {
        tracing::warn!("  - {item}");
    }
}
