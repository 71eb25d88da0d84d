//! The exec check's cost (`--only execcheck`, root only): `--execcheck-execs N` (default
//! 5,000) runs of /bin/true from this process with prevention's exec marks off, and the same
//! with a block list of 100 digests (none of them /bin/true's, so every exec is checked and
//! allowed: the cost every exec on a protected host pays). The two alternate in five rounds
//! so drift on a shared machine falls on both; printed: µs per exec, off and on (median of
//! the rounds), and the difference. After its first check /bin/true carries an ignore mark
//! (until written), so this is the cost of a program run again. Then the worst case, the
//! first exec of a new file (a round trip to the agent and a SHA-256 of it): 200 fresh copies
//! of /bin/true per round, each with its own trailing bytes, run once each, off and on.

use cordon_agent::prevent::{Mode, Prevention, PreventionConfig, TamperConfig};
use cordon_agent::spool::SpoolConfig;
use cordon_agent::telemetry::Telemetry;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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
    let (mut new_off, mut new_on) = (Vec::new(), Vec::new());
    let dir = tempfile::tempdir_in("/var/tmp")?;
    for round in 0..ROUNDS {
        p.set_blocklist(Vec::new());
        off.push(exec_loop(per_round, |_| "/bin/true".into())?);
        let files = copies(dir.path(), &format!("off{round}"), NEW_FILES)?;
        new_off.push(exec_loop(NEW_FILES, |i| files[i].clone())?);
        p.set_blocklist(list.clone());
        on.push(exec_loop(per_round, |_| "/bin/true".into())?);
        let files = copies(dir.path(), &format!("on{round}"), NEW_FILES)?;
        new_on.push(exec_loop(NEW_FILES, |i| files[i].clone())?);
    }
    p.set_blocklist(Vec::new());
    let (off, on) = (median(&mut off), median(&mut on));
    println!(
        "execcheck, program run again: {} execs of /bin/true in {ROUNDS} rounds: prevention off {off:.1} µs per exec, on (block list of 100) {on:.1} µs, added {:.1} µs (target < 20 µs)",
        per_round * ROUNDS * 2,
        on - off,
    );
    let (new_off, new_on) = (median(&mut new_off), median(&mut new_on));
    println!(
        "execcheck, first exec of a new file: {} fresh copies of /bin/true run once each in {ROUNDS} rounds: off {new_off:.1} µs per exec, on {new_on:.1} µs (round trip and SHA-256 of {} bytes), added {:.1} µs; denied {}",
        NEW_FILES * ROUNDS * 2,
        std::fs::metadata("/bin/true")?.len(),
        new_on - new_off,
        p.denied()
    );
    Ok(())
}

/// New files run once each per round.
const NEW_FILES: usize = 200;

/// `n` copies of /bin/true, each with its own trailing bytes (a new digest), written while
/// nothing is checked, so the check hashes each at its first exec.
fn copies(dir: &Path, tag: &str, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let bin = std::fs::read("/bin/true")?;
    (0..n)
        .map(|i| {
            let p = dir.join(format!("{tag}-{i}"));
            let mut bytes = bin.clone();
            bytes.extend(format!("{tag} {i}").as_bytes());
            std::fs::write(&p, bytes)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
            Ok(p)
        })
        .collect()
}

/// µs per exec (fork, exec, wait) of `n` runs, the `i`th of `program(i)`.
fn exec_loop(n: usize, program: impl Fn(usize) -> PathBuf) -> anyhow::Result<f64> {
    let start = Instant::now();
    for i in 0..n {
        let p = program(i);
        let s = Command::new(&p).status()?;
        anyhow::ensure!(s.success(), "{}: {s}", p.display());
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
