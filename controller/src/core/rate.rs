//! How fast telemetry comes in: ingest counts the events it stores per second, and the
//! overview shows the average over the last [`WINDOW_SECS`] whole seconds.

use std::sync::Mutex;

/// Seconds the rate is averaged over.
pub const WINDOW_SECS: usize = 10;

/// Events stored per second, for the last [`WINDOW_SECS`] seconds (and the current one).
#[derive(Debug, Default)]
pub struct IngestRate {
    /// (second, events stored in it), indexed by second modulo the window plus one.
    buckets: Mutex<[(i64, u64); WINDOW_SECS + 1]>,
}

impl IngestRate {
    /// Counts `n` events stored at `now_ms`.
    pub fn note(&self, n: usize, now_ms: i64) {
        let sec = now_ms.div_euclid(1000);
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut b[sec.rem_euclid(WINDOW_SECS as i64 + 1) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n as u64;
    }

    /// Events per second over the last whole seconds before `now_ms`.
    pub fn per_sec(&self, now_ms: i64) -> f64 {
        let now = now_ms.div_euclid(1000);
        let b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let total: u64 = b
            .iter()
            .filter(|(sec, _)| *sec < now && now - *sec <= WINDOW_SECS as i64)
            .map(|(_, n)| n)
            .sum();
        total as f64 / WINDOW_SECS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_averages_the_last_whole_seconds() {
        let r = IngestRate::default();
        assert_eq!(r.per_sec(50_000), 0.0);
        for s in 40..50 {
            r.note(10, s * 1000 + 500);
        }
        r.note(1000, 50_100);
        assert_eq!(
            r.per_sec(50_200),
            10.0,
            "the current second is not whole yet"
        );
        assert_eq!(r.per_sec(55_000), 5.0 + 100.0);
        assert_eq!(r.per_sec(200_000), 0.0, "old seconds drop out");
    }
}
