//! Entering a named network namespace (`ip netns` keeps them under /run/netns). The agent
//! opens its host-wide sensors first, then enters the namespace for its own connections and
//! for containment; every thread started afterwards inherits it.

use nix::sched::{CloneFlags, setns};
use std::path::PathBuf;

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
