//! Detection end to end, with the real binaries: Cordon's own rules (rules/) loaded at start
//! fire on real commands run on the agent's host, near misses do not, alerts fold into one
//! incident per host, indicator lists match, and rule management works from cordonctl.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::repo::{detection_config, rule_id};
use cordon_tests::{poll, require_root};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn deployment() -> (Deployment, AgentHandle) {
    let d = Deployment::loopback(&detection_config(""));
    let mut agent = d.enroll_agent("det", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    (d, agent)
}

fn sh(script: &str) {
    let out = Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success() || script.contains("|| true"),
        "{script}: {out:?}"
    );
}

/// The alerts stored for `agent`, newest last.
fn alerts(d: &Deployment, agent: &AgentHandle) -> Vec<Value> {
    d.ctl_list(&["alerts", "list", "--agent", &agent.id, "--limit", "1000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn alert_for(d: &Deployment, agent: &AgentHandle, rule_id: &str) -> Option<Value> {
    alerts(d, agent)
        .into_iter()
        .find(|a| a["rule_id"] == rule_id)
}

fn wait_alert(d: &Deployment, agent: &AgentHandle, rule_id: &str) -> Value {
    poll(Duration::from_secs(20), || alert_for(d, agent, rule_id))
        .unwrap_or_else(|| panic!("no alert for {rule_id}: {:#?}", alerts(d, agent)))
}

#[test]
fn cordon_rules_fire_on_real_commands_and_group_into_one_incident() {
    if !require_root("cordon_rules_fire_on_real_commands_and_group_into_one_incident") {
        return;
    }
    let (d, agent) = deployment();
    let listed = d.ctl_list(&["rules", "list"]);
    let n = listed.as_array().unwrap().len();
    assert!(n >= 20, "the rule pack loads at start: {n} rules");

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    // Near misses first: decoding without a shell, chmod without setuid, a binary run from
    // outside /tmp.
    sh("echo aWQK | base64 -d >/dev/null");
    sh(&format!("touch {t}/f && chmod 0755 {t}/f"));
    sh("/bin/true near-miss");
    // Then the real thing.
    sh("echo aWQK | base64 -d | sh >/dev/null");
    sh(&format!("chmod u+s {t}/f"));
    let payload = format!("/tmp/cordon-payload-{}", std::process::id());
    std::fs::copy("/bin/true", &payload).unwrap();
    sh(&payload);
    std::fs::remove_file(&payload).unwrap();
    let shm = format!("/dev/shm/cordon-payload-{}", std::process::id());
    std::fs::copy("/bin/true", &shm).unwrap();
    sh(&shm);
    std::fs::remove_file(&shm).unwrap();

    let b64 = wait_alert(&d, &agent, &rule_id("base64_decode_to_shell"));
    assert_eq!(b64["level"], "high");
    assert_eq!(b64["author"], "Cordon");
    assert!(
        b64["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "attack.t1140"),
        "{b64}"
    );
    assert!(
        b64["event"]["summary"]
            .as_str()
            .unwrap()
            .contains("base64 -d | sh")
    );
    let suid = wait_alert(&d, &agent, &rule_id("setuid_setgid_bit"));
    assert!(suid["event"]["summary"].as_str().unwrap().contains("u+s"));
    // (Other programs run from /tmp on a busy host may have raised it first: repeats count on
    // the first alert, so its event need not be ours.)
    let tmp_exec = wait_alert(&d, &agent, &rule_id("exec_from_tmp"));
    assert_eq!(tmp_exec["level"], "medium");
    let shm_exec = wait_alert(&d, &agent, &rule_id("exec_from_dev_shm"));
    assert_eq!(shm_exec["level"], "high");

    // The near misses raised nothing of their own. Barrier: a last exec, stored after every
    // event before it (an agent's events are stored in order, each with its alerts).
    d.barrier(&agent, "near-misses");
    for a in alerts(&d, &agent) {
        let summary = a["event"]["summary"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !summary.contains("near-miss") && !summary.contains("chmod 0755"),
            "a near miss raised {a}"
        );
    }
    let b64_alerts: Vec<_> = alerts(&d, &agent)
        .into_iter()
        .filter(|a| a["rule_id"] == b64["rule_id"])
        .collect();
    assert_eq!(
        b64_alerts.len(),
        1,
        "decoding without a shell is not a match"
    );

    // One incident for the host, as severe as its worst alert, every alert on its timeline.
    let incident = b64["incident_id"].as_str().unwrap();
    assert_eq!(suid["incident_id"], incident);
    let inc = d.ctl_json(&["incidents", "show", incident]);
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["status"], "open");
    let timeline = inc["timeline"].as_array().unwrap();
    for a in [&b64, &suid, &tmp_exec] {
        assert!(
            timeline.iter().any(|t| t["ref"] == a["id"]),
            "{} missing from {timeline:#?}",
            a["id"]
        );
    }

    // A repeat counts on the first alert.
    sh("echo aWQK | base64 -d | sh >/dev/null");
    let counted = poll(Duration::from_secs(20), || {
        let a = alert_for(&d, &agent, b64["rule_id"].as_str().unwrap())?;
        (a["count"].as_u64() == Some(2)).then_some(a)
    });
    assert!(counted.is_some(), "{:#?}", alerts(&d, &agent));

    // Disabled, the rule stays quiet.
    d.ctl(&["rules", "disable", b64["rule_id"].as_str().unwrap()]);
    sh("echo aWQK | base64 -d | sh >/dev/null");
    std::thread::sleep(Duration::from_secs(2));
    let a = alert_for(&d, &agent, b64["rule_id"].as_str().unwrap()).unwrap();
    assert_eq!(a["count"], 2, "a disabled rule does not count");

    // Status changes are recorded with who made them.
    let inc = d.ctl_json(&["incidents", "set-status", incident, "resolved"]);
    assert_eq!(inc["status"], "resolved");
    let last = inc["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "status");
    assert_eq!(last["actor"], "admin");
    let bad = d.try_ctl(&["incidents", "set-status", incident, "done"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown incident status"));
}

#[test]
fn an_executable_on_a_hash_list_raises_an_alert() {
    if !require_root("an_executable_on_a_hash_list_raises_an_alert") {
        return;
    }
    let (d, agent) = deployment();
    // A binary of our own whose hash nothing else on the host shares.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("marked");
    let mut bytes = std::fs::read("/bin/true").unwrap();
    bytes.extend_from_slice(format!("cordon-ioc-{}", std::process::id()).as_bytes());
    std::fs::write(&bin, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hash = cordon_proto::identity::fingerprint(&bytes)
        .trim_start_matches("sha256:")
        .to_string();
    let list = dir.path().join("bad-hashes.txt");
    std::fs::write(&list, format!("# known bad\n{}\n\n", hash.to_uppercase())).unwrap();
    let out = d.ctl(&["iocs", "import", list.to_str().unwrap(), "--kind", "sha256"]);
    assert!(out.contains("1 added"), "{out}");
    // A bad entry refuses the import and names the line.
    std::fs::write(&list, "not-a-hash\n").unwrap();
    let bad = d.try_ctl(&["iocs", "import", list.to_str().unwrap(), "--kind", "sha256"]);
    assert!(!bad.status.success());
    // (cordonctl checks the file before sending it, so the line is named as FILE:LINE.)
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("bad-hashes.txt:1: "), "{stderr}");

    let status = Command::new(&bin).status().unwrap();
    assert!(status.success());
    let alert = wait_alert(&d, &agent, "ioc:sha256:bad-hashes");
    assert_eq!(alert["level"], "high");
    assert!(alert["detail"].as_str().unwrap().contains(&hash), "{alert}");
}

#[test]
fn rules_are_imported_refused_and_tested_from_cordonctl() {
    let d = Deployment::loopback("");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "title: Test Rule\nid: 0b1e8f6c-7a43-4f4e-9c61-3c2f1f0a0001\nstatus: test\nauthor: Tester\n\
         level: low\nlogsource:\n  category: process_creation\n  product: linux\n\
         detection:\n  selection:\n    CommandLine|contains: 'cordon-test-marker'\n  condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yml"),
        "title: Broken\nid: x\nlogsource:\n  category: process_creation\ndetection:\n  selection:\n    Image|nosuchmod: x\n  condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("audit.yml"),
        "title: Audit\nid: 0b1e8f6c-7a43-4f4e-9c61-3c2f1f0a0002\nlogsource:\n  product: linux\n  service: auditd\ndetection:\n  selection:\n    type: EXECVE\n  condition: selection\n",
    )
    .unwrap();
    let out = d.ctl(&["rules", "import", dir.path().to_str().unwrap()]);
    assert!(out.contains("1 loaded, 1 refused, 1 skipped"), "{out}");
    assert!(
        out.contains("broken.yml") && out.contains("nosuchmod"),
        "{out}"
    );
    assert!(out.contains("audit.yml"), "{out}");
    let listed = d.ctl(&["rules", "list"]);
    assert!(
        listed.contains("Test Rule") && listed.contains("enabled"),
        "{listed}"
    );
    let disabled = d.ctl(&["rules", "disable", "0b1e8f6c-7a43-4f4e-9c61-3c2f1f0a0001"]);
    assert!(disabled.contains("disabled"));
    assert!(
        !d.try_ctl(&["rules", "enable", "no-such-rule"])
            .status
            .success()
    );

    // Offline evaluation, exit status 0 on a match and 1 otherwise.
    let test = |event: &str| {
        Command::new(cordon_tests::binaries::bin("cordonctl"))
            .args(["rules", "test", good.to_str().unwrap(), "--event", event])
            .output()
            .unwrap()
    };
    let hit = test(r#"{"Image": "/bin/echo", "CommandLine": "echo CORDON-TEST-MARKER"}"#);
    assert!(hit.status.success(), "{hit:?}");
    assert!(String::from_utf8_lossy(&hit.stdout).contains("MATCH Test Rule"));
    let miss = test(r#"{"Image": "/bin/echo", "CommandLine": "echo hello"}"#);
    assert_eq!(miss.status.code(), Some(1));
    let garbage = test("{not json");
    assert!(!garbage.status.success());
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("not valid JSON"));
}
