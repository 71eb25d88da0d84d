//! What the agent observes: processes (eBPF, process connector or polling), watched files,
//! network connections and DNS (eBPF), host facts and inventory, and the agent's own cost.

#[cfg(cordon_ebpf)]
pub mod bpf_ring;
pub mod file;
pub mod hash;
pub mod inventory;
pub mod metrics;
pub mod network;
pub mod process;
