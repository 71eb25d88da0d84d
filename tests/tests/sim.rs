//! The agent simulator against the real controller binary: a few hundred simulated agents
//! come online as the controller sees them, commands issued through cordonctl reach one and
//! its results are stored, and telemetry shipped across a controller kill -9 is stored
//! exactly once.

use cordon_tests::deploy::Deployment;
use cordon_tests::sim::{Fleet, SimOptions, fleet_identities};
use cordonctl::client::AdminConfig;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const AGENTS: usize = 300;
const EVENTS_PER_AGENT: u64 = 30;

/// How many agents the controller lists as online.
fn online(d: &Deployment) -> usize {
    let list = d.ctl_list(&["agents", "list"]);
    let agents = list.as_array().expect("a list");
    agents.iter().filter(|a| a["online"] == true).count()
}

fn wait_all_online(d: &Deployment, within: Duration) {
    let reached = cordon_tests::poll(within, || (online(d) == AGENTS).then_some(()));
    assert!(
        reached.is_some(),
        "{} of {AGENTS} simulated agents online after {within:?}",
        online(d)
    );
}

/// The stored events of every agent, by agent: their sequence numbers, as many times as
/// each is stored.
fn stored_seqs(d: &Deployment) -> HashMap<String, Vec<u64>> {
    const LIMIT: usize = 10_000; // the most one query returns
    let out = d.ctl(&["events", "query", "--limit", &LIMIT.to_string(), "--json"]);
    assert!(
        out.lines().count() < LIMIT,
        "the query may have cut events off"
    );
    let mut by_agent: HashMap<String, Vec<u64>> = HashMap::new();
    for e in out.lines().map(cordon_tests::deploy::event_line) {
        by_agent.entry(e.agent_id).or_default().push(e.seq);
    }
    by_agent
}

#[test]
fn simulated_fleet_comes_online_answers_commands_and_ships_exactly_once() {
    cordon_tests::sim::raise_nofile();
    let mut d = Deployment::loopback("");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml")).unwrap();
    let cache = d.dir.path().join("sim-cache");
    let (ids, enrolled) = rt
        .block_on(fleet_identities(&admin, &cache, AGENTS, 8))
        .unwrap();
    assert_eq!(enrolled.fresh, AGENTS);
    let opts = SimOptions {
        duration: Duration::from_secs(180),
        heartbeat: Duration::from_secs(2),
        events_per_sec: 2.0,
        events_per_agent: EVENTS_PER_AGENT,
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(2),
        per_source: 100,
        ledger_in_memory: false,
    };
    let fleet = {
        let _in_runtime = rt.enter();
        Fleet::start(&ids, opts).unwrap()
    };
    wait_all_online(&d, Duration::from_secs(60));

    // Commands through cordonctl reach one simulated agent; its results are stored.
    let target = ids[7].agent_id.as_str();
    assert_eq!(d.ctl_json(&["ping", target])["agent_id"], target);
    let isolated = d.ctl_json(&["isolate", target]);
    assert_eq!(isolated["status"], "succeeded", "{isolated}");
    let stored = d.ctl_json(&["commands", "show", isolated["command_id"].as_str().unwrap()]);
    assert_eq!(stored["status"], "succeeded", "{stored}");
    assert_eq!(stored["result"]["isolation"]["isolated"], true, "{stored}");

    // Kill -9 the controller while the telemetry is still flowing; the agents come back and
    // resend what was not acknowledged.
    let before = fleet.totals();
    d.kill9_controller();
    d.start_controller();
    wait_all_online(&d, Duration::from_secs(60));
    let total = AGENTS as u64 * EVENTS_PER_AGENT;
    let done = cordon_tests::poll(Duration::from_secs(90), || {
        let t = fleet.totals();
        (t.generated == total && t.acked == total).then_some(t)
    });
    let after = done.unwrap_or_else(|| panic!("not everything acknowledged: {:?}", fleet.totals()));
    assert!(
        before.acked < total,
        "the restart came after all telemetry was acknowledged: {before:?}"
    );
    assert!(after.welcomes >= 2 * AGENTS as u64, "{after:?}");

    let stored = stored_seqs(&d);
    for (agent_id, _) in &fleet.agents {
        let seqs = stored.get(agent_id).cloned().unwrap_or_default();
        let distinct: HashSet<u64> = seqs.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            seqs.len(),
            "{agent_id}: an event stored twice"
        );
        assert_eq!(
            seqs.len() as u64,
            EVENTS_PER_AGENT,
            "{agent_id}: events lost"
        );
    }
    drop(fleet);
}
