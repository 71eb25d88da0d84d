//! Conformance with SigmaHQ's Linux rules, read from `../shared/sigma/linux/` beside the
//! workspace (never copied into the repository): how many load, why the others do not, that
//! log sources Cordon does not produce are skipped with a reason, and that the samples
//! (`cordon_detect::samples`) fire their rules and their near misses do not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cordon_detect::samples::SAMPLES;
use cordon_detect::{LoadReport, RuleSet, load_dir};

/// `../shared/sigma/linux` from the workspace root, or `None` (after saying so loudly) when it
/// is missing outside CI. Under `CI=true` a missing directory fails the test.
fn sigma_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("../../shared/sigma/linux");
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("SigmaHQ rules not found at {}", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: the rules are a prerequisite)");
    }
    cordon_skips::skip("detect conformance (SigmaHQ rules)", &msg);
    None
}

fn print_report(name: &str, r: &LoadReport) {
    println!(
        "{name}: {} rules: {} loaded, {} refused, {} skipped",
        r.total(),
        r.loaded.len(),
        r.refused.len(),
        r.skipped.len()
    );
    for (_, e) in &r.refused {
        println!("  refused: {e}");
    }
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, e) in &r.skipped {
        *reasons.entry(e.detail()).or_default() += 1;
    }
    for (reason, n) in reasons {
        println!("  skipped {n}: {reason}");
    }
}

fn community_set(dir: &std::path::Path) -> (RuleSet, LoadReport) {
    let mut all = LoadReport::default();
    for sub in ["process_creation", "file_event"] {
        let r = load_dir(&dir.join(sub));
        print_report(sub, &r);
        all.loaded.extend(r.loaded);
        all.refused.extend(r.refused);
        all.skipped.extend(r.skipped);
    }
    let mut set = RuleSet::new();
    for rule in &all.loaded {
        set.insert(rule.clone()).unwrap_or_else(|e| panic!("{e}"));
    }
    (set, all)
}

#[test]
fn process_and_file_rules_load() {
    let Some(dir) = sigma_dir() else { return };
    let (set, all) = community_set(&dir);
    let total = all.total();
    println!(
        "process_creation + file_event: {} of {total} loaded ({:.1}%)",
        all.loaded.len(),
        100.0 * all.loaded.len() as f64 / total.max(1) as f64
    );
    assert!(
        total >= 100,
        "expected the 130 SigmaHQ rules, found {total}"
    );
    assert!(
        all.loaded.len() * 100 >= total * 95,
        "only {} of {total} loaded",
        all.loaded.len()
    );
    assert!(all.skipped.is_empty(), "Cordon produces both categories");
    for (path, e) in &all.refused {
        assert!(!e.detail().is_empty(), "{path}: refused without a reason");
        assert!(
            e.to_string().contains(path.as_str()),
            "{e} does not name {path}"
        );
    }
    // Every loaded rule is indexed and runs on an event without tripping.
    assert_eq!(set.len(), all.loaded.len());
    let benign = [("Image", "/usr/bin/ls"), ("CommandLine", "ls -la /home")];
    let _ = set.evaluate_fields("process_creation", &benign);
}

#[test]
fn other_log_sources_are_skipped_with_reasons() {
    let Some(dir) = sigma_dir() else { return };
    for (sub, word) in [("auditd", "auditd"), ("builtin", "log")] {
        let r = load_dir(&dir.join(sub));
        print_report(sub, &r);
        assert!(r.total() > 0, "{sub}: no rules found");
        assert!(r.loaded.is_empty(), "{sub}: loaded {}", r.loaded.len());
        assert!(r.refused.is_empty(), "{sub}: refused {:?}", r.refused);
        for (path, e) in &r.skipped {
            assert!(e.is_skipped());
            assert!(e.detail().contains(word), "{path}: {e}");
        }
    }
}

/// Each SigmaHQ network_connection rule, a connection (as Sigma fields) that fires it, and a
/// near miss that must not.
type Connection = &'static [(&'static str, &'static str)];

const NETWORK_CASES: [(&str, Connection, Connection); 5] = [
    (
        "83dcd9f6-9ca8-4af7-a16e-a1c7a6b51871",
        &[("Image", "/usr/bin/bash"), ("DestinationIp", "10.0.0.2")],
        &[("Image", "/usr/bin/bash"), ("DestinationIp", "127.0.0.1")],
    ),
    (
        "a46c93b7-55ed-4d27-a41b-c259456c4746",
        &[("DestinationHostname", "pool.minexmr.com")],
        &[("DestinationHostname", "pool.example.com")],
    ),
    (
        "c4568f5d-131f-4e78-83d4-45b2da0ec4f1",
        &[
            ("DestinationHostname", "x.localto.net"),
            ("Initiated", "true"),
        ],
        &[
            ("DestinationHostname", "x.localto.net"),
            ("Initiated", "false"),
        ],
    ),
    (
        "19bf6fdb-7721-4f3d-867f-53467f6a5db6",
        &[("DestinationHostname", "a.tunnel.eu.ngrok.com")],
        &[("DestinationHostname", "ngrok.com")],
    ),
    (
        "dbfc7c98-04ab-4ab7-aa94-c74d22aa7376",
        &[
            ("Initiated", "true"),
            ("DestinationPort", "4444"),
            ("DestinationIp", "203.0.113.5"),
        ],
        &[
            ("Initiated", "true"),
            ("DestinationPort", "4444"),
            ("DestinationIp", "10.0.0.2"),
        ],
    ),
];

#[test]
fn network_connection_rules_load_and_fire() {
    let Some(dir) = sigma_dir() else { return };
    let r = load_dir(&dir.join("network_connection"));
    print_report("network_connection", &r);
    assert_eq!(r.total(), NETWORK_CASES.len(), "every rule has a case");
    assert_eq!(r.loaded.len(), r.total(), "refused: {:?}", r.refused);
    let mut set = RuleSet::new();
    for rule in &r.loaded {
        set.insert(rule.clone()).unwrap_or_else(|e| panic!("{e}"));
    }
    let fires = |fields: &[(&str, &str)], id: &str| {
        set.evaluate_fields("network_connection", &fields.to_vec())
            .iter()
            .any(|m| m.rule_id == id)
    };
    for (id, hit, miss) in NETWORK_CASES {
        assert!(fires(hit, id), "{id} does not fire on {hit:?}");
        assert!(!fires(miss, id), "{id} fires on the near miss {miss:?}");
    }
}

#[test]
fn samples_fire_their_rules_and_near_misses_do_not() {
    let Some(dir) = sigma_dir() else { return };
    let (set, _) = community_set(&dir);
    let mut rules: Vec<&str> = SAMPLES.iter().map(|s| s.rule_id).collect();
    rules.sort_unstable();
    rules.dedup();
    assert!(rules.len() >= 20, "only {} rules have samples", rules.len());
    assert_eq!(rules.len(), SAMPLES.len(), "one sample per rule");
    let fired = |obs: Vec<cordon_detect::samples::Observation>, id: &str| {
        obs.iter().any(|o| {
            set.evaluate_fields(o.category, &o.pairs())
                .iter()
                .any(|m| m.rule_id == id)
        })
    };
    let mut failures = Vec::new();
    for s in SAMPLES {
        let Some((rule, _)) = set.get(s.rule_id) else {
            failures.push(format!("{}: rule not loaded", s.rule_id));
            continue;
        };
        assert_eq!(rule.title, s.title, "{}: title drifted", s.rule_id);
        let hit = fired(s.observed(), s.rule_id);
        let miss = !fired(s.near_miss_observed(), s.rule_id);
        println!(
            "{} {:<55} fires: {:<5} near miss quiet: {}",
            if hit && miss { "ok " } else { "BAD" },
            s.title,
            hit,
            miss
        );
        if !hit {
            failures.push(format!(
                "{} ({}): `{}` does not fire",
                s.title, s.rule_id, s.command
            ));
        }
        if !miss {
            failures.push(format!(
                "{} ({}): near miss `{}` fires",
                s.title, s.rule_id, s.near_miss
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
