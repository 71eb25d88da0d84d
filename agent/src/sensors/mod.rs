//! What the agent observes: processes (eBPF, process connector or polling), watched files,
//! host facts and inventory, and the agent's own cost.

pub mod file;
pub mod hash;
pub mod inventory;
pub mod metrics;
pub mod process;
