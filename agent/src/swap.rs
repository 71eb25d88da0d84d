//! A value that a configuration reload can replace while others read it: readers take the
//! current version (an `Arc`, cheap to clone) once per use, so a command that started with
//! one version finishes with it, and the next command sees the new one.

use std::sync::{Arc, RwLock};

/// The current version of a reloadable setting.
#[derive(Debug, Default)]
pub struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// The version in force now.
    pub fn load(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `value` in force for every later `load`.
    pub fn store(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_version_outlives_a_store() {
        let s = Swap::new(1);
        let before = s.load();
        s.store(2);
        assert_eq!((*before, *s.load()), (1, 2));
    }
}
