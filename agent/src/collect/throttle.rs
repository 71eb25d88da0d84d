//! Keeping a collection light: it runs on a thread of its own at the lowest CPU priority
//! ([`run_low`]), and it pauses while the agent's CPU use, over the collection so far, is
//! above its budget in cores ([`Throttle`], which the sink consults at every entry). So a
//! search of a large tree stretches out in time instead of taking a core from the host's
//! own work.

use super::{Args, CollectError, Host, Limits, Outcome};
use rustix::time::{ClockId, clock_gettime};
use std::time::{Duration, Instant};

/// How often the throttle looks at the clocks (a collection checks far more often).
const EVERY: Duration = Duration::from_millis(10);

/// The longest one pause.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// The CPU budget of one collection.
#[derive(Debug)]
pub struct Throttle {
    /// Cores the whole agent may use while the collection runs.
    budget: f64,
    started: Instant,
    cpu_at_start: Duration,
    next_look: Instant,
}

/// The CPU time the whole agent process has used.
fn process_cpu() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl Throttle {
    /// A throttle holding the agent to `budget` cores; none for a budget of 0 or less.
    pub fn new(budget: f64) -> Option<Self> {
        (budget > 0.0).then(|| Self {
            budget,
            started: Instant::now(),
            cpu_at_start: process_cpu(),
            next_look: Instant::now(),
        })
    }

    /// Sleeps while the agent's CPU use since the collection started is over the budget,
    /// never past `deadline`.
    pub fn pause(&mut self, deadline: Instant) {
        let now = Instant::now();
        if now < self.next_look {
            return;
        }
        self.next_look = now + EVERY;
        let used = process_cpu()
            .saturating_sub(self.cpu_at_start)
            .as_secs_f64();
        // The wall time at which `used` would be within the budget.
        let due = self.started + Duration::from_secs_f64(used / self.budget);
        if due > now {
            let wait = (due - now)
                .min(MAX_PAUSE)
                .min(deadline.saturating_duration_since(now));
            std::thread::sleep(wait);
        }
    }
}

/// Runs a collection on a thread of its own at the lowest CPU priority (nice 19), and
/// returns what it gathered.
pub fn run_low(
    name: String,
    args: Args,
    host: Host,
    limits: Limits,
) -> std::thread::JoinHandle<Result<Outcome, CollectError>> {
    std::thread::spawn(move || {
        let me = rustix::process::Pid::from_raw(nix::unistd::gettid().as_raw());
        if let Err(e) = rustix::process::setpriority_process(me, 19) {
            tracing::warn!(error = %e, "could not lower the collection's priority");
        }
        super::run(&name, &args, &host, limits)
    })
}
