//! The console's agent pages with the real binaries: a real agent in its own network
//! namespace isolated and released from its page by a responder with a reason (the host's
//! nftables checked, the audit log naming the person and the reason); a viewer offered no
//! action and refused a forged one, a post without the CSRF token refused; labels changed by an
//! admin and refused to a responder; the list's filters; and an enrolment token made on the
//! enrol page that enrols a host.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::console::{Browser, Console};
use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::{eventually, require_root};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn person(d: &Deployment, name: &str, role: &str) {
    d.invite(name, role, &[]);
    d.set_password(name, PASSWORD);
}

fn started(d: &Deployment, name: &str) -> AgentHandle {
    let mut agent = d.enroll_agent(name, &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    agent
}

/// The text inside the element with id `id` (its tags removed), or "" if there is none.
fn text_of(body: &str, id: &str) -> String {
    let Some(at) = body.find(&format!("id=\"{id}\"")) else {
        return String::new();
    };
    let open = body[..at].rfind('<').unwrap();
    let tag: String = body[open + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let start = at + body[at..].find('>').unwrap() + 1;
    let end = start + body[start..].find(&format!("</{tag}>")).unwrap();
    let mut text = String::new();
    let mut in_tag = false;
    for ch in body[start..end].chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// Whether the agent's namespace has Cordon's isolation table, as nftables lists it.
fn cordon_table(ns: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).contains("inet cordon")
}

/// Waits until the agent page's observed isolation starts with `want`.
async fn observed(c: &Console, b: &Browser, agent: &str, want: &str) -> String {
    let path = format!("/agents/{agent}");
    eventually(Duration::from_secs(20), || async {
        let page = c.get(&path, Some(b)).await;
        let seen = text_of(&page.body, "isolation-observed");
        seen.starts_with(want).then_some(page.body)
    })
    .await
    .unwrap_or_else(|| panic!("the page never showed the host {want}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_isolates_and_releases_a_host_from_its_page_with_a_reason() {
    if !require_root("a_responder_isolates_and_releases_a_host_from_its_page_with_a_reason") {
        return;
    }
    let (d, c) = Deployment::namespaces_with_console("");
    person(&d, "alice", "responder");
    let agent = started(&d, "host");
    let ns = d.agent_ns.as_ref().unwrap().name.clone();
    let alice = c.browser("alice", PASSWORD).await;

    let page = c.get(&format!("/agents/{}", agent.id), Some(&alice)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(text_of(&page.body, "state"), "online");
    assert!(page.body.contains("id=\"action-isolate\""));
    observed(&c, &alice, &agent.id, "on the network").await;

    let path = format!("/agents/{}/isolate", agent.id);
    let confirm = c.get(&path, Some(&alice)).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("id=\"confirm\"") && confirm.body.contains("name=\"reason\""));
    assert!(confirm.body.contains(&format!("action=\"{path}\"")));

    let bare = c
        .post(&path, &alice, &[("csrf", &alice.csrf), ("reason", " ")])
        .await;
    assert_eq!(
        bare.status, 400,
        "an action without a reason: {}",
        bare.body
    );
    assert!(!cordon_table(&ns), "refused, yet the host was isolated");

    let reason = "beaconing to a known C2 address";
    let form = [
        ("csrf", alice.csrf.as_str()),
        ("allow", "10.231.0.9/32"),
        ("reason", reason),
    ];
    let sent = c.post(&path, &alice, &form).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let back = sent.location().unwrap().to_string();
    assert!(
        back.starts_with(&format!("/agents/{}?command=cmd-", agent.id)),
        "{back}"
    );
    let shown = c.get(&back, Some(&alice)).await;
    assert!(
        text_of(&shown.body, "notice").contains("isolate"),
        "{}",
        shown.body
    );
    let isolated = observed(&c, &alice, &agent.id, "isolated").await;
    assert!(text_of(&isolated, "isolation").contains("isolated"));
    assert!(
        cordon_table(&ns),
        "the page says isolated, the host has no isolation table"
    );
    assert!(text_of(&isolated, "commands").contains("succeeded: isolated"));

    let entry = d
        .audited("command.isolate")
        .into_iter()
        .find(|e| e["actor"] == "alice")
        .expect("the isolation in the audit log, by alice");
    assert!(entry.to_string().contains(reason), "{entry}");

    let release = format!("/agents/{}/release", agent.id);
    let form = [("csrf", alice.csrf.as_str()), ("reason", "false positive")];
    assert_eq!(c.post(&release, &alice, &form).await.status, 303);
    observed(&c, &alice, &agent.id, "on the network").await;
    assert!(
        !cordon_table(&ns),
        "released, yet the isolation table is there"
    );
    let entry = d
        .audited("command.release")
        .into_iter()
        .find(|e| e["actor"] == "alice")
        .expect("the release in the audit log");
    assert!(entry.to_string().contains("false positive"), "{entry}");

    // The inventory, asked for from the page, is shown on it.
    let inventory = format!("/agents/{}/inventory", agent.id);
    let asked = c.post(&inventory, &alice, &[("csrf", &alice.csrf)]).await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let shown = eventually(Duration::from_secs(20), || async {
        let page = c.get(&format!("/agents/{}", agent.id), Some(&alice)).await;
        let inv = text_of(&page.body, "inventory");
        inv.contains("Collected").then_some(inv)
    })
    .await
    .expect("the inventory on the page");
    assert!(shown.contains("Memory"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_gets_no_actions_and_forged_or_tokenless_posts_change_nothing() {
    if !require_root("a_viewer_gets_no_actions_and_forged_or_tokenless_posts_change_nothing") {
        return;
    }
    let (d, c) = Deployment::namespaces_with_console("");
    person(&d, "vera", "viewer");
    person(&d, "alice", "responder");
    let agent = started(&d, "host");
    let ns = d.agent_ns.as_ref().unwrap().name.clone();
    let vera = c.browser("vera", PASSWORD).await;
    let alice = c.browser("alice", PASSWORD).await;

    let page = c.get(&format!("/agents/{}", agent.id), Some(&vera)).await;
    assert_eq!(page.status, 200);
    assert_eq!(text_of(&page.body, "state"), "online");
    assert!(
        !page.body.contains("action-"),
        "a viewer is offered an action"
    );
    let path = format!("/agents/{}/isolate", agent.id);
    assert_eq!(c.get(&path, Some(&vera)).await.status, 403);

    let forged = [("csrf", vera.csrf.as_str()), ("reason", "forged")];
    let refused = c.post(&path, &vera, &forged).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let no_token = c.post(&path, &alice, &[("reason", "no token")]).await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    let wrong = [("csrf", vera.csrf.as_str()), ("reason", "another's token")];
    assert_eq!(c.post(&path, &alice, &wrong).await.status, 403);

    // Each refusal was answered before anything was sent: no command, nothing desired.
    let commands = d.ctl_list(&["commands", "list", "--agent", &agent.id]);
    assert_eq!(commands, json!([]), "a refused post sent a command");
    assert_eq!(d.agent_record(&agent.id)["isolation_desired"], json!(false));
    assert!(!cordon_table(&ns));
    assert!(
        d.audited("permission.refused")
            .iter()
            .any(|e| e["actor"] == "vera" && e.to_string().contains("/agents/")),
        "the forged isolation is not in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_changed_by_admins_only_and_the_list_filters() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "ada", "admin");
    person(&d, "alice", "responder");
    let prod = d.token_with_labels(&["env=prod"]);
    let mut web = d.enroll_agent_with(&prod, "web", &[]);
    let dev = d.token_with_labels(&["env=dev"]);
    let db = d.enroll_agent_with(&dev, "db", &[]);
    d.start_agent(&mut web);
    d.wait_online(&web, true, Duration::from_secs(20));
    let ada = c.browser("ada", PASSWORD).await;
    let alice = c.browser("alice", PASSWORD).await;

    let labels = format!("/agents/{}/labels", db.id);
    let form = [
        ("csrf", alice.csrf.as_str()),
        ("labels", "env=dev\nrole=database"),
        ("reason", "tagging"),
    ];
    assert_eq!(c.post(&labels, &alice, &form).await.status, 403);
    let page = c.get(&format!("/agents/{}", db.id), Some(&alice)).await;
    assert!(!page.body.contains("save-labels") && !page.body.contains("role=database"));

    let form = [
        ("csrf", ada.csrf.as_str()),
        ("labels", "env=dev\nrole=database"),
        ("reason", "tagging"),
    ];
    let saved = c.post(&labels, &ada, &form).await;
    assert_eq!(
        (saved.status, saved.location()),
        (303, Some(format!("/agents/{}", db.id).as_str()))
    );
    let page = c.get(&format!("/agents/{}", db.id), Some(&ada)).await;
    assert!(
        text_of(&page.body, "labels").contains("role=database"),
        "{}",
        page.body
    );
    assert_eq!(d.agent_record(&db.id)["labels"]["role"], "database");
    let entry = d.audited("agent.labels");
    assert!(
        entry
            .iter()
            .any(|e| e["actor"] == "ada" && e.to_string().contains("tagging"))
    );

    let listed = |query: &'static str| {
        let (c, ada, web, db) = (&c, &ada, &web.id, &db.id);
        async move {
            let page = c.get(&format!("/agents{query}"), Some(ada)).await;
            assert_eq!(page.status, 200, "{query}: {}", page.body);
            (
                page.body.contains(web.as_str()),
                page.body.contains(db.as_str()),
            )
        }
    };
    assert_eq!(listed("").await, (true, true));
    assert_eq!(
        listed("?label=env%3Dprod&state=&sensor=").await,
        (true, false)
    );
    assert_eq!(listed("?label=role").await, (false, true));
    assert_eq!(listed("?state=online").await, (true, false));
    assert_eq!(listed("?state=offline").await, (false, true));
    assert_eq!(listed("?state=isolated").await, (false, false));
    let mode = eventually(Duration::from_secs(20), || async {
        let m = d.agent_record(&web.id)["process_sensor"]
            .as_str()?
            .to_string();
        (!m.is_empty()).then_some(m)
    })
    .await
    .expect("the agent reports its process sensor");
    let page = c.get(&format!("/agents?sensor={mode}"), Some(&ada)).await;
    assert!(page.body.contains(&web.id) && !page.body.contains(&db.id));

    // The overview shows the events the running agent sends as a rate.
    let rate = eventually(Duration::from_secs(30), || async {
        Command::new("/bin/true").status().unwrap();
        let page = c.get("/", Some(&ada)).await;
        let rate: f64 = text_of(&page.body, "events_per_sec").parse().unwrap();
        (rate > 0.0).then_some(rate)
    })
    .await;
    assert!(rate.is_some(), "the overview shows no events per second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrol_page_makes_a_token_that_enrols_a_host() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "ada", "admin");
    person(&d, "alice", "responder");
    let alice = c.browser("alice", PASSWORD).await;
    assert_eq!(c.get("/enrol", Some(&alice)).await.status, 403);
    let refused = [("csrf", alice.csrf.as_str()), ("uses", "1")];
    assert_eq!(c.post("/enrol", &alice, &refused).await.status, 403);

    let ada = c.browser("ada", PASSWORD).await;
    let form = c.get("/enrol", Some(&ada)).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("action=\"/enrol\""));
    let fields = [
        ("csrf", ada.csrf.as_str()),
        ("labels", "site=lab"),
        ("uses", "1"),
        ("ttl", "10"),
    ];
    let made = c.post("/enrol", &ada, &fields).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let command = text_of(&made.body, "enrol-command");
    assert!(
        made.body.contains(&format!("data-copy=\"{command}\"")),
        "a copy button with the command: {}",
        made.body
    );
    let word = |prefix: &str| {
        let words: Vec<&str> = command.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.starts_with(prefix))
            .map(|i| match words[i].strip_prefix(prefix) {
                Some(v) if !v.is_empty() => v.to_string(),
                _ => words[i + 1].to_string(),
            })
            .unwrap_or_else(|| panic!("{prefix} in {command}"))
    };
    let token = json!({
        "token": word("CORDON_TOKEN="),
        "controller_url": word("--controller"),
        "ca_fingerprint": word("--ca-fingerprint"),
    });
    assert!(command.contains("cordon-agent enroll"), "{command}");
    let host = d.enroll_agent_with(&token, "fresh", &[]);
    assert_eq!(d.agent_record(&host.id)["labels"]["site"], "lab");
    assert!(
        d.audited("token.create")
            .iter()
            .any(|e| e["actor"] == "ada"),
        "the token is in the audit log as ada's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_needs_a_second_person_is_shown_as_pending() {
    let (d, c) = Deployment::with_console("[people]\nfour_eyes = true\n", "");
    person(&d, "alice", "responder");
    let token = d.token_with_labels(&["cordon.protected=true"]);
    let host = d.enroll_agent_with(&token, "protected", &[]);
    let alice = c.browser("alice", PASSWORD).await;

    let path = format!("/agents/{}/isolate", host.id);
    let confirm = c.get(&path, Some(&alice)).await;
    assert!(confirm.body.contains("Four eyes is on"), "{}", confirm.body);
    let form = [
        ("csrf", alice.csrf.as_str()),
        ("reason", "suspicious login"),
    ];
    let sent = c.post(&path, &alice, &form).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let back = sent.location().unwrap().to_string();
    assert!(back.contains("?pending=apr"), "{back}");
    let page = c.get(&back, Some(&alice)).await;
    let notice = text_of(&page.body, "notice");
    assert!(
        notice.starts_with("Pending approval: isolate") && notice.contains("Nothing has been sent"),
        "{notice}"
    );
    assert!(!text_of(&page.body, "isolation-observed").contains("isolated"));
    let commands = d.ctl_list(&["commands", "list", "--agent", &host.id]);
    assert_eq!(
        commands,
        json!([]),
        "the isolation went out without approval"
    );
    let pending = d.ctl_list(&["approvals", "list"]);
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
}
