//! One module per command group, each with its own `run`; this one only dispatches.

pub mod agents;
pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod collect;
pub mod command;
pub mod events;
pub mod fanout;
pub mod files;
pub mod host;
pub mod hunts;
pub mod incidents;
pub mod iocs;
pub mod playbooks;
pub mod rules;
pub mod token;
pub mod users;

use crate::cli::Cmd;
use crate::client::AdminClient;
use crate::error::CtlError;

/// Runs one command against the controller.
pub async fn run(admin: &mut AdminClient, cmd: Cmd) -> Result<(), CtlError> {
    match cmd {
        Cmd::Token(c) => token::run(admin, c).await,
        Cmd::Agents(c) => agents::run(admin, c).await,
        Cmd::Host(c) => host::run(admin, c).await,
        Cmd::Commands(c) => command::run(admin, c).await,
        Cmd::Collect(a) => collect::collect(admin, a).await,
        Cmd::Collections(c) => collect::run(admin, c).await,
        Cmd::Hunts(c) => hunts::run(admin, c).await,
        Cmd::Files(c) => files::run(admin, c).await,
        Cmd::Events(c) => events::run(admin, c).await,
        Cmd::Rules(c) => rules::run(admin, c).await,
        Cmd::Iocs(c) => iocs::run(admin, c).await,
        Cmd::Alerts(c) => alerts::run(admin, c).await,
        Cmd::Incidents(c) => incidents::run(admin, c).await,
        Cmd::Playbooks(c) => playbooks::run(admin, c).await,
        Cmd::Approvals(c) => approvals::run(admin, c).await,
        Cmd::Audit(c) => audit::run(admin, c).await,
        Cmd::Users(c) => users::run(admin, c).await,
        Cmd::Login(_) => unreachable!("login runs before any connection (lib.rs)"),
    }
}
