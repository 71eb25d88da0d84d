//! The admin streams a principal holds open (`events tail`, file downloads), bounded per
//! principal by `listener.max_streams_per_admin`: one identity (a runaway script, a stolen
//! service-account certificate) cannot hold an unbounded number of server tasks and
//! subscriptions. A stream takes a [`StreamSlot`] before it starts and gives it back when its
//! task ends, however it ends.

use super::{Admin, CoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open admin streams per principal.
pub struct AdminStreams {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream of one principal; dropping it frees the place.
pub struct StreamSlot {
    streams: Arc<AdminStreams>,
    key: String,
}

impl AdminStreams {
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max: max as usize,
            open: Mutex::default(),
        })
    }

    /// A place for one more stream of `admin`, or `TooManyStreams` when they hold the most.
    pub fn take(self: &Arc<Self>, admin: &Admin) -> Result<StreamSlot, CoreError> {
        let key = format!("{}:{}", admin.kind, admin.name);
        let mut open = self.lock();
        let n = open.entry(key.clone()).or_default();
        if *n >= self.max {
            return Err(CoreError::TooManyStreams {
                name: admin.name.clone(),
                max: self.max,
            });
        }
        *n += 1;
        Ok(StreamSlot {
            streams: self.clone(),
            key,
        })
    }

    /// Streams `admin` holds open now.
    pub fn held(&self, admin: &Admin) -> usize {
        let key = format!("{}:{}", admin.kind, admin.name);
        self.lock().get(&key).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_holds_at_most_max_and_a_freed_place_is_taken_again() {
        let streams = AdminStreams::new(2);
        let (ann, bob) = (Admin::new("ann"), Admin::new("bob"));
        let first = streams.take(&ann).unwrap();
        let _second = streams.take(&ann).unwrap();
        let refused = streams.take(&ann).err().unwrap();
        assert!(
            refused.to_string().contains("ann already has 2"),
            "{refused}"
        );
        // Another principal is not affected.
        let _bob = streams.take(&bob).unwrap();
        drop(first);
        assert_eq!(streams.held(&ann), 1);
        streams.take(&ann).unwrap();
    }
}
