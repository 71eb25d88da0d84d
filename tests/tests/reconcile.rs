//! The controller keeps a host's isolation as ordered: when the host reports the other state
//! and no isolate or release command of it is open, the controller orders the desired state
//! again (`isolation_reconcile_secs`), and audits it. Here the orders expire while the agent is
//! down (`command_ttl_secs = 3`), as orders to a host that is away for longer than their time
//! bound do: an isolation that never arrived is carried out once the host is back, and a
//! release that never arrived undoes the isolation the agent put back at its start. Real
//! namespaces, real nftables, real traffic; nothing outside the test's namespaces is touched.

#![allow(clippy::unwrap_used)]

use cordon_tests::deploy::{AgentHandle, Deployment, PEER_V4};
use cordon_tests::netns::{EchoServer, reachable};
use cordon_tests::{require_root, within};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

fn peer() -> SocketAddr {
    SocketAddr::new(PEER_V4.parse().unwrap(), 8080)
}

/// The commands of `agent`, newest first.
fn commands(d: &Deployment, agent: &AgentHandle) -> Vec<Value> {
    let list = d.ctl_list(&["commands", "list", "--agent", &agent.id]);
    list.as_array().cloned().unwrap_or_default()
}

/// Stops the agent, orders `verb` (not waiting), and waits until the order has expired
/// undelivered; the desired isolation is then `desired` all the same.
fn order_while_away(d: &Deployment, agent: &mut AgentHandle, verb: &str, desired: bool) {
    agent.proc.as_mut().unwrap().kill9();
    agent.proc = None;
    d.wait_online(agent, false, Duration::from_secs(30));
    let queued = d.try_ctl(&[verb, &agent.id, "--wait", "0"]);
    let said = String::from_utf8_lossy(&queued.stderr);
    assert!(said.contains("stays queued"), "{said}");
    let expired = |c: &Value| c["kind"] == verb && c["status"] == "expired";
    assert!(
        within(Duration::from_secs(30), || commands(d, agent)
            .iter()
            .any(expired)),
        "the {verb} order did not expire"
    );
    assert_eq!(d.agent_record(&agent.id)["isolation_desired"], desired);
}

/// The controller's own order of `verb` for `agent`, once it has succeeded, with its audit
/// entry.
fn reconciled(d: &Deployment, agent: &AgentHandle, verb: &str) {
    let mine = |c: &Value| c["kind"] == verb && c["created_by"] == "controller";
    assert!(
        within(Duration::from_secs(60), || commands(d, agent)
            .iter()
            .any(|c| mine(c) && c["status"] == "succeeded")),
        "no {verb} ordered by the controller succeeded"
    );
    let entries = d.audited(&format!("command.{verb}"));
    let entry = entries
        .iter()
        .find(|e| e["actor"] == "controller")
        .unwrap_or_else(|| panic!("no audit entry for the controller's {verb}: {entries:?}"));
    assert!(
        entry["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("reconcile:")),
        "{entry}"
    );
}

#[test]
fn a_host_back_from_an_outage_is_brought_to_its_desired_isolation() {
    if !require_root("a_host_back_from_an_outage_is_brought_to_its_desired_isolation") {
        return;
    }
    let d =
        Deployment::namespaces_with_peer("command_ttl_secs = 3\nisolation_reconcile_secs = 5\n");
    let host = d.agent_ns.as_ref().unwrap().name.clone();
    let peer_ns = d.peer_ns.as_ref().unwrap().name.clone();
    let _echo = EchoServer::start(&peer_ns, &format!("{PEER_V4}:8080"));
    let mut agent = d.enroll_agent("host", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    assert!(reachable(&host, peer()));

    // An isolation ordered while the host was away expired: isolated once it is back.
    order_while_away(&d, &mut agent, "isolate", true);
    assert!(reachable(&host, peer()), "isolated before the agent ran");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    assert!(
        within(Duration::from_secs(60), || !reachable(&host, peer())),
        "the host was not isolated as desired"
    );
    reconciled(&d, &agent, "isolate");

    // A release ordered while the host was away expired: the agent puts its isolation back
    // at start, and the controller releases it.
    order_while_away(&d, &mut agent, "release", false);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    assert!(
        within(Duration::from_secs(60), || reachable(&host, peer())),
        "the host stayed isolated though released"
    );
    reconciled(&d, &agent, "release");
    let a = d.agent_record(&agent.id);
    assert_eq!(a["isolation_desired"], false, "{a}");
}
