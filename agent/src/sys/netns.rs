//! Entering a named network namespace (`ip netns` keeps them under /run/netns). The agent
//! opens its host-wide sensors first, then enters the namespace for its own connections and
//! for containment; every thread started afterwards inherits it. The namespace it left is
//! kept open ([`started_in`]) for what must still look at the host's, as the `sockets`
//! collection does.

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The network namespace the agent started in, once it entered another.
static STARTED_IN: OnceLock<File> = OnceLock::new();

/// The network namespace the agent started in (the host's), if it entered another since.
pub fn started_in() -> Option<&'static File> {
    STARTED_IN.get()
}

/// Keeps the calling thread's network namespace as the one the agent started in (the first
/// call wins).
pub fn remember_start() -> Result<(), NetnsError> {
    let path = PathBuf::from("/proc/thread-self/ns/net");
    let file = File::open(&path).map_err(|source| NetnsError::Open { path, source })?;
    let _ = STARTED_IN.set(file);
    Ok(())
}

const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace name {0:?} is not valid")]
    BadName(String),
    #[error("opening network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("entering network namespace {path}: {source}")]
    Enter { path: PathBuf, source: nix::Error },
}

/// Moves the calling thread into network namespace `name`. Call it before starting any other
/// thread (the async runtime), so that all of them live in the namespace.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.len() > 255 {
        return Err(NetnsError::BadName(name.to_string()));
    }
    if let Err(e) = remember_start() {
        tracing::warn!(error = %e, "collections will see the entered network namespace's sockets");
    }
    let path = PathBuf::from(NETNS_DIR).join(name);
    let file = std::fs::File::open(&path).map_err(|source| NetnsError::Open {
        path: path.clone(),
        source,
    })?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in ["", "..", "a/b", "../../proc/1/ns/net"] {
            assert!(matches!(enter(bad), Err(NetnsError::BadName(_))), "{bad}");
        }
    }
}
