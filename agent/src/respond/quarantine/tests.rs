//! Quarantine and restore on real files in a temporary directory: round trips, damaged
//! records, hostile paths, FIFOs, protected files and force.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

fn store(tmp: &Path) -> QuarantineStore {
    store_protecting(tmp, Protected::default(), Protected::default())
}

fn store_protecting(tmp: &Path, own_files: Protected, critical: Protected) -> QuarantineStore {
    let protection = Protection {
        own_dirs: vec![tmp.join("state")],
        own_files,
        critical,
    };
    QuarantineStore::new(tmp.join("state/quarantine"), protection)
}

#[test]
fn quarantine_then_restore_round_trips_content_mode_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let q = store(tmp.path());
    let f = tmp.path().join("evil.sh");
    std::fs::write(&f, b"#!/bin/sh\necho pwned\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let before = std::fs::metadata(&f).unwrap();
    let e = q.quarantine_file(f.to_str().unwrap(), false, 1).unwrap();
    assert!(!f.exists(), "the original is still there");
    let stored = tmp.path().join(format!("state/quarantine/{}.bin", e.id));
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o7777,
        0
    );
    assert_eq!(q.entries().unwrap().len(), 1);
    q.restore_file(&e.id).unwrap();
    let after = std::fs::metadata(&f).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"#!/bin/sh\necho pwned\n");
    assert_eq!(after.mode() & 0o7777, 0o4755 & before.mode() & 0o7777);
    assert_eq!(
        (after.uid(), after.gid(), after.mtime(), after.mtime_nsec()),
        (
            before.uid(),
            before.gid(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    assert!(q.entries().unwrap().is_empty());
    assert!(q.restore_file(&e.id).is_err());
}

#[test]
fn a_damaged_record_is_refused_instead_of_restoring_with_guessed_owner_or_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let q = store(tmp.path());
    let f = tmp.path().join("x");
    std::fs::write(&f, b"x").unwrap();
    let e = q.quarantine_file(f.to_str().unwrap(), false, 1).unwrap();
    let record = tmp.path().join(format!("state/quarantine/{}.json", e.id));
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("mode");
    std::fs::write(&record, v.to_string()).unwrap();
    let err = q.restore_file(&e.id).unwrap_err();
    assert!(err.contains("corrupt"), "{err}");
    assert!(!f.exists());
}

#[test]
fn symlinks_traversal_relative_kernel_and_own_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let q = store(tmp.path());
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("f"), b"x").unwrap();
    symlink(&real, tmp.path().join("link")).unwrap();
    symlink(real.join("f"), tmp.path().join("flink")).unwrap();
    let t = tmp.path().to_str().unwrap();
    for (path, why) in [
        (format!("{t}/link/f"), "symlink"),
        (format!("{t}/flink"), "symlink"),
        (format!("{t}/real/../real/f"), "'..'"),
        ("relative/f".to_string(), "absolute"),
        ("/proc/self/environ".to_string(), "/proc"),
        ("/etc/".to_string(), "name a file"),
        (format!("{t}/state/key.pem"), "agent's own"),
    ] {
        let err = q.quarantine_file(&path, false, 1).unwrap_err();
        assert!(err.contains(why), "{path}: {err}");
    }
    assert!(real.join("f").exists());
}

#[test]
fn a_fifo_is_refused_without_being_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    let q = store(tmp.path());
    let path = fifo.to_str().unwrap().to_string();
    // Opening a FIFO for reading blocks until a writer comes: run it where a hang shows.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(q.quarantine_file(&path, false, 1)));
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("quarantining a FIFO blocked");
    let err = result.unwrap_err();
    assert!(err.contains("not a regular file but a FIFO"), "{err}");
    assert!(fifo.exists());
}

#[test]
fn protected_and_own_files_are_refused_by_identity_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let shadow = tmp.path().join("shadow");
    let config = tmp.path().join("agent.toml");
    std::fs::write(&shadow, b"root:*:").unwrap();
    std::fs::write(&config, b"x = 1").unwrap();
    let q = store_protecting(
        tmp.path(),
        Protected::new(vec![config.clone()]),
        Protected::new(vec![shadow.clone()]),
    );
    // Another name for the same file is the same file.
    let alias = tmp.path().join("alias");
    std::fs::hard_link(&shadow, &alias).unwrap();
    for (file, why) in [
        (&shadow, "a protected file"),
        (&alias, "a protected file"),
        (&config, "the agent's own file"),
    ] {
        let err = q
            .quarantine_file(file.to_str().unwrap(), false, 1)
            .unwrap_err();
        assert!(err.contains(why) && err.contains("--force"), "{err}");
        assert!(file.exists());
    }
    let e = q
        .quarantine_file(shadow.to_str().unwrap(), true, 1)
        .unwrap();
    assert!(!shadow.exists());
    q.restore_file(&e.id).unwrap();
    assert_eq!(std::fs::read(&shadow).unwrap(), b"root:*:");
}

#[test]
fn files_protected_by_a_reload_are_refused_from_then_on() {
    let tmp = tempfile::tempdir().unwrap();
    let q = store(tmp.path());
    let (kept, added) = (tmp.path().join("kept"), tmp.path().join("added"));
    std::fs::write(&kept, b"k").unwrap();
    std::fs::write(&added, b"a").unwrap();
    q.protect(vec![added.clone()]);
    let err = q
        .quarantine_file(added.to_str().unwrap(), false, 1)
        .unwrap_err();
    assert!(err.contains("a protected file"), "{err}");
    q.quarantine_file(kept.to_str().unwrap(), false, 1).unwrap();
    assert!(!kept.exists() && added.exists());
}
