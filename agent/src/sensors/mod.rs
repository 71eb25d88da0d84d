//! What the agent observes. For now: host facts and the inventory; process and file sensors
//! come with the telemetry work.

pub mod file;
pub mod inventory;
pub mod metrics;
