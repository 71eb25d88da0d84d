//! The network sensor end to end, with the real binaries, in namespaces made here: TCP and UDP
//! connections from `host` to `peer` over IPv4 and IPv6 stored once each with the process that
//! made them, an inbound connection accepted on `host`, a DNS query answered by a resolver in
//! `peer` stored with its answer and its process, and indicator lists matching connections
//! and queries.
//!
//! Every agent's eBPF programs see the whole machine, other tests' traffic included, so each
//! test picks out its own events by the pid of the process it started.

use cordon_proto::{DnsEvent, NetworkEvent, event, network_event::Kind};
use cordon_tests::deploy::{AgentHandle, Deployment, HOST_V4, PEER_V4, PEER_V6};
use cordon_tests::netns::{EchoServer, NsHosts, in_netns};
use cordon_tests::resolver::Resolver;
use cordon_tests::{poll, require_root};
use std::time::Duration;

/// An agent with its network sensor on (test agents have it off: see `enroll_agent`).
fn online_agent(d: &Deployment) -> AgentHandle {
    let mut agent = d.enroll_agent("net", &[]);
    agent.configure("[network]\nmode = \"ebpf\"\n");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    agent
}

fn connections(d: &Deployment, agent: &AgentHandle, pid: u32) -> Vec<NetworkEvent> {
    d.event_bodies(&agent.id, "network", None)
        .into_iter()
        .filter_map(|b| match b {
            event::Body::Network(n) if n.process.as_ref().is_some_and(|p| p.pid == pid) => Some(n),
            _ => None,
        })
        .collect()
}

/// Runs a bash script in the agent's namespace and returns bash's pid.
fn bash_in_host(d: &Deployment, script: &str) -> u32 {
    let ns = d.agent_ns.as_ref().expect("agent namespace");
    let mut child = ns
        .command("bash")
        .args(["-c", script])
        .spawn()
        .expect("bash");
    let pid = child.id();
    let status = child.wait().expect("bash ends");
    assert!(status.success(), "{script}: {status}");
    pid
}

/// Waits until a marker connection (made after everything else) is stored: the agent's events
/// are stored in order, so everything before it is stored too.
fn barrier(d: &Deployment, agent: &AgentHandle, peer: &EchoServer) {
    let pid = bash_in_host(
        d,
        &format!("exec 3<>/dev/tcp/{}/{}", peer.addr.ip(), peer.addr.port()),
    );
    poll(Duration::from_secs(20), || {
        (!connections(d, agent, pid).is_empty()).then_some(())
    })
    .expect("the marker connection is stored");
}

#[test]
fn tcp_and_udp_connections_are_stored_once_with_their_process() {
    if !require_root("tcp_and_udp_connections_are_stored_once_with_their_process") {
        return;
    }
    let d = Deployment::namespaces_with_peer("");
    let agent = online_agent(&d);
    let shown = poll(Duration::from_secs(10), || {
        let text = d.ctl(&["agents", "show", &agent.id]);
        text.contains("network: ebpf").then_some(text)
    });
    let shown = shown.expect("agents show names the network sensor's mode");
    assert!(shown.contains("network: ebpf (tcp, udp and dns"), "{shown}");
    let peer = &d.peer_ns.as_ref().unwrap().name;
    let v4 = EchoServer::start(peer, &format!("{PEER_V4}:7101"));
    let v6 = EchoServer::start(peer, &format!("[{PEER_V6}]:7102"));
    let mut cases = Vec::new();
    for (proto, ip, port) in [
        ("tcp", PEER_V4, 7101),
        ("tcp", PEER_V6, 7102),
        ("udp", PEER_V4, 7103),
        ("udp", PEER_V6, 7104),
    ] {
        let script = if proto == "tcp" {
            format!("exec 3<>/dev/tcp/{ip}/{port}; echo hi >&3; read -t 5 line <&3")
        } else {
            format!("echo hi > /dev/udp/{ip}/{port}")
        };
        cases.push((proto, ip, port, bash_in_host(&d, &script)));
    }
    barrier(&d, &agent, &v4);
    for (proto, ip, port, pid) in cases {
        let mine = connections(&d, &agent, pid);
        let connects: Vec<_> = mine
            .iter()
            .filter(|n| n.kind() == Kind::Connect && n.destination_port == port)
            .collect();
        assert_eq!(
            connects.len(),
            1,
            "{proto} to {ip}:{port} stored once: {mine:#?}"
        );
        let c = connects[0];
        assert_eq!(
            (c.protocol.as_str(), c.destination_ip.as_str()),
            (proto, ip)
        );
        assert!(c.initiated && !c.failed, "{c:?}");
        let p = c.process.as_ref().unwrap();
        assert!(p.exe.ends_with("/bash"), "{p:?}");
        assert_eq!(p.argv.first().map(String::as_str), Some("bash"), "{p:?}");
        assert_eq!(p.user, "root");
        // The close, with "hi\n" each way over TCP, and the one datagram over UDP (its
        // socket released when bash ended).
        let close = poll(Duration::from_secs(10), || {
            connections(&d, &agent, pid)
                .into_iter()
                .find(|n| n.kind() == Kind::Close && n.destination_port == port)
        })
        .unwrap_or_else(|| panic!("no close for {proto} {ip}:{port}"));
        assert_eq!(close.protocol, proto);
        let received = if proto == "tcp" { 3 } else { 0 };
        assert_eq!(
            (close.bytes_sent, close.bytes_received),
            (3, received),
            "{close:?}"
        );
        if proto == "tcp" {
            assert_ne!(c.source_port, 0, "{c:?}");
            assert_eq!(close.source_port, c.source_port, "{close:?}");
        }
    }
    drop(v6);
}

#[test]
fn an_inbound_connection_is_accepted_by_the_listening_process() {
    if !require_root("an_inbound_connection_is_accepted_by_the_listening_process") {
        return;
    }
    let d = Deployment::namespaces_with_peer("");
    let agent = online_agent(&d);
    let host = d.agent_ns.as_ref().unwrap().name.clone();
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let addr: std::net::SocketAddr = format!("{HOST_V4}:7201").parse().unwrap();
    let listener = in_netns(&host, move || std::net::TcpListener::bind(addr)).unwrap();
    let client = in_netns(&peer, move || std::net::TcpStream::connect(addr)).unwrap();
    let (accepted, from) = listener.accept().unwrap();
    drop((client, accepted));
    let me = std::process::id();
    let found = poll(Duration::from_secs(20), || {
        let mine = connections(&d, &agent, me);
        let listen = mine
            .iter()
            .find(|n| n.kind() == Kind::Listen && n.source_port == 7201)?
            .clone();
        let accept = mine
            .iter()
            .find(|n| {
                n.kind() == Kind::Accept
                    && n.source_port == 7201
                    && n.destination_port == u32::from(from.port())
            })?
            .clone();
        Some((listen, accept))
    });
    let (listen, accept) = found.unwrap_or_else(|| {
        let all = d.event_bodies(&agent.id, "network", None);
        panic!("listen and accept stored with this process ({me}): {all:#?}")
    });
    assert_eq!(listen.source_ip, HOST_V4);
    assert_eq!(accept.destination_ip, PEER_V4);
    assert!(!accept.initiated);
    let exe = std::env::current_exe().unwrap();
    assert_eq!(accept.process.unwrap().exe, exe.to_string_lossy());
}

#[test]
fn dns_queries_are_stored_with_their_answer_and_indicators_raise_alerts() {
    if !require_root("dns_queries_are_stored_with_their_answer_and_indicators_raise_alerts") {
        return;
    }
    let d = Deployment::namespaces_with_peer("");
    let agent = online_agent(&d);
    let dir = tempfile::tempdir().unwrap();
    let domains = dir.path().join("c2-domains.txt");
    std::fs::write(&domains, "evil.example\n").unwrap();
    d.ctl(&[
        "iocs",
        "import",
        domains.to_str().unwrap(),
        "--kind",
        "domain",
    ]);
    let ips = dir.path().join("c2-ips.txt");
    std::fs::write(&ips, format!("{PEER_V4}\n")).unwrap();
    d.ctl(&["iocs", "import", ips.to_str().unwrap(), "--kind", "ip"]);

    let peer = d.peer_ns.as_ref().unwrap();
    let resolver = Resolver::start(
        &peer.name,
        &format!("{PEER_V4}:53"),
        &[("c2.evil.example", "203.0.113.7".parse().unwrap())],
    );
    let host = d.agent_ns.as_ref().unwrap();
    let _etc = NsHosts::files(
        host,
        &[
            ("hosts", "127.0.0.1 localhost\n"),
            (
                "resolv.conf",
                &format!("nameserver {}\n", resolver.addr.ip()),
            ),
        ],
    );
    let mut getent = host.command("getent");
    getent.args(["ahostsv4", "c2.evil.example"]);
    let out = cordon_tests::binaries::run(getent, Duration::from_secs(10));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("203.0.113.7"),
        "the resolver answers: {out:?}"
    );
    let query: DnsEvent = poll(Duration::from_secs(20), || {
        d.event_bodies(&agent.id, "dns", None)
            .into_iter()
            .find_map(|b| match b {
                event::Body::Dns(q) if q.name == "c2.evil.example" && q.query_type == "A" => {
                    Some(q)
                }
                _ => None,
            })
    })
    .expect("the query is stored");
    assert!(query.answered, "{query:?}");
    assert_eq!(query.answers, vec!["203.0.113.7"]);
    assert_eq!(query.rcode, "NOERROR");
    assert_eq!(query.server, format!("{PEER_V4}:53"));
    let p = query.process.expect("the asking process");
    assert!(p.exe.ends_with("/getent"), "{p:?}");

    // The queried name is on a domain list, the peer's address on an address list.
    wait_alert(&d, &agent, "ioc:domain:c2-domains");
    let echo = EchoServer::start(&peer.name, &format!("{PEER_V4}:7301"));
    bash_in_host(&d, &format!("exec 3<>/dev/tcp/{PEER_V4}/7301"));
    wait_alert(&d, &agent, "ioc:ip:c2-ips");
    drop(echo);
}

fn wait_alert(d: &Deployment, agent: &AgentHandle, rule_id: &str) {
    let alerts = || {
        d.ctl_list(&["alerts", "list", "--agent", &agent.id, "--limit", "1000"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    poll(Duration::from_secs(20), || {
        alerts().into_iter().find(|a| a["rule_id"] == rule_id)
    })
    .unwrap_or_else(|| panic!("no alert {rule_id}: {:#?}", alerts()));
}
