//! Compiling edge policies: which rules a trigger picks, what each host gets (labels,
//! protected hosts, host conditions), and the block list.

use super::compile::{BLOCKLIST, Template};
use crate::playbook::spec::parse;
use crate::store::{Agent, RuleRow};
use cordon_proto::edge_step;

fn rule(id: &str, level: &str, tags: &[&str], enabled: bool) -> RuleRow {
    RuleRow {
        id: id.into(),
        title: format!("rule {id}"),
        level: level.into(),
        status: "test".into(),
        author: "t".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        logsource: "process_creation".into(),
        origin: "test".into(),
        source: format!("id: {id}\n"),
        enabled,
        imported_at_ms: 1,
    }
}

fn agent(id: &str, labels: &[(&str, &str)]) -> Agent {
    Agent::for_tests(id, labels)
}

const PLAYBOOK: &str = "name: shm\ntrigger:\n  rules: [r1]\n  tags: [attack.t1059]\n  min_level: critical\n  host_labels:\n    env: prod\n  conditions:\n    alert.level: [high, critical]\n    event.Image|startswith: /dev/shm/\nsteps:\n  - name: kill\n    action: kill_process\n    tree: true\n    at: edge\n  - name: block\n    action: block_ip\n    cidr: 192.0.2.1\n    at: edge\n    if:\n      host.labels.zone: dmz\n  - name: tell\n    action: notify\n    webhook: soc\n    text: x\n";

fn rules() -> Vec<RuleRow> {
    vec![
        rule("r1", "high", &[], true),
        rule("r2", "low", &["attack.t1059"], true),
        rule("r3", "critical", &[], true),
        rule("r4", "critical", &[], false),
        rule("r5", "medium", &[], true),
    ]
}

#[test]
fn the_trigger_picks_enabled_rules_that_pass_its_alert_conditions() {
    let pb = parse(PLAYBOOK, "t").unwrap();
    let t = Template::of_playbook(&pb, true, &rules()).unwrap();
    let p = t.for_agent(&agent("a1", &[("env", "prod")]), false);
    assert!(p.active);
    // r1 by id, r3 by level; r2's tag matches but its level fails alert.level; r4 is
    // disabled; r5 is not named.
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r3"]);
    assert_eq!(p.conditions.len(), 1);
    assert_eq!(
        (p.conditions[0].field.as_str(), p.conditions[0].op.as_str()),
        ("Image", "startswith")
    );
    // The notify step stays on the controller; the block step is for dmz hosts only.
    assert_eq!(p.steps.len(), 1);
    assert!(matches!(
        p.steps[0].action,
        Some(edge_step::Action::Kill(ref k)) if k.tree
    ));
    let dmz = t.for_agent(&agent("a2", &[("env", "prod"), ("zone", "dmz")]), false);
    assert_eq!(dmz.steps.len(), 2);
    assert_eq!(dmz.agent_id, "a2");
}

#[test]
fn other_hosts_protected_hosts_and_disabled_playbooks_get_a_withdrawal() {
    let pb = parse(PLAYBOOK, "t").unwrap();
    let t = Template::of_playbook(&pb, true, &rules()).unwrap();
    let staging = t.for_agent(&agent("a1", &[("env", "staging")]), false);
    let protected = t.for_agent(&agent("a1", &[("env", "prod")]), true);
    let off = Template::of_playbook(&pb, false, &rules())
        .unwrap()
        .for_agent(&agent("a1", &[("env", "prod")]), false);
    for p in [staging, protected, off] {
        assert!(
            !p.active && p.rules.is_empty() && p.steps.is_empty(),
            "{p:?}"
        );
        assert_eq!(p.id, "playbook:shm");
    }
}

#[test]
fn a_playbook_without_edge_steps_compiles_to_nothing() {
    let yaml = "name: plain\ntrigger:\n  rules: [r1]\nsteps:\n  - action: kill_process\n";
    assert!(Template::of_playbook(&parse(yaml, "t").unwrap(), true, &rules()).is_none());
}

#[test]
fn the_block_list_goes_to_every_host_protected_or_not() {
    let hash = "ab".repeat(32);
    let t = Template::blocklist(&[hash, "not-a-hash".into()]);
    let p = t.for_agent(&agent("a1", &[]), true);
    assert!(p.active);
    assert_eq!(p.id, BLOCKLIST);
    assert_eq!(p.block_sha256, [vec![0xab; 32]]);
    assert!(
        !Template::blocklist(&[])
            .for_agent(&agent("a1", &[]), false)
            .active
    );
}
