//! Memory of the soak's processes over time, read from /proc once a second: the controller
//! and each agent, across their restarts, and whether any of them grew without bound (the
//! median of the last third of the run against that of the first third).

use std::collections::BTreeMap;

/// Growth allowed from the first third of the run to the last before it counts as unbounded:
/// half again, plus 16 MiB for caches that fill once.
const SLACK_KIB: u64 = 16 << 10;

/// Each role's resident memory samples (KiB), in the order taken.
#[derive(Debug, Default)]
pub struct Sampler {
    series: BTreeMap<String, Vec<u64>>,
}

/// One process's memory over the run, in KiB.
#[derive(Debug, Clone)]
pub struct Growth {
    pub role: String,
    pub samples: usize,
    pub first_third_kib: u64,
    pub last_third_kib: u64,
    pub max_kib: u64,
}

impl Growth {
    pub fn bounded(&self) -> bool {
        self.last_third_kib <= self.first_third_kib * 3 / 2 + SLACK_KIB
    }
}

impl Sampler {
    /// Notes the resident memory of `pid` (if it is running) as `role`'s.
    pub fn sample(&mut self, role: &str, pid: Option<u32>) {
        let Some(Ok((_, rss))) = pid.map(crate::procstat::cost) else {
            return;
        };
        self.series.entry(role.to_string()).or_default().push(rss);
    }

    /// Each role's growth.
    pub fn growth(&self) -> Vec<Growth> {
        self.series
            .iter()
            .map(|(role, s)| {
                let third = (s.len() / 3).max(1);
                Growth {
                    role: role.clone(),
                    samples: s.len(),
                    first_third_kib: median(&s[..third.min(s.len())]),
                    last_third_kib: median(&s[s.len().saturating_sub(third)..]),
                    max_kib: s.iter().copied().max().unwrap_or(0),
                }
            })
            .collect()
    }
}

fn median(s: &[u64]) -> u64 {
    let mut v = s.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}
