//! Refusals that anyone who can reach the port can cause (connections past a cap or a
//! deadline, failed handshakes, enrolment attempts) are counted, not logged one by one:
//! [`report_loop`] writes one WARN line per interval for each kind that had any, with the
//! count per reason and the number of sources, so a flood costs the log one line a minute.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Distinct sources remembered per interval; past it the count says "at least".
const MAX_SOURCES: usize = 10_000;

/// The refusals of one kind since the last report.
pub struct Tally {
    what: &'static str,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_reason: BTreeMap<&'static str, u64>,
    sources: HashSet<IpAddr>,
}

/// What one report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub refused: u64,
    pub sources: usize,
    /// `reason=count` pairs, by reason.
    pub reasons: String,
}

impl Tally {
    pub fn new(what: &'static str) -> Arc<Self> {
        Arc::new(Self {
            what,
            counts: Mutex::default(),
        })
    }

    /// Counts one refusal of `source` for `reason`.
    pub fn note(&self, reason: &'static str, source: IpAddr) {
        tracing::debug!(what = self.what, reason, source = %source, "refused");
        let mut counts = self.counts();
        *counts.by_reason.entry(reason).or_default() += 1;
        if counts.sources.len() < MAX_SOURCES {
            counts.sources.insert(source);
        }
    }

    /// What was counted since the last call, if anything; starts counting afresh.
    pub fn take(&self) -> Option<Summary> {
        let counts = std::mem::take(&mut *self.counts());
        if counts.by_reason.is_empty() {
            return None;
        }
        let mut reasons = String::new();
        for (reason, n) in &counts.by_reason {
            let sep = if reasons.is_empty() { "" } else { " " };
            let _ = write!(reasons, "{sep}{reason}={n}");
        }
        Some(Summary {
            refused: counts.by_reason.values().sum(),
            sources: counts.sources.len(),
            reasons,
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every `interval`, logs what each tally counted since the last time.
pub async fn report_loop(tallies: Vec<Arc<Tally>>, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for tally in &tallies {
            if let Some(s) = tally.take() {
                tracing::warn!(
                    what = tally.what,
                    refused = s.refused,
                    sources = s.sources,
                    reasons = %s.reasons,
                    interval_secs = interval.as_secs(),
                    "refusals in the last interval"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_summed_by_reason_and_source_then_start_afresh() {
        let t = Tally::new("enrolment");
        assert_eq!(t.take(), None);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        for _ in 0..5 {
            t.note("rate_limited", a);
        }
        t.note("unknown_token", b);
        t.note("unknown_token", a);
        assert_eq!(
            t.take(),
            Some(Summary {
                refused: 7,
                sources: 2,
                reasons: "rate_limited=5 unknown_token=2".into()
            })
        );
        assert_eq!(t.take(), None);
    }
}
