//! A token bucket per key (a source address for enrolment and sign-in attempts, a name for
//! sign-ins): a key may make `burst` attempts at once, then `refill_per_minute`. Callers pass
//! the time in, so the arithmetic is tested without waiting. The gRPC listener and the web
//! console both use it.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Keys tracked at most; past it, keys whose buckets have filled up again are forgotten
/// (they are as if never seen), and if that is not enough, all are.
const MAX_SOURCES: usize = 100_000;

/// What rate limits and caps count by: an IPv4 address (IPv4-mapped IPv6 included), or the
/// /64 an IPv6 address is in.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

pub struct RateLimiter<K = IpAddr> {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(burst: u32, refill_per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst),
            per_sec: f64::from(refill_per_minute) / 60.0,
            buckets: Mutex::default(),
        }
    }

    /// Takes one attempt from `source`'s bucket; false if it is empty.
    pub fn try_take(&self, source: &K, now: Instant) -> bool {
        let mut buckets = self.buckets();
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(source) {
            self.forget_idle(&mut buckets, now);
        }
        let bucket = buckets.entry(source.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(bucket, now);
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }

    /// Gives back an attempt that succeeded.
    pub fn give_back(&self, source: &K, now: Instant) {
        if let Some(bucket) = self.buckets().get_mut(source) {
            self.refill(bucket, now);
            bucket.tokens = (bucket.tokens + 1.0).min(self.burst);
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
    }

    fn forget_idle(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let mut b = *b;
            self.refill(&mut b, now);
            b.tokens < self.burst
        });
        if buckets.len() >= MAX_SOURCES {
            buckets.clear();
        }
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<K, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_source_gets_its_burst_then_the_refill_rate_and_others_are_unaffected() {
        let limiter: RateLimiter = RateLimiter::new(3, 60);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.try_take(&a, t0)));
        assert!(!limiter.try_take(&a, t0));
        assert!(
            limiter.try_take(&b, t0),
            "another source has its own bucket"
        );
        // One attempt a second comes back.
        assert!(!limiter.try_take(&a, t0 + Duration::from_millis(900)));
        assert!(limiter.try_take(&a, t0 + Duration::from_millis(1100)));
        assert!(!limiter.try_take(&a, t0 + Duration::from_millis(1200)));
        // A success gives its attempt back, up to the burst.
        limiter.give_back(&a, t0 + Duration::from_millis(1200));
        assert!(limiter.try_take(&a, t0 + Duration::from_millis(1200)));
        let later = t0 + Duration::from_secs(3600);
        assert!((0..3).all(|_| limiter.try_take(&a, later)));
        assert!(
            !limiter.try_take(&a, later),
            "the bucket never holds more than the burst"
        );
    }
}
