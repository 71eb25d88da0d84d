//! The agent's own cost (CPU, resident memory, from /proc/self) and its telemetry backlog,
//! sampled for every heartbeat.

use crate::telemetry::Telemetry;
use cordon_proto::AgentMetrics;
use std::time::Instant;

pub struct SelfMetrics {
    last: Option<(Instant, u64, u64)>,
    ticks_per_sec: f64,
    page_size: u64,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        use nix::unistd::{SysconfVar, sysconf};
        let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096);
        Self {
            last: None,
            ticks_per_sec: ticks as f64,
            page_size: page as u64,
        }
    }
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // Fields 14 and 15, counted from field 3 right after the command name.
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

fn rss_pages() -> Option<u64> {
    std::fs::read_to_string("/proc/self/statm")
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl SelfMetrics {
    pub fn sample(&mut self, t: &Telemetry, sensors: &[String]) -> AgentMetrics {
        let now = Instant::now();
        let ticks = cpu_ticks().unwrap_or(0);
        let (seq, spool_events, spool_bytes) = {
            let s = t.lock();
            (s.last_seq(), s.depth(), s.bytes())
        };
        let (cpu_percent, events_per_sec) = match self.last {
            Some((at, last_ticks, last_seq)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                let cpu =
                    (ticks.saturating_sub(last_ticks)) as f64 / self.ticks_per_sec / secs * 100.0;
                (cpu, seq.saturating_sub(last_seq) as f64 / secs)
            }
            None => (0.0, 0.0),
        };
        self.last = Some((now, ticks, seq));
        AgentMetrics {
            cpu_percent,
            rss_bytes: rss_pages().unwrap_or(0) * self.page_size,
            spool_events,
            spool_bytes,
            events_per_sec,
            events_lost: t.lost_total(),
            sensors: sensors.to_vec(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_a_cost() {
        assert!(super::cpu_ticks().is_some());
        assert!(super::rss_pages().unwrap() > 0);
    }
}
