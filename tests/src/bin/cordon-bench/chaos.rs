//! Chaos (root only; `cordon_tests::chaos`): three agents in namespaces under load for
//! `--minutes N` (default 10) of random faults, then the checks; prints the report and fails
//! when a check does. `--chaos-seed N` repeats a run's choice of faults.

use cordon_tests::chaos::{Options, run as soak};
use std::time::Duration;

pub fn run(minutes: u64, seed: u64) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("chaos: SKIPPED (needs root for namespaces, nftables and tmpfs)");
        return Ok(());
    }
    let report = soak(&Options {
        length: Duration::from_secs(minutes * 60),
        agents: 3,
        seed,
    })?;
    print!("{report}");
    let failures = report.failures();
    anyhow::ensure!(
        failures.is_empty(),
        "the chaos soak failed: {}",
        failures.join("; ")
    );
    Ok(())
}
