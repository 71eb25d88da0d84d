//! What an attacker or a careless administrator tried from outside, with the real binaries
//! (issue 19's probe): YAML alias bombs, terminal escapes in host-supplied text, a closed
//! pipe, silently substituted arguments, oversized imports, bad indicators and enrolment
//! tokens in telemetry. Each test shows the refusal or the safe result a user would see.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_agent::uplink::enroll::csr_for;
use cordon_proto::channel::tls_channel;
use cordon_proto::enrollment_client::EnrollmentClient;
use cordon_proto::{EnrollRequest, HostFacts, QueryEventsRequest};
use cordon_tests::binaries::bin;
use cordon_tests::deploy::Deployment;
use cordon_tests::repo::detection_config;
use cordon_tests::{poll, require_root};
use cordonctl::client::{AdminConfig, connect};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tonic::transport::Certificate;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// "Billion laughs": ten anchors, each aliasing the one before ten times.
fn laughs(key_indent: &str) -> String {
    let mut text =
        format!("{key_indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("{key_indent}l{i}: &l{i} [{refs}]\n"));
    }
    text
}

/// Peak resident memory of a process, from /proc (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
fn yaml_alias_bombs_are_refused_by_name_and_the_controller_stays_small() {
    let d = Deployment::loopback("");
    let pid = d.controller_pid().unwrap();
    let before = peak_rss_mib(pid);
    let dir = d.dir.path();

    let rule = dir.join("bomb-rule.yml");
    let text = format!(
        "title: laughs\nid: 0d9a6a4e-5a2c-4d61-9a53-000000000001\nlogsource:\n  category: \
         process_creation\n  product: linux\ndetection:\n{}  selection:\n    Image: '/x'\n  \
         condition: selection\n",
        laughs("  ")
    );
    assert!(text.len() < 1024, "{} bytes", text.len());
    std::fs::write(&rule, &text).unwrap();
    let out = d.ctl(&["rules", "import", rule.to_str().unwrap()]);
    assert!(
        out.contains("refused") && out.contains("bomb-rule.yml"),
        "{out}"
    );
    assert!(out.contains("expands to more than"), "{out}");

    let playbook = dir.join("bomb-playbook.yml");
    std::fs::write(
        &playbook,
        format!("name: laughs\n{}steps: []\n", laughs("")),
    )
    .unwrap();
    let out = d.try_ctl(&["playbooks", "apply", playbook.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bomb-playbook.yml"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("expands to more than"),
        "{}",
        stderr(&out)
    );

    // Offline, cordonctl itself refuses the rule without growing.
    let mut test = Command::new(bin("cordonctl"));
    test.args(["rules", "test", rule.to_str().unwrap(), "--event", "{}"]);
    let out = cordon_tests::binaries::run(test, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("expands to more than"),
        "{}",
        stderr(&out)
    );

    let after = peak_rss_mib(pid);
    assert!(
        after < before + 64,
        "controller peak memory went from {before} MiB to {after} MiB"
    );
    d.ctl(&["agents", "list"]);
}

/// Enrols a fake host whose facts hold terminal escapes, straight through the enrolment API.
async fn enrol_hostile_host(d: &Deployment, hostname: &str) -> String {
    let token = d.ctl_json(&["token", "create", "--ttl", "10m"]);
    let ca = std::fs::read_to_string(d.data_dir.join("ca.pem")).unwrap();
    let channel = tls_channel(&d.url, Certificate::from_pem(ca), None)
        .await
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let req = EnrollRequest {
        token: token["token"].as_str().unwrap().to_string(),
        csr_der: csr_for(&key).unwrap(),
        host: Some(HostFacts {
            hostname: hostname.into(),
            os_name: "Debian\u{1b}[8m".into(),
            ..Default::default()
        }),
        labels: Default::default(),
    };
    let resp = EnrollmentClient::new(channel).enroll(req).await.unwrap();
    resp.into_inner().agent_id
}

#[tokio::test(flavor = "multi_thread")]
async fn escape_sequences_from_hosts_are_shown_escaped_and_json_stays_exact() {
    let d = tokio::task::spawn_blocking(|| Deployment::loopback(""))
        .await
        .unwrap();
    let hostname = "web\u{1b}]0;pwned\u{7}\u{1b}[2J\nfake-row";
    let id = enrol_hostile_host(&d, hostname).await;
    let (list, show, json) = tokio::task::spawn_blocking(move || {
        let list = d.ctl(&["agents", "list"]);
        let show = d.ctl(&["agents", "show", &id]);
        let json = d.ctl_json(&["agents", "show", &id]);
        (list, show, json)
    })
    .await
    .unwrap();
    for out in [&list, &show] {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(
            out.contains(r"web\u{1b}]0;pwned\u{7}\u{1b}[2J\nfake-row"),
            "{out}"
        );
    }
    assert!(show.contains(r"Debian\u{1b}[8m"), "{show}");
    // One header and one row: the newline in the hostname did not make a row of its own.
    assert_eq!(list.lines().count(), 2, "{list}");
    assert_eq!(json["host"]["hostname"], hostname);
}

#[test]
fn a_closed_pipe_ends_cordonctl_quietly() {
    let d = Deployment::loopback(&detection_config(""));
    // The reader is gone before cordonctl writes a byte, as with `| head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(bin("cordonctl"))
        .env("CORDON_ADMIN", d.data_dir.join("admin.toml"))
        .args(["rules", "list"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn arguments_out_of_range_are_refused_not_changed() {
    let d = Deployment::loopback("");
    let refused = |args: &[&str], says: &str| {
        let out = d.try_ctl(args);
        assert!(
            !out.status.success(),
            "{args:?} was accepted: {}",
            stdout(&out)
        );
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    };
    refused(&["events", "query", "--limit", "0"], "from 1 to 10000");
    refused(
        &["events", "query", "--limit", "4294967295"],
        "from 1 to 10000",
    );
    refused(&["alerts", "list", "--limit", "0"], "from 1 to 10000");
    refused(&["audit", "--limit", "10001"], "from 1 to 10000");
    refused(&["token", "create", "--uses", "0"], "from 1 to 100000");
    refused(&["token", "create", "--ttl", "0s"], "longer than 0s");
    refused(
        &["block-ip", "x", "192.0.2.0/24", "--ttl", "0"],
        "longer than 0s",
    );
    let long = "x".repeat(60_000);
    refused(
        &["events", "query", "--contains", &long],
        "over the limit of 1024",
    );
    // In range, the value asked for is the value used.
    let t = d.ctl_json(&["token", "create", "--uses", "3", "--ttl", "90s"]);
    assert_eq!(t["uses"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_refuses_what_it_cannot_honour() {
    let d = tokio::task::spawn_blocking(|| Deployment::loopback(""))
        .await
        .unwrap();
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml")).unwrap();
    let mut client = connect(&admin).await.unwrap();
    let query = |limit, contains: &str| QueryEventsRequest {
        limit,
        contains: contains.into(),
        ..Default::default()
    };
    let err = client.query_events(query(20_000, "")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("10000"), "{err}");
    let err = client
        .query_events(query(10, &"%_".repeat(30_000)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("limit of 1024"), "{err}");
    client.query_events(query(10, "x")).await.unwrap();
    tokio::task::spawn_blocking(move || drop(d)).await.unwrap();
}

#[test]
fn large_imports_go_through_in_parts_and_oversized_files_are_named() {
    let d = Deployment::loopback("");
    let dir = d.dir.path();
    // A million domains: about 16 MB, twice the limit of one admin request.
    let iocs = dir.join("feed.txt");
    let text: String = (0..1_000_000)
        .map(|i| format!("d{i}.example.net\n"))
        .collect();
    assert!(text.len() > cordon_proto::limits::ADMIN_MAX_MESSAGE);
    std::fs::write(&iocs, text).unwrap();
    let out = d.ctl(&["iocs", "import", iocs.to_str().unwrap(), "--kind", "domain"]);
    assert!(
        out.contains("1000000 added, 0 already present, 1000000 in all"),
        "{out}"
    );

    let rule = dir.join("huge.yml");
    let filler = format!("# {}\n", "x".repeat(1 << 20)).repeat(50);
    std::fs::write(&rule, format!("title: huge\n{filler}")).unwrap();
    let out = d.try_ctl(&["rules", "import", rule.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("huge.yml") && err.contains("over the limit of 262144"),
        "{err}"
    );
    assert!(!err.contains("h2 protocol error"), "{err}");

    let playbook = dir.join("huge-playbook.yml");
    std::fs::write(&playbook, format!("name: huge\n{filler}")).unwrap();
    let out = d.try_ctl(&["playbooks", "apply", playbook.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("huge-playbook.yml"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("over the limit"), "{}", stderr(&out));
}

#[test]
fn bad_indicators_are_refused_by_line_and_troublesome_ones_warned() {
    let d = Deployment::loopback("");
    let dir = d.dir.path();
    let domains = dir.join("domains.txt");
    std::fs::write(&domains, "evil.example\n# comment\n-bad-.com\n").unwrap();
    let out = d.try_ctl(&[
        "iocs",
        "import",
        domains.to_str().unwrap(),
        "--kind",
        "domain",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("domains.txt:3"), "{}", stderr(&out));
    // Nothing of the refused file was taken.
    std::fs::write(&domains, "evil.example\n").unwrap();
    let out = d.ctl(&[
        "iocs",
        "import",
        domains.to_str().unwrap(),
        "--kind",
        "domain",
    ]);
    assert!(
        out.contains("1 added, 0 already present, 1 in all"),
        "{out}"
    );

    let ips = dir.join("ips.txt");
    std::fs::write(&ips, "203.0.113.9\n127.0.0.1\n::1\n").unwrap();
    let out = d.try_ctl(&["iocs", "import", ips.to_str().unwrap(), "--kind", "ip"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("warning:").count(), 2, "{err}");
    assert!(err.contains("127.0.0.1") && err.contains("::1"), "{err}");
    assert!(stdout(&out).contains("3 added"), "{}", stdout(&out));
}

#[test]
fn an_enrolment_token_on_a_command_line_never_reaches_the_event_store() {
    if !require_root("an_enrolment_token_on_a_command_line_never_reaches_the_event_store") {
        return;
    }
    let d = Deployment::loopback("");
    let mut watcher = d.enroll_agent("watcher", &[]);
    d.start_agent(&mut watcher);
    d.wait_online(&watcher, true, Duration::from_secs(20));
    // The harness enrols with --token on the command line, as the probe did.
    let second = d.enroll_agent("second", &[]);
    let token_exec = poll(Duration::from_secs(20), || {
        let out = d.ctl(&[
            "events",
            "query",
            "--agent",
            &watcher.id,
            "--kind",
            "process",
            "--contains",
            &second.state_dir.display().to_string(),
            "--json",
        ]);
        out.lines()
            .find(|l| l.contains("enroll") && l.contains("--token"))
            .map(str::to_string)
    })
    .expect("the watcher reports the enrolment's exec");
    assert!(token_exec.contains("cdt_[REDACTED]"), "{token_exec}");
    let leaked = d.ctl(&[
        "events",
        "query",
        "--contains",
        "cdt_",
        "--limit",
        "10000",
        "--json",
    ]);
    // Any token: the prefix followed by its secret (this very query's argv holds the prefix).
    let has_token = |line: &str| {
        line.match_indices("cdt_").any(|(at, _)| {
            let secret = &line[at + 4..];
            secret.len() >= 16 && secret.bytes().take(16).all(|b| b.is_ascii_hexdigit())
        })
    };
    assert!(
        leaked.lines().count() > 0,
        "the query finds the redacted enrolment"
    );
    for line in leaked.lines() {
        assert!(!has_token(line), "a token in telemetry: {line}");
    }
}

#[test]
fn until_the_epoch_is_a_bound_like_any_other() {
    if !require_root("until_the_epoch_is_a_bound_like_any_other") {
        return;
    }
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("epoch", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let stored = poll(Duration::from_secs(20), || {
        let n = d
            .ctl(&["events", "query", "--agent", &agent.id])
            .lines()
            .count();
        (n > 0).then_some(n)
    })
    .expect("the agent's events are stored");
    assert!(stored > 0);
    let out = d.ctl(&[
        "events",
        "query",
        "--agent",
        &agent.id,
        "--until",
        "1970-01-01T00:00:00Z",
    ]);
    assert_eq!(out.lines().count(), 0, "{out}");
}
