//! Agents with several controller URLs, with the real binaries: a dead controller listed
//! first is passed over at enrolment and at connection; a controller killed (SIGKILL) during a
//! telemetry burst is followed to its other address with nothing lost or stored twice; an
//! isolated host keeps every replica reachable and fails over to one; a name with several
//! addresses is tried address by address. (Two replicas on one PostgreSQL store come
//! with the PostgreSQL wiring; here the "replica" is the same controller started again on
//! another address with the same data directory.)

#![allow(clippy::unwrap_used)]

use cordon_tests::binaries::{Proc, bin};
use cordon_tests::burst::{
    Burst, Files, assert_all_stored_once, controllers, logs, online_watching, watched,
};
use cordon_tests::deploy::{CTL_ADDR, CTL_NAME, Deployment, PEER_V4, PEER_V6, free_loopback_port};
use cordon_tests::netns::{EchoServer, NsHosts, reachable};
use cordon_tests::{poll, require_root};
use std::net::SocketAddr;
use std::time::Duration;

#[test]
fn a_dead_controller_listed_first_is_passed_over_at_enrolment_and_at_connection() {
    let d = Deployment::loopback("");
    let dead = format!("https://127.0.0.1:{}", free_loopback_port());
    let token = d.ctl_json(&["token", "create", "--ttl", "10m"]);
    let mut agent = d.enroll_agent_through(&token, "a1", &[], &[&dead, &d.url]);
    // Enrolled through the live controller; the dead one is kept to fail over to.
    let identity: toml::Table = std::fs::read_to_string(agent.state_dir.join("agent.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(identity["controller"].as_str(), Some(d.url.as_str()));
    assert_eq!(
        identity["replica_urls"],
        toml::Value::Array(vec![dead.clone().into()])
    );

    let watch = watched(&d, &agent);
    agent.configure(&controllers(&[&dead, &d.url]));
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let files = Files::new(&watch, "f", 0);
    files.make_all(0..50);
    assert_all_stored_once(&d, &agent, &files, 50);
    let log = agent.log_text();
    let tried_dead = log
        .lines()
        .any(|l| l.contains("no connection to the controller") && l.contains(&dead));
    assert!(
        tried_dead,
        "the dead controller was not tried first:\n{log}"
    );
}

#[test]
fn a_controller_killed_mid_burst_is_followed_to_its_other_address_losing_and_doubling_nothing() {
    let mut d = Deployment::loopback("");
    let second = format!("127.0.0.1:{}", free_loopback_port());
    let second_url = format!("https://{second}");
    let (agent, watch) = online_watching(&d, &[&d.url, &second_url]);

    const N: usize = 4000;
    let Burst {
        files,
        maker,
        flowing,
    } = Burst::start(&d, &agent, &watch, N);
    d.kill9_controller();
    assert!(flowing, "events never flowed\n{}", logs(&d, &agent));
    // The burst goes on into the spool while no controller answers.
    let held = poll(Duration::from_secs(10), || {
        let snap = agent.spool_snapshot();
        (!snap.unacked.is_empty()).then_some(snap)
    })
    .expect("nothing was left unacknowledged at the kill");
    let killed = std::time::Instant::now();
    d.move_controller(&second);
    let serving = killed.elapsed();
    let online = d.wait_online(&agent, true, Duration::from_secs(30));
    eprintln!(
        "controller killed and serving again after {serving:?}; agent online there {online:?} later"
    );
    assert_eq!(maker.join().unwrap(), N);

    assert_all_stored_once(&d, &agent, &files, N);
    let log = agent.log_text();
    let moved = log
        .lines()
        .any(|l| l.contains("connected to the controller") && l.contains(&second_url));
    assert!(moved, "the agent did not connect to {second_url}:\n{log}");
    eprintln!(
        "{} events were unacknowledged at the kill (after seq {})",
        held.unacked.len(),
        held.acked
    );
}

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

#[test]
fn netns_an_isolated_host_keeps_every_replica_reachable_and_fails_over_to_one() {
    if !require_root("netns_an_isolated_host_keeps_every_replica_reachable_and_fails_over_to_one") {
        return;
    }
    let mut d = Deployment::namespaces_with_peer("");
    // The replica's address is on the peer's side of the agent (the controller's certificate
    // names it too).
    let replica_listen = format!("[{PEER_V6}]:7443");
    let replica = format!("https://{replica_listen}");
    let mut agent = d.enroll_agent("host", &[]);
    agent.configure(&controllers(&[&d.url, &replica]));
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let host = d.agent_ns.as_ref().unwrap().name.clone();
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let _other = EchoServer::start(&peer, &format!("{PEER_V4}:8080"));
    assert!(reachable(&host, sa(PEER_V4, 8080)));

    let res = d.ctl_json(&["isolate", &agent.id, "--reason", "test"]);
    assert_eq!(res["status"], "succeeded", "{res}");
    let addrs: Vec<&str> = res["result"]["isolation"]["controller_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(addrs, [CTL_ADDR, PEER_V6], "{res}");
    assert!(!reachable(&host, sa(PEER_V4, 8080)), "not isolated");

    // The controller is lost; the same one (same data directory) comes back as the replica
    // on the peer's side, which only the isolation's replica entry lets the agent reach.
    d.kill9_controller();
    std::mem::swap(&mut d.ctl_ns, &mut d.peer_ns);
    d.move_controller(&replica_listen);
    d.wait_online(&agent, true, Duration::from_secs(30));
    let log = agent.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("connected to the controller") && l.contains(&replica)),
        "the agent did not connect to {replica}:\n{log}"
    );
    d.ctl_json(&["ping", &agent.id]);
    assert!(!reachable(&host, sa(PEER_V4, 8080)), "no longer isolated");

    let rel = d.ctl_json(&["release", &agent.id]);
    assert_eq!(rel["status"], "succeeded", "{rel}");
    assert!(reachable(&host, sa(PEER_V4, 8080)));
}

/// The addresses `name` resolves to in namespace `ns` (as `getent ahostsv4` there gives them:
/// the resolver's order, which the agent follows).
fn resolved_in(ns: &cordon_tests::netns::Netns, name: &str) -> Vec<String> {
    let out = ns
        .command("getent")
        .args(["ahostsv4", name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut addrs: Vec<String> = Vec::new();
    for addr in text.split_whitespace() {
        if addr.parse::<std::net::Ipv4Addr>().is_ok() && !addrs.iter().any(|a| a == addr) {
            addrs.push(addr.to_string());
        }
    }
    addrs
}

#[test]
fn netns_a_name_with_several_addresses_is_tried_address_by_address() {
    if !require_root("netns_a_name_with_several_addresses_is_tried_address_by_address") {
        return;
    }
    let d = Deployment::namespaces("");
    let ctl_ns = d.ctl_ns.as_ref().unwrap();
    let agent_ns = d.agent_ns.as_ref().unwrap();
    // A second address of the controller's namespace where nothing listens: refused.
    const DEAD: &str = "10.231.0.3";
    let added = std::process::Command::new("ip")
        .args([
            "-n",
            &ctl_ns.name,
            "addr",
            "add",
            &format!("{DEAD}/32"),
            "dev",
            "lo",
        ])
        .status()
        .unwrap();
    assert!(added.success());
    // The name has both addresses, the dead one listed first.
    let _hosts = NsHosts::write(
        agent_ns,
        &format!("{DEAD} {CTL_NAME}\n{CTL_ADDR} {CTL_NAME}\n"),
    );
    let order = resolved_in(agent_ns, CTL_NAME);
    assert_eq!(order.len(), 2, "{CTL_NAME} resolves to {order:?}");

    let mut agent = d.enroll_agent("a1", &[]);
    let watch = watched(&d, &agent);
    let url = format!("https://{CTL_NAME}:7443");
    agent.configure(&controllers(&[&url]));
    // Started by `ip netns exec`, which puts the namespace's hosts file in place.
    let mut cmd = agent_ns.command(bin("cordon-agent"));
    cmd.arg("run")
        .arg("--state-dir")
        .arg(&agent.state_dir)
        .arg("--config")
        .arg(&agent.config);
    agent.proc = Some(Proc::spawn("cordon-agent", cmd, agent.log.clone()));
    d.wait_online(&agent, true, Duration::from_secs(20));
    let files = Files::new(&watch, "f", 0);
    files.make_all(0..20);
    assert_all_stored_once(&d, &agent, &files, 20);

    let log = agent.log_text();
    let connected = format!("({CTL_ADDR}:7443)");
    assert!(
        log.lines()
            .any(|l| l.contains("connected to the controller") && l.contains(&connected)),
        "not connected through {CTL_NAME} at {CTL_ADDR}:\n{log}"
    );
    let refused = format!("({DEAD}:7443)");
    let tried_dead = log
        .lines()
        .any(|l| l.contains("no connection to the controller") && l.contains(&refused));
    // The agent follows the resolver's order: the dead address first if it comes first.
    assert_eq!(
        tried_dead,
        order[0] == DEAD,
        "resolver order {order:?}; agent log:\n{log}"
    );
}
