//! The reload against a recording agent: which settings change live, which wait for a
//! restart, and that a refused file changes nothing.

use super::*;
use std::sync::Mutex;

/// A running agent as far as a reload sees it: the configuration in force and the notices.
#[derive(Default)]
struct Fake {
    config: crate::swap::Swap<AgentConfig>,
    notices: Mutex<Vec<(String, String)>>,
}

impl Target for Fake {
    fn in_force(&self) -> Arc<AgentConfig> {
        self.config.load()
    }
    fn put_in_force(&self, config: AgentConfig) {
        self.config.store(config);
    }
    fn notice(&self, kind: &str, message: String) {
        self.notices.lock().unwrap().push((kind.into(), message));
    }
}

fn keys(changes: &[Change]) -> Vec<&str> {
    changes.iter().map(|c| c.key).collect()
}

const NEW: &str = r#"
command_timeout_secs = 5
spool_max_bytes = 2097152
[containment]
protected_processes = ["/opt/guarded"]
dns_resolvers = ["192.0.2.53"]
[process]
mode = "off"
"#;

#[test]
fn live_settings_are_put_in_force_and_the_others_wait_for_a_restart() {
    let current = AgentConfig::default();
    let new: AgentConfig = toml::from_str(NEW).unwrap();
    let plan = plan(&current, &new);
    assert_eq!(
        keys(&plan.applied),
        [
            "command_timeout_secs",
            "containment.dns_resolvers",
            "containment.protected_processes"
        ]
    );
    assert_eq!(
        keys(&plan.need_restart),
        ["spool_max_bytes", "process.mode"]
    );
    let c = &plan.in_force;
    assert_eq!(c.command_timeout_secs, 5);
    assert_eq!(
        c.containment.protected_processes,
        [PathBuf::from("/opt/guarded")]
    );
    assert_eq!(c.spool_max_bytes, current.spool_max_bytes);
    assert_eq!(c.process.mode, current.process.mode);
    // Against what is now in force, only the restart settings still differ.
    let again = super::plan(c, &new);
    assert!(again.applied.is_empty(), "{:?}", again.applied);
    assert_eq!(
        keys(&again.need_restart),
        ["spool_max_bytes", "process.mode"]
    );
    assert_eq!(plan.applied[0].to_string(), "command_timeout_secs: 60 -> 5");
}

#[test]
fn an_unchanged_file_changes_nothing() {
    let plan = plan(&AgentConfig::default(), &AgentConfig::default());
    assert!(plan.applied.is_empty() && plan.need_restart.is_empty());
    assert!(KEYS.iter().all(|k| !k.name.contains(' ')));
}

#[test]
fn a_refused_file_leaves_the_settings_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let agent = Fake::default();
    std::fs::write(&path, NEW).unwrap();
    reload(&agent, &path).unwrap();
    let before = format!("{:?}", agent.in_force());
    for (bad, why) in [
        ("command_timeout_secs = 7\nbogus = 1\n", "bogus"),
        ("command_timeout_secs = \n", "agent.toml"),
        (
            "[containment]\nprotected_processes = [\"sshd\"]\n",
            "absolute",
        ),
    ] {
        std::fs::write(&path, bad).unwrap();
        let err = reload(&agent, &path).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
        assert_eq!(format!("{:?}", agent.in_force()), before);
    }
    std::fs::remove_file(&path).unwrap();
    assert!(reload(&agent, &path).is_err());
    assert_eq!(format!("{:?}", agent.in_force()), before);
    let kinds: Vec<String> = agent
        .notices
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.0.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "config_reloaded",
            "config_refused",
            "config_refused",
            "config_refused",
            "config_refused"
        ]
    );
}

#[test]
fn a_reload_reports_what_changed_and_what_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, NEW).unwrap();
    let agent = Fake::default();
    let plan = reload(&agent, &path).unwrap();
    assert_eq!(agent.in_force().command_timeout_secs, 5);
    assert_eq!(
        keys(&plan.need_restart),
        ["spool_max_bytes", "process.mode"]
    );
    let notices = agent.notices.lock().unwrap();
    let (kind, message) = &notices[0];
    assert_eq!(kind, "config_reloaded");
    assert!(
        message.contains("command_timeout_secs: 60 -> 5")
            && message.contains("needs a restart to apply: spool_max_bytes, process.mode"),
        "{message}"
    );
}

/// The settings `{:#?}` of the default configuration shows (`section.key` below a table),
/// but for `source`, which no file sets.
fn every_setting() -> Vec<String> {
    let shown = format!("{:#?}", AgentConfig::default());
    let mut section = String::new();
    let mut found = Vec::new();
    for line in shown.lines() {
        let indent = line.len() - line.trim_start().len();
        let Some((name, value)) = line.trim_start().split_once(": ") else {
            continue;
        };
        match indent {
            4 if value.ends_with('{') => section = format!("{name}."),
            4 => found.push(name.to_string()),
            8 => found.push(format!("{section}{name}")),
            _ => {}
        }
    }
    found.retain(|k| k != "source");
    found
}

#[test]
fn the_table_names_every_setting_once() {
    let mut table: Vec<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
    let mut settings = every_setting();
    table.sort();
    settings.sort();
    assert_eq!(table, settings);
}
