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
        exited: false,
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
