//! The agent's configuration reload with the real binaries: SIGHUP makes a running agent read
//! its config file again; a protected process added there is refused a kill from then on, a
//! setting that needs a restart is named as such, and a broken file is refused while the
//! agent keeps running with the settings it had. Kills go only to processes the test started.

#![allow(clippy::unwrap_used)]

use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::owned::sleep_as;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

/// Bound on waiting for the agent to act on a SIGHUP.
const WAIT: Duration = Duration::from_secs(20);

/// Sends SIGHUP to the agent and waits until its log holds one more line containing `line`
/// (the barrier); returns the log.
fn reload(agent: &AgentHandle, line: &str) -> String {
    let before = agent.log_text().matches(line).count();
    let pid = agent.proc.as_ref().unwrap().pid();
    kill(Pid::from_raw(pid as i32), Signal::SIGHUP).unwrap();
    cordon_tests::poll(WAIT, || {
        let log = agent.log_text();
        (log.matches(line).count() > before).then_some(log)
    })
    .unwrap_or_else(|| panic!("no {line:?} within {WAIT:?}:\n{}", agent.log_text()))
}

/// Asks the agent to kill `pid` and checks the refusal names a protected executable.
fn kill_is_refused_as_protected(d: &Deployment, agent: &AgentHandle, pid: u32) {
    let err = d.ctl_refused(&["kill", &agent.id, "--pid", &pid.to_string()]);
    assert!(err.contains("a protected executable"), "{err}");
}

#[test]
fn sighup_applies_a_new_protected_process_and_refuses_a_broken_file() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("host", &[]);
    agent.configure("[containment]\nprotected_processes = []\n");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, WAIT);
    let tmp = tempfile::tempdir().unwrap();
    let guarded_exe = tmp.path().join("opt/guarded");
    let mut guarded = sleep_as(&guarded_exe);

    let exe = toml::Value::from(guarded_exe.display().to_string());
    agent.configure(&format!(
        "spool_max_bytes = 2097152\n[containment]\nprotected_processes = [{exe}]\n"
    ));
    let file = agent.config.display().to_string();
    let log = reload(&agent, &format!("configuration reloaded from {file}"));
    assert!(
        log.contains("spool_max_bytes needs a restart to apply"),
        "{log}"
    );
    kill_is_refused_as_protected(&d, &agent, guarded.id());
    assert!(
        guarded.try_wait().unwrap().is_none(),
        "the protected process died"
    );

    // A broken file: refused, naming the file; the agent stays up with the protection it had.
    agent.configure("bogus = 1\n");
    let log = reload(&agent, "configuration refused");
    assert!(log.contains(&file) && log.contains("bogus"), "{log}");
    d.wait_online(&agent, true, WAIT);
    // A command still runs (ctl fails the test if it does not).
    d.ctl_json(&["ping", &agent.id]);
    kill_is_refused_as_protected(&d, &agent, guarded.id());
    assert!(
        guarded.try_wait().unwrap().is_none(),
        "the protected process died"
    );

    // Both reloads reached the controller as notices.
    for kind in ["config_reloaded", "config_refused"] {
        let stored = cordon_tests::poll(WAIT, || {
            let q = ["events", "query", "--agent", &agent.id, "--contains", kind];
            (!d.ctl(&q).trim().is_empty()).then_some(())
        });
        assert!(stored.is_some(), "no {kind} notice stored");
    }
    guarded.kill().unwrap();
    guarded.wait().unwrap();
}
