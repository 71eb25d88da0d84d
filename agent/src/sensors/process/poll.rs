//! The polling source (last resort): lists processes with `sysinfo` every interval and reports
//! the ones that appeared as execs and the ones that vanished as exits. Anything born and gone
//! between two scans is never seen, which is why the agent reports this mode as degraded.

use super::clock::boot_ns;
use super::{ProcessSensorConfig, Raw, RawExec, Sink, Source};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

pub struct Poller {
    interval: Duration,
}

impl Poller {
    pub fn new(cfg: &ProcessSensorConfig) -> Self {
        Self {
            interval: Duration::from_millis(cfg.poll_interval_ms),
        }
    }
}

/// pid -> (start time in seconds, parent pid), enough to tell a reused pid from the same one.
fn snapshot(sys: &mut System) -> HashMap<u32, (u64, u32)> {
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_exe(UpdateKind::Never),
    );
    sys.processes()
        .iter()
        // Threads are listed too: only thread-group leaders are processes.
        .filter(|(_, p)| p.thread_kind().is_none())
        .map(|(pid, p)| {
            let ppid = p.parent().map(|p| p.as_u32()).unwrap_or(0);
            (pid.as_u32(), (p.start_time(), ppid))
        })
        .collect()
}

impl Source for Poller {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn run(self: Box<Self>, out: &mut dyn Sink, stop: &AtomicBool) {
        let mut sys = System::new();
        let mut known = snapshot(&mut sys);
        let mut next = Instant::now() + self.interval;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(200)));
                continue;
            }
            next = now + self.interval;
            let seen = snapshot(&mut sys);
            for (pid, (start, _)) in &known {
                if seen.get(pid).is_none_or(|(s, _)| s != start) {
                    out.push(Raw::Exit {
                        pid: *pid,
                        start_ns: None,
                        status: None,
                        time_ns: boot_ns(),
                    });
                }
            }
            let mut new: Vec<_> = seen
                .iter()
                .filter(|(pid, (start, _))| known.get(pid).is_none_or(|(s, _)| s != start))
                .collect();
            new.sort_by_key(|(pid, (start, _))| (*start, **pid));
            for (pid, (_, ppid)) in new {
                out.push(Raw::Exec(Box::new(RawExec {
                    pid: *pid,
                    ppid: *ppid,
                    ..Default::default()
                })));
            }
            known = seen;
            out.flush();
        }
    }
}
