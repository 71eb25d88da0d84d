//! Jittered exponential backoff for reconnecting: each failure doubles the ceiling up to a
//! maximum, and the actual delay is drawn from the upper half of it so a fleet that lost its
//! controller at the same moment does not come back at the same moment.

use std::time::Duration;

pub struct Backoff {
    min: Duration,
    max: Duration,
    ceiling: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            ceiling: min,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.same_delay();
        self.ceiling = (self.ceiling * 2).min(self.max);
        delay
    }

    /// A delay drawn as the next one would be, without raising the ceiling: for moving on
    /// to another controller within one round of attempts.
    pub fn same_delay(&self) -> Duration {
        let half = self.ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// After a connection that worked, start again from the minimum.
    pub fn reset(&mut self) {
        self.ceiling = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_jittered_and_capped_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400), "{delays:?}");
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
        assert!(delays[9] >= Duration::from_secs(1));
        // Jitter: not every capped delay is the same.
        assert!(delays[5..].windows(2).any(|w| w[0] != w[1]), "{delays:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
        // The same ceiling again, however often asked.
        let same: Vec<_> = (0..10).map(|_| b.same_delay()).collect();
        assert!(
            same.iter()
                .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_millis(200)),
            "{same:?}"
        );
    }
}
