//! `cordonctl commands list|show`: the commands sent to agents, their status and results.

use crate::cli::JSON_ONE;
use crate::cli::Listing;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json;
use crate::rpc::call;
use crate::term::{clean, outln};
use crate::text::{outcome_name, status_name, time};
use clap::Subcommand;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum CommandsCmd {
    /// Lists commands, newest first.
    List {
        /// Only the commands for this agent.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        list: Listing,
    },
    /// Shows a command: its timeline, status and the agent's result.
    Show {
        /// Command id.
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: CommandsCmd) -> Result<(), CtlError> {
    match cmd {
        CommandsCmd::List {
            agent,
            list: Listing { limit, json },
        } => {
            let req = ListCommandsRequest {
                agent_id: agent.unwrap_or_default(),
                limit,
            };
            let list = call(admin.list_commands(req)).await?;
            if json {
                return json::print_lines(&list.commands);
            }
            table(&list.commands);
        }
        CommandsCmd::Show { id, json } => {
            let c = call(admin.get_command(GetCommandRequest { command_id: id })).await?;
            if json {
                return json::print_one(&c);
            }
            show(&c);
        }
    }
    Ok(())
}

fn table(list: &[CommandRecord]) {
    outln!(
        "{:<28}  {:<32}  {:<10}  {:<10}  {:<25}  ERROR",
        "COMMAND",
        "AGENT",
        "KIND",
        "STATUS",
        "CREATED"
    );
    for c in list {
        outln!(
            "{:<28}  {:<32}  {:<10}  {:<10}  {:<25}  {}",
            c.command_id,
            c.agent_id,
            c.kind,
            status_name(c.status),
            time(c.created_at_ms),
            clean(&c.error)
        );
    }
}

fn show(c: &CommandRecord) {
    outln!("command:   {}", c.command_id);
    outln!("agent:     {}", c.agent_id);
    outln!("kind:      {}", c.kind);
    outln!("status:    {}", status_name(c.status));
    outln!("by:        {}", c.created_by);
    outln!("created:   {}", time(c.created_at_ms));
    outln!("delivered: {}", time(c.delivered_at_ms));
    outln!("completed: {}", time(c.completed_at_ms));
    outln!("expires:   {}", time(c.expires_at_ms));
    if !c.error.is_empty() {
        outln!("error:     {}", clean(&c.error));
    }
    if let Some(r) = &c.result {
        outln!(
            "outcome:   {} (agent clock {})",
            outcome_name(r.outcome),
            time(r.agent_time_ms)
        );
    }
}
