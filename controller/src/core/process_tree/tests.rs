//! The process-tree builder against a real (in-memory) store: ancestors and descendants with
//! their commands, pid reuse on either side, and a parent known only from its child's event.

use super::*;
use crate::store::Store;
use crate::store::conformance::exec;

const A: &str = "agent-1";

/// Stores `(seq, (pid, ppid, ticks), command)` exec events for agent A.
async fn store(procs: &[(u64, (u32, u32, u64), &str)]) -> Store {
    let s = Store::memory().expect("store");
    let events = procs
        .iter()
        .map(|(seq, ids, cmd)| exec(A, *seq, *ids, cmd))
        .collect();
    s.insert_events(events).await.expect("insert");
    s
}

/// (pid, command) of each ancestor, and the tree below as "cmd[child child]".
fn shape(t: &ProcessTree) -> (Vec<(u32, String)>, String) {
    fn node(n: &TreeNode) -> String {
        let kids: Vec<String> = n.children.iter().map(node).collect();
        match kids.is_empty() {
            true => n.process.command().to_string(),
            false => format!("{}[{}]", n.process.command(), kids.join(", ")),
        }
    }
    let up = t
        .ancestors
        .iter()
        .map(|p| (p.pid, p.command().to_string()))
        .collect();
    (up, node(&t.process))
}

async fn tree(s: &Store, pid: u32, ticks: Option<u64>, at: Option<i64>) -> ProcessTree {
    build(s, A, pid, ticks, at)
        .await
        .expect("build")
        .expect("a tree")
}

#[tokio::test]
async fn ancestors_and_descendants_with_their_commands() {
    let s = store(&[
        (1, (1, 0, 1), "init"),
        (2, (100, 1, 1_000), "bash -i"),
        (3, (200, 100, 2_000), "sh -c curl"),
        (4, (300, 200, 3_000), "curl http://x"),
        (5, (400, 300, 4_000), "id"),
        (6, (500, 400, 5_000), "whoami"),
        (7, (301, 200, 3_010), "sleep 1"),
        (8, (402, 300, 4_100), "uname -a"),
    ])
    .await;
    let t = tree(&s, 300, None, None).await;
    let (up, down) = shape(&t);
    assert_eq!(
        up,
        [
            (1, "init".to_string()),
            (100, "bash -i".into()),
            (200, "sh -c curl".into())
        ]
    );
    assert_eq!(
        down, "curl http://x[id[whoami], uname -a]",
        "not the sibling"
    );
    assert!(!t.truncated);
    assert_eq!(t.process.process.execs[0].seq, 4, "the exec event's seq");
    assert!(
        build(&s, A, 999, None, None)
            .await
            .expect("build")
            .is_none()
    );
}

#[tokio::test]
async fn a_reused_pid_is_told_apart_by_start_time() {
    let s = store(&[
        (1, (200, 1, 2_000), "bash"),
        (2, (300, 200, 3_000), "nc -e sh"),
        (3, (400, 300, 4_000), "sh"),
        // Later pid 200 and pid 300 go to other processes.
        (4, (200, 1, 8_000), "cron"),
        (5, (300, 200, 9_000), "backup.sh"),
        (6, (600, 300, 9_100), "tar"),
    ])
    .await;
    let first = tree(&s, 300, Some(3_000), None).await;
    assert_eq!(
        shape(&first),
        (vec![(200, "bash".into())], "nc -e sh[sh]".into())
    );
    let second = tree(&s, 300, Some(9_000), None).await;
    assert_eq!(
        shape(&second),
        (vec![(200, "cron".into())], "backup.sh[tar]".into())
    );
    let latest = tree(&s, 300, None, None).await;
    assert_eq!(shape(&latest).1, "backup.sh[tar]", "no start: the latest");
    let by_time = tree(&s, 300, None, Some(3)).await;
    assert_eq!(
        shape(&by_time).1,
        "nc -e sh[sh]",
        "the latest started by then"
    );
    assert!(
        build(&s, A, 300, Some(1), None)
            .await
            .expect("build")
            .is_none(),
        "no process of that pid started then"
    );
}

#[test]
fn a_parent_missing_from_telemetry_is_the_one_its_child_named() {
    let child = Proc {
        pid: 7,
        ppid: 6,
        start_ticks: 50,
        started_ms: 5,
        execs: Vec::new(),
        exe: "/usr/bin/id".into(),
        exit: None,
        parent: Some(("/bin/sh".into(), "sh -c id".into())),
    };
    let later = Proc {
        pid: 6,
        start_ticks: 90,
        ..child.clone()
    };
    let p = parent_of(&child, vec![later]).expect("named parent");
    assert_eq!((p.pid, p.command(), p.ppid), (6, "sh -c id", 0));
    let none = Proc {
        parent: None,
        ..child.clone()
    };
    assert_eq!(parent_of(&none, Vec::new()), None);
}

/// An exit event of `pid` (started at `ticks`) after 1.5 s, with its status or signal; as
/// the agent sends it, it names no parent.
fn exit(seq: u64, (pid, ticks): (u32, u64), code: i32, signal: u32) -> StoredEvent {
    let p = ProcessEvent {
        kind: process_event::Kind::Exit as i32,
        pid,
        start_ticks: ticks,
        exit_code: code,
        exit_signal: signal,
        lifetime_ms: 1_500,
        ..Default::default()
    };
    let body = Event {
        seq,
        time_ms: seq as i64,
        body: Some(event::Body::Process(p)),
        ..Default::default()
    };
    StoredEvent {
        body: body.encode_to_vec(),
        ..crate::store::conformance::event(A, seq, seq as i64, "process", "exit")
    }
}

#[tokio::test]
async fn each_process_says_how_it_ended_in_the_tree_and_its_record() {
    let s = store(&[
        (1, (100, 1, 1_000), "bash -i"),
        (2, (200, 100, 2_000), "sleep 9"),
        (3, (201, 100, 2_100), "true"),
    ])
    .await;
    let exits = vec![exit(4, (200, 2_000), 0, 9), exit(5, (201, 2_100), 3, 0)];
    s.insert_events(exits).await.expect("insert");
    let t = tree(&s, 100, None, None).await;
    let ends: Vec<_> = t.process.children.iter().map(|c| c.process.exit).collect();
    let killed = ends[0].expect("an exit");
    assert_eq!(
        (killed.signal, killed.lifetime_ms, killed.time_ms),
        (9, 1_500, 4)
    );
    assert_eq!(ends[1].map(|e| (e.code, e.signal)), Some((3, 0)));
    assert!(t.process.process.exit.is_none(), "bash still runs");

    let r = tree_record(t, 1);
    assert_eq!((r.seq, r.agent_id.as_str()), (1, A));
    let p = r.process.expect("the process");
    assert_eq!(
        (p.pid, p.command.as_str(), p.exited),
        (100, "bash -i", false)
    );
    let sleep = &p.children[0];
    assert_eq!(
        (sleep.exited, sleep.exit_signal, sleep.lifetime_ms),
        (true, 9, 1_500)
    );
    assert_eq!(sleep.execs[0].seq, 2, "the exec event's seq");
    assert_eq!(p.children[1].exit_code, 3);
}

#[test]
fn only_a_process_event_has_a_process() {
    let e = crate::store::conformance::exec(A, 1, (7, 1, 70), "sh -c id");
    assert_eq!(
        process_of(&e).map(|p| (p.pid, p.start_ticks)),
        Some((7, 70))
    );
    let file = crate::store::conformance::event(A, 2, 2, "file", "create /tmp/x");
    assert!(process_of(&file).is_none());
}

fn alert(level: &str, event: Option<StoredEvent>) -> crate::core::AlertRow {
    crate::core::AlertRow {
        id: format!("al-{level}"),
        agent_id: A.into(),
        rule: cordon_detect::RuleIdentity {
            rule_id: "r".into(),
            title: "t".into(),
            level: level.into(),
            tags: Vec::new(),
            author: "a".into(),
        },
        source: "rule".into(),
        detail: String::new(),
        event_seq: event.as_ref().map_or(0, |e| e.seq),
        count: 1,
        first_at_ms: 1,
        last_at_ms: 1,
        incident_id: "inc".into(),
        event,
    }
}

#[test]
fn an_incident_is_triggered_by_its_most_severe_process_alert() {
    use crate::store::conformance::{event, exec};
    let seq = |alerts: &[crate::core::AlertRow]| triggering_event(alerts).map(|(e, _)| e.seq);
    let alerts = [
        alert("medium", Some(exec(A, 1, (10, 1, 100), "sh"))),
        alert("critical", Some(event(A, 2, 2, "file", "create /tmp/x"))),
        alert("high", Some(exec(A, 3, (11, 1, 110), "nc -e sh"))),
        alert("high", Some(exec(A, 4, (12, 1, 120), "id"))),
        alert("critical", None),
    ];
    assert_eq!(
        seq(&alerts),
        Some(3),
        "the first of the most severe with a process"
    );
    assert_eq!(seq(&alerts[..1]), Some(1));
    assert_eq!(seq(&alerts[1..2]), None, "a file event has no process");
    assert_eq!(seq(&[]), None);
}
