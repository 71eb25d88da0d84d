//! SigmaHQ's Linux community rules (`../shared/sigma/linux`, as CI has it) on a live agent:
//! for every sample in `cordon_detect::samples` a real command run on the agent's host fires
//! its rule, and a near miss run before it does not. Alone in its test binary, so no other
//! test's commands run on the host meanwhile (every agent sees every exec).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_detect::samples::SAMPLES;
use cordon_proto::event;
use cordon_tests::deploy::Deployment;
use cordon_tests::{poll, require_root};
use cordonctl::json::event_record_from_json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn community_rules() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/sigma/linux");
    match dir.canonicalize() {
        Ok(d) => Some(d),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{} is missing, and CI has it", dir.display())
        }
        Err(_) => {
            cordon_skips::skip(
                "community_rules_fire_on_real_commands_and_not_on_near_misses",
                &format!("no community rules at {}", dir.display()),
            );
            None
        }
    }
}

/// Runs `sh -c command` to the end; returns the shell's pid.
fn run(command: &str) -> u32 {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _ = child.wait();
    pid
}

/// Alerts of a sample's own rule raised by that sample's near miss: its shell or a child of
/// it (`pids`: shell pid and rule), or its file (`files`: path and rule). A near miss may
/// rightly fire another sample's rule, and other processes on the host may fire any rule
/// meanwhile; neither counts.
fn raised_by(
    d: &Deployment,
    agent: &str,
    since: i64,
    pids: &[(u32, &str)],
    files: &[(&str, &str)],
) -> Vec<String> {
    let list = d.ctl_list(&[
        "alerts",
        "list",
        "--agent",
        agent,
        "--limit",
        "10000",
        "--since",
        &since.to_string(),
    ]);
    let mut out = Vec::new();
    for a in list.as_array().unwrap() {
        let rule = a["rule_id"].as_str().unwrap();
        let Some(rec) = event_record_from_json(&a["event"]) else {
            continue;
        };
        let ours = match rec.event.and_then(|e| e.body) {
            Some(event::Body::Process(p)) => pids
                .iter()
                .any(|(pid, r)| *r == rule && (*pid == p.pid || *pid == p.ppid)),
            Some(event::Body::File(f)) => {
                files.iter().any(|(path, r)| *r == rule && *path == f.path)
            }
            _ => false,
        };
        if ours {
            out.push(format!("{} ({})", a["title"], rec.summary));
        }
    }
    out
}

/// The sample rules with an alert raised or counted again at or after `since` (a rule that
/// already fired counts later matches on its first alert).
fn fired(d: &Deployment, agent: &str, since: i64, ids: &BTreeSet<&str>) -> BTreeSet<String> {
    d.ctl_list(&["alerts", "list", "--agent", agent, "--limit", "10000"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["last_at_ms"].as_i64().unwrap_or(0) >= since)
        .map(|a| a["rule_id"].as_str().unwrap().to_string())
        .filter(|id| ids.contains(id.as_str()))
        .collect()
}

#[test]
fn community_rules_fire_on_real_commands_and_not_on_near_misses() {
    if !require_root("community_rules_fire_on_real_commands_and_not_on_near_misses") {
        return;
    }
    let Some(rules) = community_rules() else {
        return;
    };
    let d = Deployment::loopback(&format!(
        "[detection]\nrules_dir = {}\n",
        toml::Value::from(rules.display().to_string())
    ));
    let mut agent = d.enroll_agent("community", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let loaded = d.ctl_list(&["rules", "list"]).as_array().unwrap().len();
    assert!(
        loaded >= 124,
        "at least 95% of the 130 rules load: {loaded}"
    );
    let ids: BTreeSet<&str> = SAMPLES.iter().map(|s| s.rule_id).collect();
    assert!(ids.len() >= 20, "{} samples", ids.len());

    // Near misses first: nothing of theirs may fire its rule.
    let start = cordon_proto::time::now_ms();
    let pids: Vec<(u32, &str)> = SAMPLES
        .iter()
        .map(|s| (run(s.near_miss), s.rule_id))
        .collect();
    let files: Vec<(&str, &str)> = SAMPLES
        .iter()
        .flat_map(|s| s.near_miss_seen.iter().map(move |seen| (seen, s.rule_id)))
        .filter_map(|(seen, rule)| match seen {
            cordon_detect::samples::Seen::File(f) => Some((*f, rule)),
            _ => None,
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    let wrongly = raised_by(&d, &agent.id, start, &pids, &files);
    assert!(
        wrongly.is_empty(),
        "near misses fired:\n{}",
        wrongly.join("\n")
    );

    // Then the real commands: every rule fires.
    let start = cordon_proto::time::now_ms();
    for s in SAMPLES {
        run(s.command);
    }
    let all = poll(Duration::from_secs(60), || {
        let got = fired(&d, &agent.id, start, &ids);
        (got.len() == ids.len()).then_some(got)
    });
    let got = fired(&d, &agent.id, start, &ids);
    let missing: Vec<_> = SAMPLES
        .iter()
        .filter(|s| !got.contains(s.rule_id))
        .map(|s| format!("{} ({}): {}", s.title, s.rule_id, s.command))
        .collect();
    assert!(
        all.is_some(),
        "{} of {} fired; missing:\n{}",
        got.len(),
        ids.len(),
        missing.join("\n")
    );
    // Each alert names the rule's author, as the rules' licence asks.
    let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id, "--limit", "10000"]);
    for a in alerts.as_array().unwrap() {
        assert!(!a["author"].as_str().unwrap().is_empty(), "{a}");
    }
}
