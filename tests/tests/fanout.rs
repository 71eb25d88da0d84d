//! Fan-out isolation with the real binaries: `cordonctl isolate --labels k=v` picks exactly the
//! unrevoked hosts carrying every label, refuses as a whole (issuing nothing) for a typo, a
//! protected host or more hosts than `--max` / `[people] fanout_cap`, is refused to a viewer,
//! and is audited once with every command id.
//!
//! The first test enrols agents without running them: their isolations stay queued, so
//! nothing on this machine is touched. The second isolates a running agent, and only inside a
//! network namespace the test made (root only; skipped visibly elsewhere).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::require_root;
use serde_json::Value;
use std::time::Duration;

/// Each host of a fan-out's `--json` lines: (agent id, outcome).
fn outcomes(lines: &Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = lines
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let id = h["agent_id"].as_str().unwrap().to_string();
            (id, h["outcome"].as_str().unwrap().to_string())
        })
        .collect();
    all.sort();
    all
}

fn pairs(list: &[(&AgentHandle, &str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = list
        .iter()
        .map(|(a, o)| (a.id.clone(), o.to_string()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_label_fan_out_isolates_exactly_the_matching_hosts_within_its_guards() {
    let d = Deployment::loopback("[people]\nfanout_cap = 1\n");
    let web = ["env=prod", "role=web"];
    let web1 = d.enroll_agent("web1", &web);
    let web2 = d.enroll_agent("web2", &web);
    let db = d.enroll_agent("db", &["env=prod", "role=db"]);
    let dev = d.enroll_agent("dev", &["env=dev", "role=web"]);
    let token = d.token_with_labels(&["cordon.protected=true"]);
    let vault = d.enroll_agent_with(&token, "vault", &web);
    let gone = d.enroll_agent("gone", &web);
    d.ctl(&["agents", "revoke", &gone.id]);
    let everyone = [&web1, &web2, &db, &dev, &vault, &gone];
    let nothing_sent = |when: &str| {
        for a in everyone {
            assert!(d.isolations(&a.id).is_empty(), "{when}: sent to {}", a.id);
        }
    };
    let prod_web = ["isolate", "--labels", "env=prod", "--labels", "role=web"];
    let with = |extra: &[&'static str]| [&prod_web[..], extra].concat();

    let dry = d.ctl_list(&with(&["--dry-run", "--skip-protected", "--max", "2"]));
    let expected = [(&web1, "would isolate"), (&web2, "would isolate")];
    assert_eq!(
        outcomes(&dry),
        pairs(&[expected[0], expected[1], (&vault, "skipped")])
    );
    nothing_sent("dry run");

    let typo = d.ctl_refused(&["isolate", "--labels", "env=prd", "--max", "9"]);
    assert!(
        typo.contains("no enrolled, unrevoked agent carries the labels env=prd"),
        "{typo}"
    );
    let protected = d.ctl_refused(&with(&["--max", "2"]));
    assert!(
        protected.contains("1 matching hosts carry a protected label"),
        "{protected}"
    );
    assert!(protected.contains("--skip-protected"), "{protected}");
    let cap = d.ctl_refused(&with(&["--skip-protected"]));
    assert!(
        cap.contains("2 hosts match, more than the maximum of 1"),
        "{cap}"
    );
    let max = d.ctl_refused(&[
        "isolate",
        "--labels",
        "role=web",
        "--skip-protected",
        "--max",
        "2",
    ]);
    assert!(
        max.contains("3 hosts match, more than the maximum of 2"),
        "{max}"
    );
    let viewer = d.member("val", "viewer", &[]);
    let out = d.try_ctl_as(&viewer.credential(), &with(&["--max", "2"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("respond"), "{err}");
    assert_eq!(d.audited("permission.refused").len(), 1);
    nothing_sent("refusals");

    // The agents are not running: their commands go out and stay queued.
    let args = with(&[
        "--skip-protected",
        "--max",
        "2",
        "--wait",
        "0",
        "--reason",
        "worm",
    ]);
    let done = d.ctl_list(&args);
    assert_eq!(
        outcomes(&done),
        pairs(&[(&web1, "issued"), (&web2, "issued"), (&vault, "skipped")])
    );
    let mut ids = Vec::new();
    for a in [&web1, &web2] {
        let sent = d.isolations(&a.id);
        assert_eq!(sent.len(), 1, "one isolation for {}", a.id);
        assert_eq!(sent[0]["created_by"], "admin");
        assert_eq!(d.agent_record(&a.id)["isolation_desired"], true);
        ids.push(sent[0]["command_id"].as_str().unwrap().to_string());
    }
    for a in [&db, &dev, &vault, &gone] {
        assert!(d.isolations(&a.id).is_empty(), "nothing for {}", a.id);
    }

    let entries = d.audited("command.isolate_fanout");
    let refused = entries
        .iter()
        .filter(|e| e["outcome"].as_str().unwrap().starts_with("refused: "))
        .count();
    assert_eq!(refused, 4, "typo, protected, cap and max: {entries:?}");
    let sent: Vec<&Value> = entries
        .iter()
        .filter(|e| e["outcome"] == "issued 2 of 3 matched")
        .collect();
    assert_eq!(sent.len(), 1, "{entries:?}");
    let detail = &sent[0]["detail"];
    assert_eq!(sent[0]["target"], "labels:env=prod,role=web");
    assert_eq!(detail["skipped"], 1);
    assert_eq!(detail["reason"], "worm");
    let mut logged: Vec<String> = detail["command_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    logged.sort();
    ids.sort();
    assert_eq!(logged, ids);
}

#[test]
fn a_fan_out_waits_for_each_host_and_tells_confirmed_from_queued() {
    if !require_root("a_fan_out_waits_for_each_host_and_tells_confirmed_from_queued") {
        return;
    }
    // The running agent isolates only the namespace this deployment made.
    let d = Deployment::namespaces("");
    let mut up = d.enroll_agent("up", &["fleet=t"]);
    let down = d.enroll_agent("down", &["fleet=t"]);
    d.start_agent(&mut up);
    d.wait_online(&up, true, Duration::from_secs(20));

    let args = [
        "isolate", "--labels", "fleet=t", "--max", "2", "--wait", "10",
    ];
    let out = d.try_ctl(&[&args[..], &["--json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        outcomes(&Value::Array(lines.clone())),
        pairs(&[(&up, "confirmed"), (&down, "issued")])
    );
    let confirmed = lines.iter().find(|h| h["agent_id"] == up.id.as_str());
    assert_eq!(confirmed.unwrap()["command"]["status"], "succeeded");
    // One host never confirmed: that is a failure the caller sees.
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 hosts did not confirm within 10s"), "{err}");

    let released = d.ctl_json(&["release", &up.id]);
    assert_eq!(released["status"], "succeeded", "{released}");
}
