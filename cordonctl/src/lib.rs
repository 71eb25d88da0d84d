//! `cordonctl`, the administrator's command line, as a library: the admin credential and the
//! mTLS connection it makes ([`client`]), the command line ([`cli`]) with one module per
//! command group (`commands/`), and the two ways it shows results: text for people
//! (escaped for the terminal, `term`) and one documented JSON shape per command for scripts
//! ([`json`]).
//!
//! It talks to the controller only over the admin API: it depends on `cordon-proto` (and on
//! `cordon-detect` for the offline `rules test`), never on the controller itself.
#![forbid(unsafe_code)]

pub mod chunks;
pub mod cli;
pub mod client;
mod commands;
pub mod error;
pub mod json;
pub mod login;
pub mod parse;
mod rows;
mod rpc;
mod term;
mod text;

pub use cli::{Cli, Cmd};
pub use error::CtlError;

use std::process::ExitCode;

/// Runs one cordonctl invocation. `rules test` runs offline; everything else connects with
/// the admin credential first. The exit code is failure only for a `rules test` without a
/// match; every other failure is an error, which is what the user sees.
pub async fn run(cli: Cli) -> Result<ExitCode, CtlError> {
    if let Cmd::Rules(commands::rules::RulesCmd::Test { file, event }) = &cli.command {
        let matched = commands::rules::test_rule(file, event)?;
        return Ok(if matched {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Cmd::Login(args) = cli.command {
        let file = login::login(login_request(args)?).await?;
        term::outln!("logged in; credential written to {}", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let path = cli
        .admin
        .or_else(|| login::default_dir().map(|d| d.join(login::CREDENTIAL_FILE)))
        .filter(|p| p.exists())
        .ok_or(CtlError::NoCredential)?;
    let cfg = client::AdminConfig::load(&path).map_err(client::ClientError::from)?;
    let mut admin = client::connect(&cfg).await?;
    login::renew_if_due(&mut admin, &cfg).await;
    commands::run(&mut admin, cli.command).await?;
    Ok(ExitCode::SUCCESS)
}

fn login_request(a: cli::LoginArgs) -> Result<login::Login, CtlError> {
    let invite = match (a.invite, a.invite_file) {
        (Some(code), _) => code,
        (None, Some(f)) => std::fs::read_to_string(&f).map_err(CtlError::read(f))?,
        (None, None) => String::new(),
    };
    let dir = a
        .dir
        .or_else(login::default_dir)
        .ok_or_else(|| CtlError::Input("no HOME: pass --dir".into()))?;
    Ok(login::Login {
        controller: a.controller,
        invite,
        ca_fingerprint: a.ca_fingerprint,
        dir,
        force: a.force,
    })
}
