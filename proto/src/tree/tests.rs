//! The text form of a process tree: the chain of ancestors, the marked process, its
//! descendants drawn as branches, and each process's start, commands and end.

use super::*;
use crate::ProcessExec;

fn node(pid: u32, command: &str, children: Vec<ProcessNode>) -> ProcessNode {
    ProcessNode {
        pid,
        command: command.into(),
        started_ms: 1_700_000_000_000,
        execs: vec![ProcessExec {
            command: command.into(),
            ..Default::default()
        }],
        children,
        ..Default::default()
    }
}

fn sample() -> ProcessTree {
    let mut curl = node(
        300,
        "curl http://x",
        vec![
            node(400, "id", vec![node(500, "whoami", Vec::new())]),
            node(402, "uname -a", Vec::new()),
        ],
    );
    curl.exited = true;
    curl.lifetime_ms = 1_204;
    let mut init = node(1, "init", Vec::new());
    init.started_ms = 0;
    let mut shell = node(100, "bash -i", Vec::new());
    shell.execs[0].stdio = "stdin=socket 10.0.0.2:4444".into();
    ProcessTree {
        agent_id: "ab12".into(),
        ancestors: vec![init, shell],
        process: Some(curl),
        truncated: false,
        seq: 42,
    }
}

#[test]
fn ancestors_lead_to_the_marked_process_and_its_branches() {
    let t = text(&sample());
    let started = "started 2023-11-14T22:13:20Z";
    let want = [
        "pid 1  start unknown  init".to_string(),
        format!("└─ pid 100  {started}  bash -i  [stdin=socket 10.0.0.2:4444]"),
        format!("   └─ ▶ pid 300  {started}  curl http://x  [exited 0 after 1.204 s]"),
        format!("      ├─ pid 400  {started}  id"),
        format!("      │  └─ pid 500  {started}  whoami"),
        format!("      └─ pid 402  {started}  uname -a"),
    ];
    assert_eq!(t.lines().collect::<Vec<_>>(), want, "{t}");
    assert_eq!(title(&sample()), "event ab12:42");
}

#[test]
fn each_process_says_what_it_ran_and_how_it_ended() {
    let mut p = node(7, "sh -c x\nrm -rf /", Vec::new());
    p.execs.insert(
        0,
        ProcessExec {
            command: "bash".into(),
            ..Default::default()
        },
    );
    p.exited = true;
    p.exit_signal = 9;
    let line = describe(&p);
    assert!(
        line.contains("sh -c x\\nrm -rf /  (earlier: bash)"),
        "{line}"
    );
    assert!(line.ends_with("[killed by signal 9]"), "{line}");
    let parent = ProcessNode {
        pid: 6,
        command: "sshd".into(),
        ..Default::default()
    };
    assert!(describe(&parent).ends_with("sshd  (known only from its child's event)"));
    let mut t = sample();
    t.truncated = true;
    assert!(text(&t).ends_with("too large to show whole)\n"));
}
