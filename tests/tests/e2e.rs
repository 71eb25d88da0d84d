//! End-to-end: the real binaries, driven through cordonctl. The namespace tests put the
//! controller and the agent in two network namespaces joined by a veth pair, the agent
//! entering its namespace with `--netns`; they need root (CI is root).

#![allow(clippy::unwrap_used)]

use cordon_tests::binaries::bin;
use cordon_tests::deploy::{AGENT_ADDR, Deployment};
use cordon_tests::{poll, require_root};
use std::process::Command;
use std::time::Duration;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn netns_enrolment_shows_online_and_commands_round_trip() {
    if !require_root("netns_enrolment_shows_online_and_commands_round_trip") {
        return;
    }
    let d = Deployment::namespaces("");
    let mut agent = d.enroll_agent("a1", &["env=test", "team=blue"]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));

    let rec = d.agent_record(&agent.id);
    assert_eq!(rec["labels"]["env"], "test");
    assert!(!rec["host"]["kernel_version"].as_str().unwrap().is_empty());
    assert_eq!(rec["host"]["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(rec["last_seen_ms"].as_i64().unwrap() > 0);
    let listed = d.ctl_list(&["agents", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let pong = d.ctl_json(&["ping", &agent.id]);
    assert_eq!(pong["agent_id"], agent.id.as_str());
    assert!(pong["agent_time_ms"].as_i64().unwrap() > 0);

    // The inventory is taken inside the agent's namespace: it shows the veth address there.
    let inv = d.ctl_json(&["agents", "inventory", &agent.id]);
    let addrs: Vec<String> = inv["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
        })
        .collect();
    assert!(addrs.iter().any(|a| a.starts_with(AGENT_ADDR)), "{addrs:?}");
    assert!(
        inv["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "root")
    );

    let cmds = d.ctl_list(&["commands", "list", "--agent", &agent.id]);
    let statuses: Vec<&str> = cmds
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded"]);
    let first = cmds[0]["command_id"].as_str().unwrap();
    let shown = d.ctl_json(&["commands", "show", first]);
    assert_eq!(shown["kind"], "inventory");
    assert_eq!(shown["result"]["outcome"], "succeeded");
}

#[test]
fn netns_agent_survives_controller_restarts_without_reenrolling() {
    if !require_root("netns_agent_survives_controller_restarts_without_reenrolling") {
        return;
    }
    let mut d = Deployment::namespaces("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    let identity_before = std::fs::read(agent.state_dir.join("agent.toml")).unwrap();
    let enrolled_at = d.agent_record(&agent.id)["enrolled_at_ms"].clone();

    // A clean stop, then a crash.
    d.stop_controller();
    d.start_controller();
    d.wait_online(&agent, true, Duration::from_secs(15));
    d.ctl_json(&["ping", &agent.id]);
    d.kill9_controller();
    std::thread::sleep(Duration::from_secs(1));
    d.start_controller();
    d.wait_online(&agent, true, Duration::from_secs(15));
    d.ctl_json(&["ping", &agent.id]);

    assert_eq!(
        std::fs::read(agent.state_dir.join("agent.toml")).unwrap(),
        identity_before,
        "the agent re-enrolled"
    );
    assert_eq!(d.agent_record(&agent.id)["enrolled_at_ms"], enrolled_at);
    assert_eq!(d.ctl_list(&["agents", "list"]).as_array().unwrap().len(), 1);
    assert!(
        agent
            .proc
            .as_ref()
            .unwrap()
            .log_text()
            .contains("reconnecting")
    );
}

#[test]
fn netns_revocation_cuts_the_agent_off() {
    if !require_root("netns_revocation_cuts_the_agent_off") {
        return;
    }
    let d = Deployment::namespaces("");
    let mut agent = d.enroll_agent("a1", &[]);
    let mut other = d.enroll_agent("a2", &[]);
    d.start_agent(&mut agent);
    d.start_agent(&mut other);
    d.wait_online(&agent, true, Duration::from_secs(15));
    d.wait_online(&other, true, Duration::from_secs(15));

    d.ctl(&["agents", "revoke", &agent.id]);
    let rec = d.agent_record(&agent.id);
    assert_eq!(rec["revoked"], true);
    assert_eq!(rec["online"], false, "revoked agent still online");
    // The agent sees its stream closed, and its reconnections are refused at the handshake:
    // once the controller has refused one, the agent must still be offline.
    let refused = cordon_tests::within(Duration::from_secs(15), || {
        let log = std::fs::read_to_string(d.controller_log()).unwrap_or_default();
        log.lines()
            .any(|l| l.contains("refused handshake from a revoked agent") && l.contains(&agent.id))
    });
    assert!(
        refused,
        "the revoked agent's reconnection was never refused"
    );
    assert_eq!(
        d.agent_record(&agent.id)["online"],
        false,
        "revoked agent came back"
    );
    assert!(agent.log_text().contains("revoked"), "{}", agent.log_text());
    let ctl_log = std::fs::read_to_string(d.controller_log()).unwrap();
    assert!(
        ctl_log.contains("refused handshake from a revoked agent"),
        "{ctl_log}"
    );
    let out = d.try_ctl(&["ping", &agent.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    // The other agent is unaffected.
    assert_eq!(d.agent_record(&other.id)["online"], true);
    d.ctl_json(&["ping", &other.id]);
}

#[test]
fn agent_renews_its_certificate_before_expiry() {
    let d = Deployment::loopback("agent_cert_ttl_secs = 10");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    let first = d.agent_record(&agent.id)["certificate_serial"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut serials = vec![first.clone()];
    // Two renewals: past the first certificate's expiry, still online on the third one.
    while serials.len() < 3 && std::time::Instant::now() < deadline {
        let s = d.agent_record(&agent.id)["certificate_serial"]
            .as_str()
            .unwrap()
            .to_string();
        if serials.last() != Some(&s) {
            serials.push(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        serials.len(),
        3,
        "expected two renewals: {serials:?}\n{}",
        agent.log_text()
    );
    d.wait_online(&agent, true, Duration::from_secs(5));
    d.ctl_json(&["ping", &agent.id]);
}

#[test]
fn a_command_for_an_offline_agent_waits_for_it() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    let out = d.try_ctl(&["ping", &agent.id, "--wait", "1"]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(msg.contains("stays queued"), "{msg}");
    let id = msg
        .split_whitespace()
        .find(|w| w.starts_with("cmd-"))
        .unwrap()
        .to_string();
    assert_eq!(d.ctl_json(&["commands", "show", &id])["status"], "pending");

    d.start_agent(&mut agent);
    let ran = poll(Duration::from_secs(15), || {
        let c = d.ctl_json(&["commands", "show", &id]);
        (c["status"] == "succeeded").then_some(c)
    });
    assert!(
        ran.is_some(),
        "queued command never ran: {}",
        d.ctl_json(&["commands", "show", &id])
    );
}

#[test]
fn the_agent_runs_without_root_and_says_what_it_cannot_do() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    let mut cmd = d.agent_command(&agent);
    if cordon_tests::is_root() {
        // Hand the agent's state to nobody and drop root for the run.
        let chown = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(d.dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let mut dropped = Command::new("setpriv");
        dropped
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(bin("cordon-agent"));
        dropped.args(cmd.get_args().collect::<Vec<_>>());
        cmd = dropped;
        let mut perms = Command::new("chmod");
        perms
            .args(["-R", "a+rX"])
            .arg(bin("cordon-agent").parent().unwrap());
        let _ = perms.status();
    }
    agent.proc = Some(cordon_tests::binaries::Proc::spawn(
        "cordon-agent",
        cmd,
        agent.log.clone(),
    ));
    d.wait_online(&agent, true, Duration::from_secs(15));
    let log = agent.log_text();
    assert!(log.contains("running without root"), "{log}");
    assert!(log.contains("network isolation"), "{log}");
    d.ctl_json(&["ping", &agent.id]);

    // Without privileges BPF does not load: the agent falls back to the process connector
    // (which kernels since 6.6 open to every user) or to polling, shows it in its
    // heartbeats, and stores a sensor_degraded notice.
    let rec = cordon_tests::poll(Duration::from_secs(10), || {
        let rec = d.agent_record(&agent.id);
        ["connector", "poll"]
            .contains(&rec["process_sensor"].as_str().unwrap_or_default())
            .then_some(rec)
    })
    .unwrap_or_else(|| panic!("{}", d.agent_record(&agent.id)));
    let sensors = rec["metrics"]["sensors"].to_string();
    assert!(sensors.contains("ebpf unavailable"), "{sensors}");
    let degraded = cordon_tests::poll(Duration::from_secs(10), || {
        d.ctl(&[
            "events",
            "query",
            "--agent",
            &agent.id,
            "--contains",
            "sensor_degraded",
        ])
        .contains(" mode")
        .then_some(())
    });
    assert!(degraded.is_some(), "no sensor_degraded notice stored");
}

#[test]
fn cordonctl_failures_are_clear_and_non_zero() {
    let d = Deployment::loopback("");
    let unknown = d.try_ctl(&["agents", "show", "ffffffffffffffffffffffffffffffff"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no agent"),
        "{}",
        stderr(&unknown)
    );

    let mut no_admin = Command::new(bin("cordonctl"));
    no_admin.env_remove("CORDON_ADMIN").args(["agents", "list"]);
    let out = cordon_tests::binaries::run(no_admin, Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--admin"), "{}", stderr(&out));

    let bad = d.dir.path().join("bad-admin.toml");
    std::fs::write(&bad, "controller = 1\n").unwrap();
    let mut bad_admin = Command::new(bin("cordonctl"));
    bad_admin.arg("--admin").arg(&bad).args(["agents", "list"]);
    let out = cordon_tests::binaries::run(bad_admin, Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad-admin.toml"), "{}", stderr(&out));

    let bad_ttl = d.try_ctl(&["token", "create", "--ttl", "1w"]);
    assert!(!bad_ttl.status.success());
    assert!(
        stderr(&bad_ttl).contains("unknown unit"),
        "{}",
        stderr(&bad_ttl)
    );
}

#[test]
fn stored_events_can_be_queried_and_followed() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));

    // Follow the stream from now on, then restart the agent: its start notice must show up.
    let mut tail = Command::new(bin("cordonctl"));
    tail.env("CORDON_ADMIN", d.data_dir.join("admin.toml"))
        .args(["events", "tail", "--agent", &agent.id, "--json"]);
    let tail_log = d.dir.path().join("tail.log");
    let _tail = cordon_tests::binaries::Proc::spawn("cordonctl tail", tail, tail_log.clone());
    std::thread::sleep(Duration::from_millis(500));
    agent.proc.as_mut().unwrap().terminate();
    d.start_agent(&mut agent);

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let found = loop {
        let q = d.ctl(&[
            "events",
            "query",
            "--agent",
            &agent.id,
            "--kind",
            "notice",
            "--contains",
            "AGENT_STARTED",
            "--since",
            "10m",
            "--json",
        ]);
        let starts: Vec<serde_json::Value> = q
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let tailed = std::fs::read_to_string(&tail_log).unwrap_or_default();
        if starts.len() >= 2 && tailed.contains("agent_started") {
            break starts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "query: {starts:?}\ntail: {tailed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        found
            .iter()
            .all(|e| e["agent_id"] == agent.id.as_str() && e["kind"] == "notice")
    );
    let seqs: Vec<u64> = found.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Heartbeats carry the agent's own cost and backlog; `agents show` has them.
    let rec = poll(Duration::from_secs(10), || {
        let rec = d.agent_record(&agent.id);
        (rec["metrics"]["rss_bytes"].as_u64().unwrap_or(0) > 0).then_some(rec)
    })
    .unwrap_or_else(|| panic!("no metrics in {}", d.agent_record(&agent.id)));
    let m = &rec["metrics"];
    let sensors = m["sensors"].as_array().unwrap();
    assert!(
        sensors
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("file:")),
        "{m}"
    );
    assert_eq!(m["events_lost"], 0, "{m}");
    assert!(d.ctl(&["agents", "show", &agent.id]).contains("events/s"));

    // (Not process events: the query's own exec carries the text.)
    let none = d.ctl(&[
        "events",
        "query",
        "--agent",
        &agent.id,
        "--kind",
        "notice",
        "--contains",
        "no-such-text-anywhere",
    ]);
    assert!(none.trim().is_empty(), "{none}");
    let bad = d.try_ctl(&["events", "query", "--since", "yesterday-ish"]);
    assert!(!bad.status.success());
}

/// The permission bits of `path`.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_database_files_are_private_whatever_the_umask() {
    // The umask most shells have (and that made these files 0644); the controller inherits it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let mut d = Deployment::loopback("");
    let files = ["cordon.db", "cordon.db-wal", "cordon.db-shm"].map(|f| d.data_dir.join(f));
    // An enrolment makes the controller write.
    d.enroll_agent("a1", &[]);
    assert_eq!(files.each_ref().map(|f| mode_of(f)), [0o600; 3]);
    assert_eq!(mode_of(&d.data_dir), 0o700);

    // Files an earlier version left readable by everyone are tightened at the next start.
    d.stop_controller();
    use std::os::unix::fs::PermissionsExt;
    for f in files.iter().filter(|f| f.exists()) {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&d.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    d.start_controller();
    d.enroll_agent("a2", &[]);
    assert_eq!(files.each_ref().map(|f| mode_of(f)), [0o600; 3]);
    assert_eq!(mode_of(&d.data_dir), 0o700);
}

#[test]
fn a_host_cannot_give_itself_a_protection_label_but_a_token_can() {
    let d = Deployment::loopback("");
    let agent = d.enroll_agent("a1", &["cordon.protected=true", "env=lab"]);
    let labels = &d.agent_record(&agent.id)["labels"];
    assert_eq!(labels["env"], "lab", "{labels}");
    assert!(labels.get("cordon.protected").is_none(), "{labels}");
    // The audit entry of the enrolment says what was ignored.
    let audit = d.ctl_list(&["audit"]);
    let enrolment = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "agent.enroll")
        .unwrap_or_else(|| panic!("no enrolment in {audit:#}"));
    assert_eq!(
        enrolment["detail"]["ignored_labels"],
        serde_json::json!(["cordon.protected=true"]),
        "{enrolment:#}"
    );

    // Labels from the token (an administrator's) still protect the host.
    let token = d.token_with_labels(&["cordon.protected=true"]);
    let protected = d.enroll_agent_with(&token, "a2", &["cordon.protected=false"]);
    let labels = &d.agent_record(&protected.id)["labels"];
    assert_eq!(labels["cordon.protected"], "true", "{labels}");
}
