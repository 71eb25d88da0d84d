//! Process start times: the kernel counts CLOCK_BOOTTIME nanoseconds, /proc counts clock
//! ticks of the same clock, and people read the wall clock.

use rustix::time::{ClockId, clock_gettime};
use std::sync::OnceLock;

/// Nanoseconds per clock tick (USER_HZ, normally 100 per second).
pub fn ns_per_tick() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| 1_000_000_000 / rustix::param::clock_ticks_per_second().max(1))
}

pub fn ticks_to_ns(ticks: u64) -> u64 {
    ticks * ns_per_tick()
}

pub fn ns_to_ticks(ns: u64) -> u64 {
    ns / ns_per_tick()
}

fn ns(id: ClockId) -> i128 {
    let t = clock_gettime(id);
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

/// CLOCK_BOOTTIME now, in nanoseconds.
pub fn boot_ns() -> u64 {
    ns(ClockId::Boottime) as u64
}

/// The wall-clock time (Unix milliseconds) of a CLOCK_BOOTTIME instant.
pub fn boot_to_wall_ms(boot_ns: u64) -> i64 {
    let offset = ns(ClockId::Realtime) - ns(ClockId::Boottime);
    ((offset + boot_ns as i128) / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_maps_onto_the_wall_clock() {
        let wall = boot_to_wall_ms(boot_ns());
        assert!((wall - cordon_proto::time::now_ms()).abs() < 1000);
        assert_eq!(ns_to_ticks(ticks_to_ns(12345)), 12345);
    }
}
