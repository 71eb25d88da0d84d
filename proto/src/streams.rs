//! The standard streams of a process exec (`ProcessEvent.stdin`, `stdout`, `stderr`,
//! `parent_socket`, `pipe_peer`) in words, for every place that prints an event: the kind names
//! the rules match on, and a short summary of what is unusual (a socket, a network peer behind
//! a pipe) for lists and tables.

use crate::names::STDIO_KIND;
use crate::{ProcessEvent, Stdio, stdio::Kind};

/// The name of a stream kind, as rules and JSON use it; None when unset.
pub fn kind_name(kind: i32) -> Option<&'static str> {
    Some(crate::names::name(STDIO_KIND, kind)).filter(|n| *n != "unknown")
}

/// The ProcessEvent fields that hold a `Stdio`.
pub const FIELDS: [&str; 5] = [
    "stdin",
    "stdout",
    "stderr",
    "parent_socket",
    "pipe_peer_socket",
];

/// "socket 10.0.0.2:4444", "socket unix", "pipe".
pub fn describe(s: &Stdio) -> String {
    let kind = kind_name(s.kind).unwrap_or("unknown");
    match (s.peer.is_empty(), s.family.is_empty()) {
        (false, _) => format!("{kind} {}", s.peer),
        (true, false) if s.kind == Kind::Socket as i32 => format!("{kind} {}", s.family),
        _ => kind.to_string(),
    }
}

/// What is not the usual about an exec's streams, or None: each stream that is a socket
/// ("stdin=socket 10.0.0.2:4444"), the parent's internet socket, and a process at the other end
/// of a pipe that holds one ("pipe_peer=nc[4242] 10.0.0.2:4444").
pub fn summary(p: &ProcessEvent) -> Option<String> {
    let mut parts = Vec::new();
    for (name, s) in [
        ("stdin", &p.stdin),
        ("stdout", &p.stdout),
        ("stderr", &p.stderr),
    ] {
        if let Some(s) = s.as_ref().filter(|s| s.kind == Kind::Socket as i32) {
            parts.push(format!("{name}={}", describe(s)));
        }
    }
    if let Some(s) = &p.parent_socket {
        parts.push(format!("parent_stdio={}", describe(s)));
    }
    if let Some(r) = &p.pipe_peer {
        let name = r.exe.rsplit('/').next().unwrap_or_default();
        let peer = p
            .pipe_peer_socket
            .as_ref()
            .map(|s| format!(" {}", s.peer))
            .unwrap_or_default();
        parts.push(format!("pipe_peer={name}[{}]{peer}", r.pid));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessRef;

    #[test]
    fn only_the_unusual_is_summarised() {
        let socket = Stdio {
            kind: Kind::Socket as i32,
            family: "inet".into(),
            peer: "10.0.0.2:4444".into(),
            ..Default::default()
        };
        let tty = Stdio {
            kind: Kind::Tty as i32,
            ..Default::default()
        };
        let mut p = ProcessEvent {
            stdin: Some(socket.clone()),
            stdout: Some(tty.clone()),
            ..Default::default()
        };
        assert_eq!(summary(&p).as_deref(), Some("stdin=socket 10.0.0.2:4444"));
        p.stdin = Some(tty);
        assert_eq!(summary(&p), None);
        p.pipe_peer = Some(ProcessRef {
            pid: 7,
            exe: "/usr/bin/nc.traditional".into(),
            ..Default::default()
        });
        p.pipe_peer_socket = Some(socket);
        assert_eq!(
            summary(&p).as_deref(),
            Some("pipe_peer=nc.traditional[7] 10.0.0.2:4444")
        );
    }
}
