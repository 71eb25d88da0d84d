//! The agent's state files, as a crash or a hostile local writer may leave them: any bytes as
//! its identity file (`agent.toml` in the state directory), its command ledger (the ids of
//! commands already run, so none runs twice) and a quarantine record. Each is read back as
//! the agent reads it at start: settings, or an error naming the file, never a panic, and an
//! unreadable quarantine record is skipped, not guessed at.
#![no_main]

use cordon_agent::commands::Ledger;
use cordon_agent::respond::protect::Protected;
use cordon_agent::respond::quarantine::{Protection, QuarantineStore};
use cordon_agent::state::StateDir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let state = StateDir::new(dir.path());
    std::fs::write(state.identity_file(), data).expect("write the identity");
    let _ = state.identity();

    std::fs::write(state.ledger(), data).expect("write the ledger");
    if let Err(e) = Ledger::open(state.ledger()) {
        let name = state.ledger().display().to_string();
        assert!(e.to_string().contains(&name), "{e}");
    }

    let quarantine = dir.path().join("quarantine");
    std::fs::create_dir(&quarantine).expect("a quarantine dir");
    std::fs::write(quarantine.join("q-00ff.json"), data).expect("write the record");
    let store = QuarantineStore::new(
        quarantine,
        Protection {
            own_dirs: vec![dir.path().to_path_buf()],
            own_files: Protected::new(Vec::new()),
            critical: Protected::new(Vec::new()),
        },
    );
    let listed = store
        .entries()
        .expect("listing never fails on a bad record");
    assert!(listed.len() <= 1);
});
