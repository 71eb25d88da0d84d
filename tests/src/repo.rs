//! The project's own content, for the end-to-end tests: paths in the checkout, the ids of
//! Cordon's rules, and the controller setting that loads them.

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
