//! The project's own content, for the end-to-end tests: paths in the checkout, the ids of
//! Cordon's rules, and the controller setting that loads them.

use crate::deploy::Deployment;
use std::path::PathBuf;

/// `dir` in the checkout (`rules`, `playbooks`), as an absolute path.
pub fn path(dir: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{dir} in the checkout: {e}"))
        .display()
        .to_string()
}

/// The id of the rule in `rules/linux/cordon_STEM.yml`.
pub fn rule_id(stem: &str) -> String {
    let file = format!("{}/linux/cordon_{stem}.yml", path("rules"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("{file} has no id"))
        .trim()
        .to_string()
}

/// Controller settings that load Cordon's rules, followed by `extra`.
pub fn detection_config(extra: &str) -> String {
    format!(
        "[detection]\nrules_dir = {}\n{extra}",
        toml::Value::from(path("rules"))
    )
}

/// Applies playbook `name` from `yaml` with `cordonctl playbooks apply`.
pub fn apply(d: &Deployment, name: &str, yaml: &str) {
    let f = d.dir.path().join(format!("{name}.yml"));
    std::fs::write(&f, yaml).unwrap();
    d.ctl(&["playbooks", "apply", f.to_str().unwrap()]);
}

/// Imports a rule of the test's own that fires only on a command line carrying `marker`, and
/// returns its id. Tests run at once on one machine, run the same attack
/// commands, and every agent sees every exec: with a shared rule, another test's command may
/// raise the alert before this test's playbooks are in place, and this test's own command then
/// only counts as a repeat of it (no new alert, no run).
pub fn own_rule(d: &Deployment, marker: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        n & 0xffff_ffff_ffff
    );
    // Named by id: the import command's own exec must not carry the marker.
    let f = d.dir.path().join(format!("rule-{id}.yml"));
    std::fs::write(
        &f,
        format!(
            "title: Playbook test {marker}\nid: {id}\nstatus: test\nauthor: Cordon tests\n\
             level: high\nlogsource:\n  category: process_creation\n  product: linux\n\
             detection:\n  selection:\n    CommandLine|contains: '{marker}'\n  condition: selection\n"
        ),
    )
    .unwrap();
    let out = d.ctl(&["rules", "import", f.to_str().unwrap()]);
    assert!(out.contains("1 loaded"), "{out}");
    id
}

/// A marker no other test's command carries.
pub fn marker(what: &str) -> String {
    format!("cordon-pbt-{what}-{}", std::process::id())
}

/// A playbook `name` that, on an alert of `rule`, waits up to `timeout_secs` for a person's
/// approval and then raises the incident's severity to critical (the step a test checks).
pub fn approval_playbook(name: &str, rule: &str, timeout_secs: u32) -> String {
    format!(
        "name: {name}\ntrigger:\n  rules: [{rule}]\nsteps:\n  - action: wait_for_approval\n    timeout_secs: {timeout_secs}\n  - action: set_incident\n    severity: critical\n"
    )
}
