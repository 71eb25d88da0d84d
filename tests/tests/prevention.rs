//! Prevention end to end, with the real binaries: a SHA-256 list imported with
//! `cordonctl iocs import --block` reaches the agent as its "blocklist" edge policy, and the
//! listed binary (a file of the test's own, so nothing else on the machine is refused) is
//! refused with EPERM in every attempt, a renamed copy too, while another binary runs; each
//! refusal is stored as a prevention event with its path, digest and process, and raises a
//! high alert naming the list. With tamper protection on, another process's open for write
//! of the agent's state is refused, stored and alerted on, and the agent goes on writing it.
//! The agent reports its prevention mode in its heartbeat.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_proto::{event, prevention_event::Kind};
use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::{poll, require_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ATTEMPTS: usize = 20;

/// A copy of /bin/true with bytes of its own appended (it still runs): a digest no other
/// file on the machine has. Returns its path and hex SHA-256.
fn own_binary(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let mut bytes = std::fs::read("/bin/true").unwrap();
    bytes.extend(format!("cordon prevention test {name} {}", std::process::id()).as_bytes());
    std::fs::write(&p, &bytes).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    (p, hex::encode(digest))
}

/// Whether running `p` was refused with EPERM (else it must have run and succeeded).
fn refused(p: &Path) -> bool {
    match Command::new(p).status() {
        Err(e) if e.raw_os_error() == Some(1) => true,
        Err(e) => panic!("{}: {e}", p.display()),
        Ok(s) => {
            assert!(s.success(), "{}: {s}", p.display());
            false
        }
    }
}

/// How many digests the agent's block list policy holds, from its last heartbeat.
fn blocked_on_agent(d: &Deployment, agent: &AgentHandle) -> u64 {
    let rec = d.agent_record(&agent.id);
    rec["metrics"]["edge_policies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == "blocklist")
        .and_then(|p| p["block_sha256"].as_u64())
        .unwrap_or(0)
}

/// The prevention mode the agent's heartbeats report, once one has.
fn heartbeat_mode(d: &Deployment, agent: &AgentHandle) -> String {
    poll(Duration::from_secs(20), || {
        let m = d.agent_record(&agent.id)["metrics"]["prevention"].clone();
        m.as_str().filter(|s| !s.is_empty()).map(str::to_string)
    })
    .expect("a heartbeat with the prevention mode")
}

#[test]
fn a_block_listed_binary_is_refused_at_exec_every_time_and_reported_with_an_alert() {
    if !require_root("a_block_listed_binary_is_refused_at_exec_every_time") {
        return;
    }
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("prevent", &[]);
    agent.configure("[prevention]\nmode = \"fanotify\"\n");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    assert_eq!(heartbeat_mode(&d, &agent), "fanotify (exec deny)");

    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let (bad, digest) = own_binary(&dir, "dropped");
    let (good, _) = own_binary(&dir, "benign");
    let list = format!("prevent-{}", std::process::id());
    let file = d.dir.path().join("blocked.txt");
    std::fs::write(&file, format!("{digest}\n")).unwrap();
    let out = d.ctl(&[
        "iocs",
        "import",
        file.to_str().unwrap(),
        "--kind",
        "sha256",
        "--name",
        &list,
        "--block",
    ]);
    assert!(out.contains("block list"), "{out}");
    poll(Duration::from_secs(40), || {
        (blocked_on_agent(&d, &agent) == 1).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the block list did not reach the agent\n{}",
            agent.log_text()
        )
    });

    for i in 0..ATTEMPTS {
        assert!(refused(&bad), "attempt {i} ran");
    }
    let renamed = dir.join("renamed");
    std::fs::rename(&bad, &renamed).unwrap();
    assert!(refused(&renamed), "a renamed copy");
    assert!(!refused(&good), "a binary not listed runs");

    let want = ATTEMPTS + 1;
    let denials = poll(Duration::from_secs(30), || {
        let got: Vec<_> = d
            .event_bodies(&agent.id, "prevention", None)
            .into_iter()
            .filter_map(|b| match b {
                event::Body::Prevention(p) if p.sha256 == digest => Some(p),
                _ => None,
            })
            .collect();
        (got.len() >= want).then_some(got)
    })
    .expect("every refusal stored");
    assert_eq!(denials.len(), want, "each refusal stored once");
    let me = std::env::current_exe().unwrap();
    for (i, p) in denials.iter().enumerate() {
        let path = if i < ATTEMPTS { &bad } else { &renamed };
        assert_eq!(p.path, path.display().to_string());
        assert_eq!((p.kind(), p.attempt.as_str()), (Kind::ExecDenied, "exec"));
        // Who tried: the test's child, still the test binary when its exec was refused.
        let who = p.process.as_ref().unwrap();
        assert!(who.pid != 0, "{who:?}");
        assert_eq!(Path::new(&who.exe), me.as_path(), "{who:?}");
    }

    let alert = poll(Duration::from_secs(30), || {
        let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id]);
        alerts
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == "prevention:exec_denied")
            .cloned()
    })
    .expect("an alert for the refusals");
    let title = alert["title"].as_str().unwrap_or_default();
    assert!(
        title.starts_with("Execution of a blocked file denied"),
        "{alert}"
    );
    assert!(title.contains(&list), "the alert names the list: {alert}");
    assert_eq!(alert["level"], "high", "{alert}");
}

#[test]
fn with_tamper_protection_another_process_cannot_write_the_agents_state_and_is_reported() {
    if !require_root("with_tamper_protection_another_process_cannot_write_the_agents_state") {
        return;
    }
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("tamper", &[]);
    agent.configure("[tamper]\nprotect = true\n");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let mode = heartbeat_mode(&d, &agent);
    assert!(
        mode.contains(
            "tamper: writes to the agent's binary and state denied; signals, ptrace, BPF \
             detach: not enforceable"
        ),
        "{mode}"
    );
    // An open for append that writes nothing: harmless if it were let through.
    let cert = agent.state_dir.join("cert.pem");
    let before = std::fs::read(&cert).unwrap();
    let out = Command::new("sh")
        .args(["-c", &format!(": >> '{}'", cert.display())])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the write went through");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    // Reading is not refused, and the file is as it was.
    assert_eq!(std::fs::read(&cert).unwrap(), before);

    let refusal = poll(Duration::from_secs(30), || {
        d.event_bodies(&agent.id, "prevention", None)
            .into_iter()
            .find_map(|b| match b {
                event::Body::Prevention(p) if p.kind() == Kind::TamperDenied => Some(p),
                _ => None,
            })
    })
    .expect("the refusal stored");
    assert_eq!(
        refusal.path,
        cert.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(refusal.attempt, "open_write");
    let alert = poll(Duration::from_secs(30), || {
        let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id]);
        alerts
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == "prevention:tamper_denied")
            .cloned()
    })
    .expect("an alert for the refusal");
    assert_eq!(
        alert["title"], "Tamper attempt on the agent denied",
        "{alert}"
    );
    // The agent still writes its own state: its spool takes events after the refusal.
    d.barrier(&agent, "tamper");
}
