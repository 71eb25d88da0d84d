//! Edge policies on the agent: only signed, current policies for this agent are taken; a
//! matching event is acted on behind the guards, dry runs only record, the rate limit falls
//! back to alert only, and what is held survives a restart.

use super::act::HostActor;
use super::*;
use crate::respond::containment::Containment;
use crate::respond::fakes::{
    FakeProcesses, FixedReachability, RecordingBlocker, RecordingIsolator,
};
use crate::respond::kill::{self, Sig};
use crate::respond::protect::Protected;
use crate::respond::quarantine::{Protection, QuarantineStore};
use crate::swap::Swap;
use cordon_proto::{
    EdgeKill, EdgePolicy, EdgeRule, EdgeStep, ProcessEvent, edge_step, process_event,
};
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

const RULE: &str = "title: Payload From Shared Memory\nid: 6a3bd1a4-0000-4000-8000-000000000001\n\
status: test\nlevel: high\nlogsource:\n  product: linux\n  category: process_creation\n\
detection:\n  sel:\n    Image|startswith: /dev/shm/\n  condition: sel\n";

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn policy(version: u64, active: bool, dry_run: bool) -> EdgePolicy {
    EdgePolicy {
        id: "playbook:shm".into(),
        agent_id: "me".into(),
        version,
        active,
        dry_run,
        rules: vec![EdgeRule {
            id: "6a3bd1a4-0000-4000-8000-000000000001".into(),
            yaml: RULE.into(),
            ..Default::default()
        }],
        steps: vec![EdgeStep {
            name: "kill".into(),
            action: Some(edge_step::Action::Kill(EdgeKill { tree: false })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn sign(k: &Ed25519KeyPair, p: &EdgePolicy) -> EdgePolicies {
    let bytes = p.encode_to_vec();
    EdgePolicies {
        policies: vec![SignedEdgePolicy {
            signature: k.sign(&bytes).as_ref().to_vec(),
            policy: bytes,
        }],
    }
}

fn exec(pid: u32, exe: &str) -> event::Body {
    event::Body::Process(ProcessEvent {
        kind: process_event::Kind::Exec as i32,
        pid,
        start_ticks: 100,
        exe: exe.into(),
        argv: vec![exe.into()],
        ..Default::default()
    })
}

struct Host {
    edge: Edge,
    procs: Arc<FakeProcesses>,
    _dir: tempfile::TempDir,
}

fn host(k: &Ed25519KeyPair, per_minute: u32) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let procs = Arc::new(FakeProcesses::with(&[
        (1, 0, 1, "systemd", false),
        (40, 1, 100, "payload", false),
        (41, 1, 100, "payload", false),
        (42, 1, 100, "payload", false),
    ]));
    let edge = open(k, dir.path(), procs.clone(), per_minute);
    Host {
        edge,
        procs,
        _dir: dir,
    }
}

fn open(k: &Ed25519KeyPair, dir: &std::path::Path, procs: Arc<FakeProcesses>, per: u32) -> Edge {
    let containment = Containment::new(
        Box::<RecordingIsolator>::default(),
        Box::<RecordingBlocker>::default(),
        Box::new(FixedReachability::new(true)),
        Default::default(),
        Vec::new(),
        dir.join("containment.json"),
    );
    let actor = HostActor {
        processes: procs.clone(),
        signaller: procs,
        kill_policy: Arc::new(Swap::new(kill::Policy {
            self_pid: 42,
            protected: Protected::default(),
        })),
        quarantine: Arc::new(QuarantineStore::new(
            dir.join("quarantine"),
            Protection {
                own_dirs: vec![dir.to_path_buf()],
                own_files: Protected::default(),
                critical: Protected::default(),
            },
        )),
        containment: Arc::new(containment),
    };
    let pk = k.public_key().as_ref().to_vec();
    Edge::open("me".into(), pk, dir.join("edge"), Arc::new(actor), per)
}

fn killed(h: &Host) -> Vec<u32> {
    let sent = h.procs.sent.lock().unwrap();
    sent.iter()
        .filter(|(_, s)| *s == Sig::Kill)
        .map(|(p, _)| *p)
        .collect()
}

#[test]
fn a_matching_exec_is_killed_and_the_event_says_so() {
    let k = key();
    let h = host(&k, 10);
    let got = h.edge.accept(&sign(&k, &policy(1, true, false)));
    assert_eq!(
        got,
        [Ok(Accepted::Installed {
            id: "playbook:shm".into(),
            version: 1
        })]
    );
    assert!(h.edge.evaluate(&exec(40, "/usr/bin/id")).is_empty());
    let acts = h.edge.evaluate(&exec(40, "/dev/shm/x"));
    assert_eq!(acts.len(), 1, "{acts:?}");
    let a = &acts[0];
    assert_eq!(
        (
            a.policy_id.as_str(),
            a.version,
            a.action.as_str(),
            a.outcome.as_str()
        ),
        ("playbook:shm", 1, "kill_process", "done")
    );
    assert_eq!(a.rule_id, "6a3bd1a4-0000-4000-8000-000000000001");
    assert_eq!(killed(&h), [40]);
    assert_eq!(h.edge.states()[0].version, 1);
}

#[test]
fn pid_one_and_the_agent_itself_are_refused() {
    let k = key();
    let h = host(&k, 10);
    h.edge.accept(&sign(&k, &policy(1, true, false)));
    for pid in [1, 42] {
        let acts = h.edge.evaluate(&exec(pid, "/dev/shm/x"));
        assert_eq!(acts[0].outcome, "refused", "{acts:?}");
    }
    assert!(killed(&h).is_empty());
}

#[test]
fn unsigned_badly_signed_misaddressed_and_older_policies_are_refused() {
    let k = key();
    let h = host(&k, 10);
    let mut unsigned = sign(&k, &policy(1, true, false));
    unsigned.policies[0].signature.clear();
    assert!(
        h.edge.accept(&unsigned)[0]
            .as_ref()
            .unwrap_err()
            .contains("unsigned")
    );
    let forged = sign(&key(), &policy(1, true, false));
    assert!(
        h.edge.accept(&forged)[0]
            .as_ref()
            .unwrap_err()
            .contains("bad signature")
    );
    let mut other = policy(1, true, false);
    other.agent_id = "someone-else".into();
    let err = h.edge.accept(&sign(&k, &other))[0].clone().unwrap_err();
    assert!(err.contains("misaddressed"), "{err}");
    assert!(h.edge.states().is_empty());
    h.edge.accept(&sign(&k, &policy(3, true, false)));
    let err = h.edge.accept(&sign(&k, &policy(2, false, false)))[0]
        .clone()
        .unwrap_err();
    assert!(err.contains("older than version 3"), "{err}");
    assert_eq!(
        h.edge.accept(&sign(&k, &policy(3, true, false))),
        [Ok(Accepted::Unchanged)]
    );
    assert_eq!(h.edge.states()[0].version, 3);
}

#[test]
fn a_withdrawn_policy_stops_acting_and_its_version_survives_a_restart() {
    let k = key();
    let h = host(&k, 10);
    h.edge.accept(&sign(&k, &policy(1, true, false)));
    h.edge.accept(&sign(&k, &policy(2, false, false)));
    assert!(h.edge.evaluate(&exec(40, "/dev/shm/x")).is_empty());
    assert!(h.edge.states().is_empty());
    let again = open(&k, h._dir.path(), h.procs.clone(), 10);
    let err = again.accept(&sign(&k, &policy(1, true, false)))[0]
        .clone()
        .unwrap_err();
    assert!(err.contains("older"), "{err}");
    assert!(again.evaluate(&exec(40, "/dev/shm/x")).is_empty());
    assert!(killed(&h).is_empty());
}

#[test]
fn an_active_policy_survives_a_restart_but_not_an_edit_on_disk() {
    let k = key();
    let h = host(&k, 10);
    h.edge.accept(&sign(&k, &policy(1, true, false)));
    let again = open(&k, h._dir.path(), h.procs.clone(), 10);
    assert_eq!(again.evaluate(&exec(40, "/dev/shm/x"))[0].outcome, "done");
    let file = std::fs::read_dir(h._dir.path().join("edge"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut signed = SignedEdgePolicy::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
    let mut p = EdgePolicy::decode(signed.policy.as_slice()).unwrap();
    p.dry_run = true;
    signed.policy = p.encode_to_vec();
    std::fs::write(&file, signed.encode_to_vec()).unwrap();
    let edited = open(&k, h._dir.path(), h.procs.clone(), 10);
    assert!(edited.states().is_empty());
}

#[test]
fn a_dry_run_records_what_it_would_do() {
    let k = key();
    let h = host(&k, 10);
    h.edge.accept(&sign(&k, &policy(1, true, true)));
    let acts = h.edge.evaluate(&exec(40, "/dev/shm/x"));
    assert_eq!(acts[0].outcome, "dry_run");
    assert_eq!(acts[0].detail, "would kill pid 40");
    assert!(killed(&h).is_empty());
}

#[test]
fn past_the_rate_limit_the_agent_only_reports() {
    let k = key();
    let h = host(&k, 2);
    h.edge.accept(&sign(&k, &policy(1, true, false)));
    let outcomes: Vec<String> = [40, 41, 1000]
        .iter()
        .map(|pid| {
            h.edge.evaluate(&exec(*pid, "/dev/shm/x"))[0]
                .outcome
                .clone()
        })
        .collect();
    assert_eq!(outcomes, ["done", "done", "rate_limited"]);
    assert_eq!(killed(&h), [40, 41]);
}

#[test]
fn the_block_list_goes_to_its_sink_now_and_on_change() {
    let k = key();
    let h = host(&k, 10);
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    h.edge
        .set_blocklist_sink(Box::new(move |l| sink.lock().unwrap().push(l.len())));
    let list = EdgePolicy {
        id: BLOCKLIST.into(),
        agent_id: "me".into(),
        version: 1,
        active: true,
        block_sha256: vec![vec![7; 32], vec![8; 32]],
        ..Default::default()
    };
    h.edge.accept(&sign(&k, &list));
    let withdrawn = EdgePolicy {
        version: 2,
        active: false,
        block_sha256: Vec::new(),
        ..list
    };
    h.edge.accept(&sign(&k, &withdrawn));
    assert_eq!(*got.lock().unwrap(), [2, 0]);
}
