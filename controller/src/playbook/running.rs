//! The runs this controller is executing right now, so that a run claimed again (by the
//! periodic claim of a shared store, or a second resume) is never executed twice here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Ids of the runs being executed in this process.
#[derive(Default, Clone)]
pub struct Running(Arc<Mutex<HashSet<String>>>);

/// Held while a run executes; the id is released when it drops.
pub struct Executing {
    set: Running,
    id: String,
}

impl Running {
    /// Marks `id` as executing; None if it already is.
    pub fn start(&self, id: &str) -> Option<Executing> {
        let fresh = self.lock().insert(id.to_string());
        fresh.then(|| Executing {
            set: self.clone(),
            id: id.to_string(),
        })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Executing {
    fn drop(&mut self) {
        self.set.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_executes_once_at_a_time_and_again_after_it_ends() {
        let r = Running::default();
        let first = r.start("run-1").expect("first start");
        assert!(r.start("run-1").is_none(), "a second start while executing");
        assert!(r.contains("run-1"));
        drop(first);
        assert!(!r.contains("run-1"));
        assert!(r.start("run-1").is_some());
    }
}
