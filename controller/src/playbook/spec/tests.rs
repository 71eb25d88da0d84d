//! Playbook files parsed and refused: every step kind, and mistakes named by file, line and
//! field.

use super::*;

const GOOD: &str = "\
name: reverse-shell
description: kill it, cut the host off, tell people
trigger:
  tags: [attack.t1059.004]
  min_level: high
  host_labels: {env: prod}
  conditions:
    event.Image|endswith: [/bash, /sh]
steps:
  - action: kill_process
    tree: true
  - name: cut-off
    action: isolate_host
    allow: [10.0.0.0/8]
    if:
      steps.kill_process: succeeded
    on_failure: continue
  - action: notify
    webhook: soc
    text: reverse shell on the host
  - action: wait_for_approval
    timeout_secs: 600
    on_timeout: proceed
  - action: set_incident
    status: contained
    severity: critical
";

#[test]
fn a_full_playbook_parses() {
    let pb = parse(GOOD, "rs.yml").unwrap();
    assert_eq!(pb.name, "reverse-shell");
    assert!(pb.enabled && !pb.dry_run);
    assert_eq!(pb.trigger.min_level.as_deref(), Some("high"));
    assert_eq!(pb.trigger.host_labels["env"], "prod");
    assert_eq!(pb.trigger.conditions[0].op, Op::EndsWith);
    assert_eq!(pb.steps.len(), 5);
    assert_eq!(pb.steps[0].action, Action::KillProcess { tree: true });
    assert_eq!(pb.steps[1].name, "cut-off");
    assert_eq!(pb.steps[1].on_failure, OnFailure::Continue);
    assert_eq!(pb.steps[1].when[0].path, "steps.kill_process");
    assert_eq!(pb.steps[3].timeout_secs, 600);
    assert_eq!(
        pb.steps[3].action,
        Action::WaitForApproval {
            proceed_on_timeout: true
        }
    );
}

#[test]
fn mistakes_name_the_file_line_and_field() {
    let cases = [
        (
            GOOD.replace("    tree: true", "    tree: maybe"),
            "line 11",
            "steps[0].tree",
            "true or false",
        ),
        (
            GOOD.replace("action: notify", "action: email"),
            "line 18",
            "steps[2].action",
            "unknown action",
        ),
        (
            GOOD.replace("  min_level: high", "  min_level: severe"),
            "line 5",
            "trigger.min_level",
            "not one of",
        ),
        (
            GOOD.replace("    allow: [10.0.0.0/8]", "    tree: true"),
            "line 14",
            "steps[1].tree",
            "takes no",
        ),
        (
            GOOD.replace("steps.kill_process", "steps.later"),
            "line 12",
            "steps[1].if",
            "does not come before",
        ),
        (
            GOOD.replace("description:", "descripton:"),
            "line 2",
            "descripton",
            "unknown field",
        ),
        (
            GOOD.replace("    timeout_secs: 600", "    timeout_secs: -5"),
            "line 22",
            "steps[3].timeout_secs",
            "whole number",
        ),
        (
            "name: x\ntrigger: {tags: [a]}\nsteps: []\n".to_string(),
            "line 1",
            "steps",
            "at least one",
        ),
        ("name: [x\n".to_string(), "line", "(yaml)", ""),
    ];
    for (text, line, field, why) in cases {
        let e = parse(&text, "pb.yml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("pb.yml: "), "{msg}");
        assert!(msg.contains(line), "{msg} (wanted {line})");
        assert_eq!(e.field, field, "{msg}");
        assert!(msg.contains(why), "{msg}");
    }
}

#[test]
fn a_collect_step_names_a_collector_and_its_arguments() {
    let text = "name: gather\ntrigger:\n  rules: [r1]\nsteps:\n  - action: collect\n    collector: files\n    args: [root=/tmp, hash=true]\n";
    let pb = parse(text, "g.yml").unwrap();
    assert_eq!(
        pb.steps[0].action,
        Action::Collect {
            collector: "files".into(),
            args: vec!["root=/tmp".into(), "hash=true".into()],
        }
    );
    for (bad, field, why) in [
        ("collector: everything", "steps[0].collector", "not one of"),
        ("args: [noequals]", "steps[0].args", "not KEY=VALUE"),
        ("tree: true", "steps[0].tree", "collect takes no"),
    ] {
        let text = text.replace("collector: files", bad);
        let text = if bad.starts_with("args") {
            text.replace("    args: [root=/tmp, hash=true]\n", "")
                .replace(bad, &format!("collector: files\n    {bad}"))
        } else {
            text
        };
        let err = parse(&text, "g.yml").unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(why), "{bad}: {err}");
    }
    let missing = text.replace("    collector: files\n", "");
    let err = parse(&missing, "g.yml").unwrap_err().to_string();
    assert!(
        err.contains("steps[0].collector") && err.contains("required"),
        "{err}"
    );
}

fn one_step(step: &str) -> Result<Playbook, SpecError> {
    parse(
        &format!("name: e\ntrigger:\n  rules: [r1]\nsteps:\n  - {step}\n"),
        "e.yml",
    )
}

#[test]
fn kill_quarantine_and_block_may_run_at_the_edge() {
    for step in [
        "action: kill_process\n    at: edge",
        "action: quarantine_file\n    target: exe\n    at: edge",
        "action: block_ip\n    cidr: destination\n    at: edge\n    if:\n      event.DestinationPort: '4444'",
    ] {
        let pb = one_step(step).unwrap_or_else(|e| panic!("{step}: {e}"));
        assert!(pb.steps[0].at_edge, "{step}");
    }
    let pb = one_step("action: kill_process\n    at: controller").unwrap();
    assert!(!pb.steps[0].at_edge);
    assert!(!one_step("action: kill_process").unwrap().steps[0].at_edge);
}

#[test]
fn what_the_host_cannot_do_or_know_is_refused_at_the_edge() {
    for (step, why) in [
        (
            "action: isolate_host\n    at: edge",
            "isolate_host cannot run at the edge",
        ),
        (
            "action: kill_process\n    at: host",
            "is not one of edge, controller",
        ),
        (
            "action: block_ip\n    cidr: ioc\n    at: edge",
            "does not match indicators",
        ),
        (
            "action: kill_process\n    at: edge\n    if:\n      alert.level: high",
            "not alert.level",
        ),
    ] {
        let err = one_step(step).unwrap_err();
        assert!(err.message.contains(why), "{step}: {err}");
        assert_eq!(err.field, "steps[0].at", "{step}: {err}");
    }
}
