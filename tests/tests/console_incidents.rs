//! The console's incidents, process trees, events search and live approvals, with the real
//! binaries: an attack run on the agent's host shows up on the incidents list's live stream,
//! its page shows the alert, the timeline and the process tree from the attacking command's
//! parent shell down; a note added on the page reaches the live timeline and the audit log;
//! the reports download; a viewer has no forms and a forged POST is refused; the events
//! search finds, pages and shows JSON; a new pending approval reaches the approvals queue live.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::console::{Browser, Console, Events};
use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::repo::detection_config;
use cordon_tests::require_root;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

const PASSWORD: &str = "correct horse battery";
/// The rule the attack raises (rules/linux/cordon_base64_decode_to_shell.yml).
const RULE: &str = "28f2ebcf-d518-5f1e-b7e6-dfbceceab097";

/// The incident of the alert `rule` raised on `agent`, once it is stored.
fn incident_of(d: &Deployment, agent: &AgentHandle, rule: &str) -> String {
    let found = cordon_tests::poll(Duration::from_secs(30), || {
        let alerts = d.ctl_list(&["alerts", "list", "--agent", &agent.id, "--limit", "1000"]);
        let a = alerts
            .as_array()?
            .iter()
            .find(|a| a["rule_id"] == rule)?
            .clone();
        Some(a["incident_id"].as_str()?.to_string())
    });
    found.unwrap_or_else(|| panic!("no alert of {rule}"))
}

fn person(d: &Deployment, name: &str, role: &str) {
    d.invite(name, role, &[]);
    d.set_password(name, PASSWORD);
}

/// A deployment with Cordon's rules and the console, and a running agent on this host.
fn deployment() -> (Deployment, Console, AgentHandle) {
    let (d, c) = Deployment::with_console(&detection_config(""), "");
    let mut agent = d.enroll_agent("web", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    (d, c, agent)
}

/// The next event of `events` containing every one of `wanted`, within `timeout`.
async fn wait_event(events: &mut Events, wanted: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = events.next(left).await;
        let e = e.unwrap_or_else(|| panic!("no event with {wanted:?}"));
        if wanted.iter().all(|w| e.contains(w)) {
            return e;
        }
    }
}

/// The text of `body` from `start` to the next `end`.
fn section<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {body}"));
    let rest = &body[from..];
    &rest[..rest[start.len()..]
        .find(end)
        .map_or(rest.len(), |n| n + start.len())]
}

/// The first link in `body` to a path starting with `prefix`, as the browser would follow it.
fn href_to(body: &str, prefix: &str) -> String {
    href_after(body, &format!("href=\"{prefix}"))
}

/// An `href` in `body` after `marker`, as the browser would follow it.
fn href_after(body: &str, marker: &str) -> String {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[at..];
    let start = rest.find("href=\"").unwrap() + 6;
    let end = rest[start..].find('"').unwrap();
    rest[start..start + end].replace("&amp;", "&")
}

/// The attack: a shell runs a command that decodes base64 into another shell. The outer
/// shell's own command line does not match the rule (it takes the command from its
/// environment), so the alert's process is the inner one, whose parent is the outer.
fn attack(marker: &str) {
    let inner = format!("echo aWQK | base64 -d | sh >/dev/null # {marker}");
    let out = Command::new("/bin/sh")
        .args(["-c", "/bin/sh -c \"$CMD\"; true outer-shell"])
        .env("CMD", inner)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_reaches_the_incidents_list_live_with_its_alert_timeline_and_tree() {
    if !require_root("an_attack_reaches_the_incidents_list_live_with_its_alert_timeline_and_tree") {
        return;
    }
    let (d, c, agent) = deployment();
    person(&d, "ana", "analyst");
    person(&d, "vera", "viewer");
    let ana = c.browser("ana", PASSWORD).await;
    let (head, mut live) = c.events("/live/incidents?status=&severity=", &ana).await;
    assert_eq!(head.status, 200);

    let marker = format!("cordon-console-{}", std::process::id());
    attack(&marker);
    let id = incident_of(&d, &agent, RULE);
    let row = wait_event(&mut live, &["event: row", &id], Duration::from_secs(15)).await;
    let data: Value = serde_json::from_str(row.split("data: ").nth(1).unwrap()).unwrap();
    let link = format!("href=\"/incidents/{id}\"");
    assert!(data["html"].as_str().unwrap().contains(&link), "{data}");
    let list = c.get("/incidents", Some(&ana)).await;
    assert!(
        list.body.contains(&link),
        "the list has it too: {}",
        list.body
    );

    let page = c.get(&format!("/incidents/{id}"), Some(&ana)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let alerts = section(&page.body, "id=\"alerts\"", "<h2");
    for shown in ["Base64 Decoded Into a Shell", RULE, "Cordon", &marker] {
        assert!(alerts.contains(shown), "{shown} in {alerts}");
    }
    let timeline = section(&page.body, "id=\"timeline\"", "</ol>");
    assert!(timeline.contains("<li"), "{timeline}");
    let tree = section(&page.body, "id=\"process-tree\"", "<h2");
    let parent = tree
        .find("outer-shell")
        .unwrap_or_else(|| panic!("the parent shell in {tree}"));
    let current = tree
        .find("aria-current=\"true\"")
        .expect("the process is marked");
    let me = tree
        .find("base64 -d | sh &gt;/dev/null")
        .expect("the attacking command");
    assert!(parent < current && current < me, "{tree}");

    note_reaches_the_timeline_and_the_audit_log(&d, &c, &ana, &id).await;
    reports_download(&c, &ana, &id).await;
    a_viewer_cannot_triage(&c, &c.browser("vera", PASSWORD).await, &id).await;
    drop(agent);
}

async fn note_reaches_the_timeline_and_the_audit_log(
    d: &Deployment,
    c: &Console,
    ana: &Browser,
    id: &str,
) {
    let (_, mut timeline) = c.events(&format!("/live/incidents/{id}"), ana).await;
    let note = "checked with the host's owner";
    let form = [("csrf", ana.csrf.as_str()), ("text", note)];
    let added = c.post(&format!("/incidents/{id}/note"), ana, &form).await;
    let back = format!("/incidents/{id}");
    assert_eq!(
        (added.status, added.location()),
        (303, Some(back.as_str())),
        "{}",
        added.body
    );
    wait_event(
        &mut timeline,
        &["event: row", note, "ana"],
        Duration::from_secs(15),
    )
    .await;
    let page = c.get(&back, Some(ana)).await;
    assert!(section(&page.body, "id=\"timeline\"", "</ol>").contains(note));
    let all = d.ctl_list(&["audit", "--limit", "1000"]);
    let noted: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "incident.note")
        .collect();
    assert_eq!(noted.len(), 1);
    assert_eq!(noted[0]["actor"], "ana");
    assert_eq!(noted[0]["target"], format!("incident:{id}"));
}

async fn reports_download(c: &Console, ana: &Browser, id: &str) {
    let page = c.get(&format!("/incidents/{id}"), Some(ana)).await;
    let md = c
        .get(&href_after(&page.body, "id=\"report-md\""), Some(ana))
        .await;
    assert_eq!(md.status, 200);
    assert_eq!(
        md.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    let disposition = format!("attachment; filename=\"incident-{id}.md\"");
    assert_eq!(md.header("content-disposition"), Some(disposition.as_str()));
    assert!(md.body.starts_with("# Incident report: "), "{}", md.body);
    assert!(md.body.contains(&format!("`{id}`")) && md.body.contains("## Timeline"));

    let json = c
        .get(&href_after(&page.body, "id=\"report-json\""), Some(ana))
        .await;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let disposition = format!("attachment; filename=\"incident-{id}.json\"");
    assert_eq!(
        json.header("content-disposition"),
        Some(disposition.as_str())
    );
    let report: Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(report["incident"]["id"], id);
    // cordonctl's --json shape: the triggering event's kind by name, not number.
    let event = &report["incident"]["alerts"][0]["event"];
    assert_eq!(event["process"]["kind"], "exec", "{event}");
}

async fn a_viewer_cannot_triage(c: &Console, vera: &Browser, id: &str) {
    let page = c.get(&format!("/incidents/{id}"), Some(vera)).await;
    assert_eq!(page.status, 200);
    for form in ["add-note", "set-status", "set-severity"] {
        assert!(!page.body.contains(form), "a viewer has no {form} form");
    }
    let forged = [("csrf", vera.csrf.as_str()), ("text", "forged by vera")];
    let refused = c
        .post(&format!("/incidents/{id}/note"), vera, &forged)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let status = [("csrf", vera.csrf.as_str()), ("status", "resolved")];
    let refused = c
        .post(&format!("/incidents/{id}/status"), vera, &status)
        .await;
    assert_eq!(refused.status, 403);
    let page = c.get(&format!("/incidents/{id}"), Some(vera)).await;
    assert!(!page.body.contains("forged by vera"));
    assert!(section(&page.body, "id=\"status\"", "</dd>").contains("open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_search_finds_pages_and_shows_each_event_as_json() {
    if !require_root("events_search_finds_pages_and_shows_each_event_as_json") {
        return;
    }
    let (d, c, agent) = deployment();
    person(&d, "vera", "viewer");
    let vera = c.browser("vera", PASSWORD).await;
    let marker = format!("cordon-search-{}", std::process::id());
    for i in 0..60 {
        let out = Command::new("/bin/echo")
            .arg(format!("{marker}-{i}"))
            .output();
        assert!(out.unwrap().status.success());
    }
    d.barrier(&agent, "search");

    let first = c
        .get(&format!("/events?text={marker}&kind=process"), Some(&vera))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let count = |body: &str| body.matches("<li class=\"event\"").count();
    assert_eq!(count(&first.body), 50, "one page");
    let newest = section(&first.body, "<li class=\"event\"", "</li>");
    assert!(
        newest.contains(&format!("{marker}-59")),
        "newest first: {newest}"
    );
    assert!(newest.contains("<details>") && newest.contains("<pre>"));
    assert!(newest.contains("&quot;argv&quot;"), "its JSON: {newest}");
    assert!(newest.contains(&format!("/agents/{}/tree?pid=", agent.id)));
    assert!(!newest.contains("/kill?"), "a viewer is not offered kill");

    let older = c
        .get(&href_after(&first.body, "id=\"older\""), Some(&vera))
        .await;
    assert_eq!(count(&older.body), 10, "the rest: {}", older.body);
    assert!(older.body.contains(&format!("{marker}-0 ")), "the oldest");
    assert!(
        !older.body.contains(&format!("{marker}-59")),
        "nothing twice"
    );
    let newer = c
        .get(&href_after(&older.body, "id=\"newer\""), Some(&vera))
        .await;
    assert_eq!(count(&newer.body), 50, "back to the first page");
    assert!(newer.body.contains(&format!("{marker}-10")));

    let tree = c.get(&href_to(newest, "/agents/"), Some(&vera)).await;
    assert_eq!(tree.status, 200, "{}", tree.body);
    assert!(
        tree.body.contains("aria-current=\"true\"") && tree.body.contains(&format!("{marker}-59"))
    );

    let long = "x".repeat(1025);
    let refused = c.get(&format!("/events?text={long}"), Some(&vera)).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("over the limit of 1024"),
        "{}",
        refused.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pending_approval_reaches_the_queue_live() {
    let (d, c) = Deployment::with_console("[people]\nfour_eyes = true\n", "");
    let alice = d.member("alice", "approver", &[]);
    person(&d, "bob", "approver");
    let bob = c.browser("bob", PASSWORD).await;
    let page = c.get("/approvals", Some(&bob)).await;
    assert!(
        page.body.contains("id=\"approvals\"")
            && page.body.contains("data-live=\"/live/approvals\"")
    );
    let (head, mut live) = c.events("/live/approvals", &bob).await;
    assert_eq!(head.status, 200);
    let id = d.pending_isolation(&alice);
    let row = wait_event(&mut live, &["event: row", &id], Duration::from_secs(15)).await;
    assert!(
        row.contains("value=\\\"approve\\\""),
        "bob may decide it: {row}"
    );
    let form = [
        ("csrf", bob.csrf.as_str()),
        ("decision", "deny"),
        ("reason", "not now"),
        ("back", "//evil.example/"),
    ];
    let bad = c
        .post(&format!("/approvals/{id}/decide"), &bob, &form)
        .await;
    assert_eq!(bad.status, 400, "back must be local");
    let form = [
        ("csrf", bob.csrf.as_str()),
        ("decision", "deny"),
        ("reason", "not now"),
        ("back", "/incidents"),
    ];
    let denied = c
        .post(&format!("/approvals/{id}/decide"), &bob, &form)
        .await;
    assert_eq!(
        (denied.status, denied.location()),
        (303, Some("/incidents"))
    );
    let gone = wait_event(&mut live, &["event: gone"], Duration::from_secs(15)).await;
    assert!(gone.contains(&id), "{gone}");
}
