//! What this process may do. The agent runs without root too, and then says plainly which
//! sensors and actions are unavailable instead of failing later.

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The features that need root, for the start-up report when not root.
pub const NEEDS_ROOT: &[&str] = &[
    "process sensor: eBPF programs and the kernel process connector (falls back to polling)",
    "network isolation and IP blocking (nftables)",
    "killing processes of other users",
    "quarantining files the agent's user cannot move",
    "entering another network namespace (--netns)",
];
