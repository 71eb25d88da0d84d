//! The chaos soak for two minutes (the ten-minute run is `cordon-bench --only chaos`): three
//! agents in namespaces under an exec and file load while the controller and agents are killed
//! and restarted, links cut, spool file systems filled and a spool segment corrupted, with
//! isolate and release ordered throughout. Afterwards every event an agent accepted is stored
//! once, still waits in its spool, or was reported lost with its range; every command ended;
//! each host's observed isolation is its desired one; no process's memory kept growing.

use cordon_tests::chaos::{Options, run};
use cordon_tests::require_root;
use std::time::Duration;

#[test]
fn two_minutes_of_faults_lose_nothing_unreported_and_leave_every_host_as_desired() {
    if !require_root(
        "two_minutes_of_faults_lose_nothing_unreported_and_leave_every_host_as_desired",
    ) {
        return;
    }
    let report = run(&Options {
        length: Duration::from_secs(120),
        agents: 3,
        seed: 7,
    })
    .expect("the soak ran");
    println!("{report}");
    assert!(report.failures().is_empty(), "{report}");
    // The soak did what it claims: faults of each kind, commands, events through the store.
    for fault in [
        "controller killed and restarted",
        "agent killed and restarted",
        "link cut and restored",
        "spool file system filled and freed",
        "spool segment corrupted",
    ] {
        assert!(
            report.faults.get(fault).is_some_and(|n| *n > 0),
            "no {fault:?}\n{report}"
        );
    }
    assert!(report.commands > 0, "{report}");
    for a in &report.accounts {
        assert!(a.files_stored > 100 && a.stored > 0, "{report}");
    }
}
