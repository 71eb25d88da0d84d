//! The agent's responders: what a verified command does on this host. Containment actions
//! (isolate, kill, quarantine, block) join ping and inventory here.

use crate::commands::Executor;
use crate::sensors::inventory;
use cordon_proto::time::now_ms;
use cordon_proto::{Pong, command, command_result};

/// Runs actions on the real host.
pub struct HostResponder;

impl Executor for HostResponder {
    async fn execute(&self, action: &command::Action) -> Result<command_result::Output, String> {
        match action {
            command::Action::Ping(_) => Ok(command_result::Output::Pong(Pong {
                agent_time_ms: now_ms(),
            })),
            command::Action::CollectInventory(_) => tokio::task::spawn_blocking(inventory::collect)
                .await
                .map(command_result::Output::Inventory)
                .map_err(|e| format!("collecting the inventory failed: {e}")),
        }
    }
}
