//! Cordon's behaviour rule for reverse shells (rules/linux/cordon_reverse_shell_stdio_socket.yml)
//! on exec events as the agent reports them: each way a shell reaches the network through its
//! standard streams fires it; a shell in a plain pipe, on a terminal, or under sshd does not.

use cordon_detect::{RuleSet, load_dir};
use cordon_proto::{Event, ProcessEvent, ProcessRef, Stdio, event, process_event, stdio::Kind};
use std::path::PathBuf;

const RULE: &str = "d3498aab-9c54-4408-976d-d5f12807248b";

fn rules() -> RuleSet {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules/linux");
    let report = load_dir(&dir);
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let mut set = RuleSet::new();
    for rule in report.loaded {
        set.insert(rule).expect("every rule indexes");
    }
    set
}

fn stream(kind: Kind, family: &str, peer: &str) -> Option<Stdio> {
    Some(Stdio {
        kind: kind as i32,
        family: family.into(),
        peer: peer.into(),
        ..Default::default()
    })
}

fn exec(exe: &str, f: impl FnOnce(&mut ProcessEvent)) -> Event {
    let mut p = ProcessEvent {
        kind: process_event::Kind::Exec as i32,
        pid: 10,
        ppid: 9,
        exe: exe.into(),
        argv: vec!["sh".into(), "-i".into()],
        stdin: stream(Kind::Pipe, "", ""),
        stdout: stream(Kind::Pipe, "", ""),
        stderr: stream(Kind::Pipe, "", ""),
        ..Default::default()
    };
    f(&mut p);
    Event {
        body: Some(event::Body::Process(p)),
        ..Default::default()
    }
}

fn fires(set: &RuleSet, e: &Event) -> Option<String> {
    set.evaluate(e)
        .into_iter()
        .find(|r| r.rule_id == RULE)
        .map(|r| r.level)
}

#[test]
fn a_shell_on_a_socket_or_fed_by_one_is_critical() {
    let set = rules();
    let inet = || stream(Kind::Socket, "inet", "10.0.0.2:4444");
    let cases = [
        // bash -i >& /dev/tcp/..., nc -e, perl and python dup2 shells.
        exec("/usr/bin/bash", |p| p.stdin = inet()),
        exec("/usr/bin/python3.11", |p| p.stdout = inet()),
        // python pty.spawn: the shell is on a pty, its parent on the socket.
        exec("/usr/bin/dash", |p| {
            p.stdin = stream(Kind::Tty, "", "");
            p.parent_socket = inet();
        }),
        // mkfifo and nc; socat EXEC.
        exec("/usr/bin/dash", |p| {
            p.pipe_peer = Some(ProcessRef {
                exe: "/usr/bin/nc.traditional".into(),
                ..Default::default()
            });
            p.pipe_peer_socket = inet();
        }),
    ];
    for e in &cases {
        assert_eq!(fires(&set, e).as_deref(), Some("critical"), "{e:?}");
    }
}

#[test]
fn plain_pipes_terminals_unix_sockets_and_sshd_do_not_fire() {
    let set = rules();
    let cases = [
        exec("/usr/bin/dash", |_| {}),
        exec("/usr/bin/bash", |p| p.stdin = stream(Kind::Tty, "", "")),
        // A service's shell logging to journald.
        exec("/usr/bin/bash", |p| {
            p.stdout = stream(Kind::Socket, "unix", "")
        }),
        // A program that is not a shell, on a socket (an inetd service).
        exec("/usr/bin/cat", |p| {
            p.stdin = stream(Kind::Socket, "inet", "10.0.0.2:4444")
        }),
        // ssh host command: sshd-session feeds the shell through a socket pair.
        exec("/usr/bin/bash", |p| {
            p.pipe_peer = Some(ProcessRef {
                exe: "/usr/lib/openssh/sshd-session".into(),
                ..Default::default()
            });
            p.pipe_peer_socket = stream(Kind::Socket, "inet", "10.0.0.2:50000");
        }),
    ];
    for e in &cases {
        assert_eq!(fires(&set, e), None, "{e:?}");
    }
}
