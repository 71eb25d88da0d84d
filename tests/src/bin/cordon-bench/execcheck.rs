//! The exec check's cost (`--only execcheck`, root only): `--execcheck-execs N` (default
//! 5,000) runs of /bin/true from this process with prevention's exec marks off, and the same
//! with a block list of 100 digests (none of them /bin/true's, so every exec is checked and
//! allowed: the cost every exec on a protected host pays). The two alternate in five rounds
//! so drift on a shared machine falls on both; printed: µs per exec, off and on (median of
//! the rounds), and the difference. The first round on hashes /bin/true once; later ones hit
//! the cache, as a host's execs do.

use cordon_agent::prevent::{Mode, Prevention, PreventionConfig, TamperConfig};
use cordon_agent::spool::SpoolConfig;
use cordon_agent::telemetry::Telemetry;
use std::process::Command;
use std::time::Instant;

const ROUNDS: usize = 5;

pub fn run(execs: usize) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("execcheck: SKIPPED (fanotify permission events need root)");
        return Ok(());
    }
    let rt = tokio::runtime::Runtime::new()?;
    let spool = tempfile::tempdir()?;
    let telemetry = rt.block_on(async {
        Telemetry::start(SpoolConfig {
            dir: spool.path().join("spool"),
            max_bytes: 16 * 1024 * 1024,
            segment_bytes: 1024 * 1024,
        })
    })?;
    let cfg = PreventionConfig {
        mode: Mode::Fanotify,
        ..Default::default()
    };
    let p = Prevention::start(
        &cfg,
        &TamperConfig { protect: false },
        &[],
        telemetry.emitter(),
        None,
    );
    anyhow::ensure!(p.mode().starts_with("fanotify"), "prevention: {}", p.mode());
    let list: Vec<[u8; 32]> = (0..100u8).map(|i| [i; 32]).collect();
    let per_round = (execs / ROUNDS).max(1);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        p.set_blocklist(Vec::new());
        off.push(exec_loop(per_round)?);
        p.set_blocklist(list.clone());
        on.push(exec_loop(per_round)?);
    }
    p.set_blocklist(Vec::new());
    let (off, on) = (median(&mut off), median(&mut on));
    println!(
        "execcheck: {} execs of /bin/true in {ROUNDS} rounds: prevention off {off:.1} µs per exec, on (block list of 100) {on:.1} µs per exec, added {:.1} µs (target < 20 µs); denied {}",
        per_round * ROUNDS * 2,
        on - off,
        p.denied()
    );
    Ok(())
}

/// µs per exec (fork, exec, wait) of `n` runs of /bin/true.
fn exec_loop(n: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        let s = Command::new("/bin/true").status()?;
        anyhow::ensure!(s.success(), "/bin/true: {s}");
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
