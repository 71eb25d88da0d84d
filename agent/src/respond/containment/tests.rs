//! The containment manager over recording fakes whose "kernel" outlives it: rollback,
//! restarts, and the refusals that keep the controller reachable.

use super::*;
use crate::respond::fakes::{FixedReachability, RecordingBlocker, RecordingIsolator};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A manager over fakes whose "kernel" state outlives it, like a real kernel would.
struct Rig {
    isolator: Arc<RecordingIsolator>,
    blocker: Arc<RecordingBlocker>,
    reach: Arc<FixedReachability>,
    file: PathBuf,
    controllers: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            isolator: Arc::default(),
            blocker: Arc::default(),
            reach: Arc::new(FixedReachability::new(true)),
            file: dir.path().join("containment.json"),
            controllers: vec!["https://127.0.0.1:7443".into()],
            _dir: dir,
        }
    }
    fn manager(&self) -> Containment {
        Containment::new(
            Box::new(self.isolator.clone()),
            Box::new(self.blocker.clone()),
            Box::new(self.reach.clone()),
            crate::config::ContainmentConfig::default(),
            self.controllers.clone(),
            self.file.clone(),
        )
    }
}

#[test]
fn a_failed_reachability_check_rolls_back_to_the_previous_state() {
    let rig = Rig::new();
    let m = rig.manager();
    rig.reach.0.store(false, Ordering::SeqCst);
    let err = m.isolate(&[], "x").unwrap_err();
    assert!(
        err.contains("rolled back") && err.contains("not isolated"),
        "{err}"
    );
    assert!(rig.isolator.applied.lock().unwrap().is_none());

    rig.reach.0.store(true, Ordering::SeqCst);
    m.isolate(&["10.0.0.0/8:22".into()], "first").unwrap();
    rig.reach.0.store(false, Ordering::SeqCst);
    let err = m.isolate(&["192.0.2.1".into()], "second").unwrap_err();
    assert!(err.contains("previous isolation is back"), "{err}");
    let kept = rig.isolator.applied.lock().unwrap().clone().unwrap();
    assert_eq!(kept.allow[0].to_string(), "10.0.0.0/8:22");
    assert!(m.state().isolation_desired);
}

#[test]
fn desired_state_survives_a_restart_and_a_lost_kernel_ruleset() {
    let rig = Rig::new();
    let m = rig.manager();
    m.isolate(&["10.0.0.1".into()], "incident").unwrap();
    m.block("198.51.100.0/24", 0).unwrap();
    m.block("2001:db8::1", 3600).unwrap();
    drop(m);
    // Reboot: the kernel forgot everything.
    rig.isolator.remove().unwrap();
    rig.blocker.blocked.lock().unwrap().clear();
    let m = rig.manager();
    m.reapply();
    let plan = rig
        .isolator
        .applied
        .lock()
        .unwrap()
        .clone()
        .expect("isolation not re-applied");
    assert_eq!(
        plan.controller,
        vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
    );
    let blocked = rig.blocker.blocked.lock().unwrap().clone();
    assert!(
        blocked.contains_key("198.51.100.0/24") && blocked.contains_key("2001:db8::1"),
        "{blocked:?}"
    );
    let s = m.state();
    assert!(s.isolation_desired && s.isolation_table_present);
    assert_eq!(s.blocked_addresses, 2);
    m.release().unwrap();
    assert!(!m.state().isolation_desired && rig.isolator.applied.lock().unwrap().is_none());
}

#[test]
fn bad_allow_entries_are_refused_before_anything_changes() {
    let rig = Rig::new();
    let m = rig.manager();
    let err = m.isolate(&["not-an-address".into()], "x").unwrap_err();
    assert!(err.contains("not-an-address"));
    assert!(rig.isolator.calls.lock().unwrap().is_empty());
}

#[test]
fn blocks_covering_the_controller_are_refused_before_anything_changes() {
    let rig = Rig::new();
    let m = rig.manager();
    for cidr in ["127.0.0.1", "127.0.0.0/8", "0.0.0.0/0", "96.0.0.0/3"] {
        let err = m.block(cidr, 40).unwrap_err();
        assert!(
            err.contains("controller's address 127.0.0.1") && err.contains("refusing"),
            "{cidr}: {err}"
        );
    }
    assert!(rig.blocker.blocked.lock().unwrap().is_empty());
    // Another family, or a neighbour, is fine.
    m.block("::/0", 0).unwrap();
    m.block("128.0.0.0/1", 0).unwrap();
    assert_eq!(m.state().blocked_addresses, 2);
}

#[test]
fn a_block_that_cuts_off_the_controller_is_rolled_back() {
    let rig = Rig::new();
    let m = rig.manager();
    m.block("198.51.100.7", 3600).unwrap();
    rig.reach.0.store(false, Ordering::SeqCst);
    let err = m.block("203.0.113.0/24", 0).unwrap_err();
    assert!(
        err.contains("not reachable") && err.contains("rolled back"),
        "{err}"
    );
    // A block that was already there keeps its expiry rather than turning permanent.
    let err = m.block("198.51.100.7", 0).unwrap_err();
    assert!(err.contains("rolled back"), "{err}");
    let blocked = rig.blocker.blocked.lock().unwrap().clone();
    assert!(!blocked.contains_key("203.0.113.0/24"), "{blocked:?}");
    let ttl = blocked["198.51.100.7"].expect("the earlier expiry is gone");
    assert!(ttl > Duration::from_secs(3500) && ttl <= Duration::from_secs(3600));
    // Nothing of the failed blocks reached the state file.
    drop(m);
    rig.blocker.blocked.lock().unwrap().clear();
    rig.manager().reapply();
    let reapplied = rig.blocker.blocked.lock().unwrap().clone();
    assert_eq!(reapplied.keys().collect::<Vec<_>>(), ["198.51.100.7"]);
}

#[test]
fn an_allowlist_letting_a_whole_family_through_is_refused() {
    let rig = Rig::new();
    let m = rig.manager();
    for allow in [
        vec!["0.0.0.0/0", "::/0"],
        vec!["::/0"],
        vec!["0.0.0.0/1", "128.0.0.0/1"],
        vec!["10.0.0.1", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"],
    ] {
        let allow: Vec<String> = allow.into_iter().map(String::from).collect();
        let err = m.isolate(&allow, "x").unwrap_err();
        assert!(
            err.contains("refusing the allowlist") && err.contains("block nothing"),
            "{allow:?}: {err}"
        );
    }
    assert!(rig.isolator.calls.lock().unwrap().is_empty());
    // One port everywhere still isolates everything else.
    m.isolate(&["0.0.0.0/0:443".into(), "10.0.0.0/8".into()], "x")
        .unwrap();
}

#[test]
fn every_controller_replica_stays_reachable_through_isolation_and_blocks() {
    let mut rig = Rig::new();
    rig.controllers = vec![
        "https://127.0.0.1:7443".into(),
        "https://127.0.0.2:7444".into(),
        "https://[::1]".into(),
    ];
    let m = rig.manager();
    let res = m.isolate(&[], "incident").unwrap();
    assert_eq!(res.controller_addresses, ["127.0.0.1", "127.0.0.2", "::1"]);
    let plan = rig.isolator.applied.lock().unwrap().clone().unwrap();
    assert_eq!(plan.controller.len(), 3, "{plan:?}");
    // The reachability check asks for every replica, each at its own port.
    let asked: Vec<String> = rig
        .reach
        .1
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        asked,
        ["127.0.0.1:7443", "127.0.0.2:7444", "[::1]:443"],
        "{asked:?}"
    );
    for cidr in ["127.0.0.2", "::1/128"] {
        let err = m.block(cidr, 0).unwrap_err();
        assert!(err.contains("refusing"), "{cidr}: {err}");
    }
}
