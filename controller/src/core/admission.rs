//! Caps on open connections, in total and per source, for the gRPC listener and the web
//! console alike. A connection is admitted when it is accepted, before its TLS handshake, and holds its place (a [`Ticket`]) until it closes;
//! past a cap it is closed at once. A source is an IPv4 address or an IPv6 /64 (one host
//! usually holds a whole /64, so counting single IPv6 addresses would cap nothing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use super::ratelimit::source_key;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    Source,
}

impl Refused {
    /// How the refusal summary names it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Total => "over_max_connections",
            Self::Source => "over_max_connections_per_source",
        }
    }
}

/// The open connections: a semaphore for the total, a count per source.
pub struct Admission {
    total: Arc<Semaphore>,
    per_source: Mutex<HashMap<IpAddr, u32>>,
    max_per_source: u32,
}

/// One admitted connection's place; dropping it frees the place.
pub struct Ticket {
    source: IpAddr,
    admission: Arc<Admission>,
    _total: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(max_total: u32, max_per_source: u32) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(max_total as usize)),
            per_source: Mutex::default(),
            max_per_source,
        })
    }

    /// Admits a connection from `peer` if both caps allow it.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refused> {
        let source = source_key(peer);
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Total)?;
        let mut counts = self.counts();
        let open = counts.entry(source).or_default();
        if *open >= self.max_per_source {
            return Err(Refused::Source);
        }
        *open += 1;
        Ok(Ticket {
            source,
            admission: self.clone(),
            _total: total,
        })
    }

    /// Connections open from `peer`'s source.
    pub fn open_from(&self, peer: IpAddr) -> u32 {
        self.counts().get(&source_key(peer)).copied().unwrap_or(0)
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.per_source.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        if let Some(open) = counts.get_mut(&self.source) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(source_key(ip("10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(
            source_key(ip("2001:db8:1:2::9")),
            source_key(ip("2001:db8:1:2:ffff::"))
        );
    }

    #[test]
    fn caps_hold_per_source_and_in_total_and_places_come_back() {
        let a = Admission::new(3, 2);
        let first = a.admit(ip("10.0.0.1")).unwrap();
        let _second = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.1")).err(), Some(Refused::Source));
        let _other = a.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.3")).err(), Some(Refused::Total));
        // A refusal takes no place.
        assert_eq!(a.open_from(ip("10.0.0.1")), 2);
        assert_eq!(a.open_from(ip("10.0.0.3")), 0);
        drop(first);
        assert_eq!(a.open_from(ip("10.0.0.1")), 1);
        let _again = a.admit(ip("10.0.0.1")).unwrap();
    }
}
