//! What a process costs, read from /proc: CPU time (user and system) and resident memory.

use anyhow::Context;

/// CPU ticks (utime + stime) and VmRSS (KiB) of a process.
pub fn cost(pid: u32) -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest: Vec<&str> = stat
        .get(stat.rfind(')').context("stat")? + 1..)
        .context("stat")?
        .split_whitespace()
        .collect();
    // Fields 14 and 15; rest[0] is field 3.
    let ticks = rest[11].parse::<u64>()? + rest[12].parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("VmRSS")?
        .parse()?;
    Ok((ticks, rss))
}

/// Seconds per CPU tick of [`cost`].
pub fn tick_secs() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    1.0 / sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64
}
