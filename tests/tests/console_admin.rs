//! The web console's administration pages with the real binaries on loopback, through a real
//! HTTPS client that trusts the controller's CA: rules (roles on the page and on forged
//! requests, disabling, uploading, testing on an event), playbooks (enabled and dry run), the
//! audit log (filters and chain verification) and users (an invite taken up in the console,
//! a disabled person, the last admin kept, the page for admins only). Each change is checked
//! where a person would check it: `cordonctl`, the audit log, or the page.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::console::{Browser, Console, Reply};
use cordon_tests::deploy::Deployment;
use cordon_tests::repo;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

/// `name` with `role` and a console password.
fn person(d: &Deployment, name: &str, role: &str) {
    d.invite(name, role, &[]);
    d.set_password(name, PASSWORD);
}

/// A deployment with its console, the shared-memory rule imported, an admin `ada` and a
/// viewer `vic`, both signed in.
async fn setting() -> (Deployment, Console, Browser, Browser) {
    let (d, c) = Deployment::with_console("", "");
    d.ctl(&["rules", "import", &rule_file()]);
    person(&d, "ada", "admin");
    person(&d, "vic", "viewer");
    let ada = c.browser("ada", PASSWORD).await;
    let vic = c.browser("vic", PASSWORD).await;
    (d, c, ada, vic)
}

fn rule_file() -> String {
    format!("{}/linux/cordon_exec_from_dev_shm.yml", repo::path("rules"))
}

fn shm_rule() -> String {
    repo::rule_id("exec_from_dev_shm")
}

/// The rule `id` as `cordonctl rules list` shows it.
fn listed_rule(d: &Deployment, id: &str) -> Option<Value> {
    let all = d.ctl_list(&["rules", "list"]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
}

fn csrf(b: &Browser) -> (&'static str, &str) {
    ("csrf", b.csrf.as_str())
}

fn assert_page(r: &Reply, status: u16, text: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.body.contains(text), "{text:?} in {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_the_rules_but_cannot_change_them() {
    let (d, c, _, vic) = setting().await;
    let id = shm_rule();
    let page = c.get("/rules", Some(&vic)).await;
    assert_page(&page, 200, "Program Run From Shared Memory");
    assert!(page.body.contains("<tbody id=\"rules\">"));
    assert!(
        !page.body.contains(&format!("/rules/{id}/enabled")),
        "no switch"
    );
    assert!(!page.body.contains("/rules/upload"), "no upload form");

    let path = format!("/rules/{id}/enabled");
    let forged = c
        .post(&path, &vic, &[csrf(&vic), ("enabled", "false")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(listed_rule(&d, &id).unwrap()["enabled"], true);
    let yaml = std::fs::read_to_string(rule_file()).unwrap();
    let other = yaml.replace(&id, "5a4c2b7e-0d3f-4e8a-9b1c-2d3e4f5a6b7c");
    let forged = c
        .post("/rules/upload", &vic, &[csrf(&vic), ("yaml", &other)])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(d.ctl_list(&["rules", "list"]).as_array().unwrap().len(), 1);
    let refusals = d.audited("permission.refused");
    assert!(refusals.iter().any(|e| e["actor"] == "vic"), "{refusals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_disables_a_rule_and_the_audit_log_names_them() {
    let (d, c, ada, _) = setting().await;
    let id = shm_rule();
    let page = c.get("/rules", Some(&ada)).await;
    assert!(
        page.body
            .contains(&format!("action=\"/rules/{id}/enabled\""))
    );
    let path = format!("/rules/{id}/enabled");
    let off = c
        .post(&path, &ada, &[csrf(&ada), ("enabled", "false")])
        .await;
    assert_eq!((off.status, off.location()), (303, Some("/rules")));
    assert_eq!(listed_rule(&d, &id).unwrap()["enabled"], false);
    let page = c.get("/rules", Some(&ada)).await;
    assert!(page.body.contains("disabled") && page.body.contains(">Enable<"));
    let entries = d.audited("rule.disable");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"], "ada");
    assert_eq!(entries[0]["target"], format!("rule:{id}"));

    // The audit page, filtered by actor, lists it; verification finds the chain intact.
    let mine = c.get("/audit?actor=ada&action=rule.", Some(&ada)).await;
    assert_page(&mine, 200, "rule.disable");
    let rows = tbody(&mine.body, "audit");
    assert!(
        !rows.contains("rules.import") && !rows.contains("user.invite"),
        "{rows}"
    );
    let theirs = c.get("/audit?actor=vic", Some(&ada)).await;
    assert!(!tbody(&theirs.body, "audit").contains("rule.disable"));
    let verified = c.post("/audit/verify", &ada, &[csrf(&ada)]).await;
    assert_page(&verified, 200, "id=\"audit-verify\"");
    let section = verified.body.split("id=\"audit-verify\"").nth(1).unwrap();
    assert!(
        section.contains("data-ok=\"true\"") && section.contains("Intact"),
        "{section}"
    );
    let bad = c.get("/audit?since=yesterday", Some(&ada)).await;
    assert_page(&bad, 400, "yesterday");
}

/// The rows of `<tbody id="ID">`.
fn tbody<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body.find(&format!("<tbody id=\"{id}\">")).unwrap();
    let rest = &body[start..];
    &rest[..rest.find("</tbody>").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_adds_a_good_rule_and_a_broken_one_adds_nothing() {
    let (d, c, ada, _) = setting().await;
    let yaml = std::fs::read_to_string(rule_file()).unwrap();
    let new_id = "5a4c2b7e-0d3f-4e8a-9b1c-2d3e4f5a6b7c";
    let good = yaml.replace(&shm_rule(), new_id).replace(
        "Program Run From Shared Memory",
        "Uploaded Through The Console",
    );
    let up = c
        .post("/rules/upload", &ada, &[csrf(&ada), ("yaml", &good)])
        .await;
    assert_page(&up, 200, "is loaded and enabled");
    let added = listed_rule(&d, new_id).expect("the uploaded rule is stored");
    assert_eq!(added["title"], "Uploaded Through The Console");
    assert_eq!(added["enabled"], true);

    let broken = good
        .replace(new_id, "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6")
        .replace("condition: selection", "condition: selection and nowhere");
    let refused = c
        .post("/rules/upload", &ada, &[csrf(&ada), ("yaml", &broken)])
        .await;
    assert_page(&refused, 400, "The rule was not added");
    assert!(
        refused.body.contains("nowhere"),
        "names the problem: {}",
        refused.body
    );
    assert_eq!(d.ctl_list(&["rules", "list"]).as_array().unwrap().len(), 2);
    assert!(listed_rule(&d, "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_tester_says_match_or_no_match() {
    let (d, c, _, vic) = setting().await;
    let id = shm_rule();
    let test = |event: &'static str| {
        let (c, vic, id) = (&c, &vic, id.clone());
        async move {
            let form = [
                csrf(vic),
                ("rule", id.as_str()),
                ("yaml", ""),
                ("event", event),
            ];
            c.post("/rules/test", vic, &form).await
        }
    };
    let hit = test(r#"{"Image": "/dev/shm/.x", "CommandLine": "/dev/shm/.x -d"}"#).await;
    assert_page(&hit, 200, "data-matched=\"true\"");
    assert!(hit.body.contains("Match: "));
    assert!(
        hit.body.contains("on their own: selection<"),
        "{}",
        hit.body
    );
    let miss = test(r#"{"Image": "/usr/bin/ls", "CommandLine": "ls"}"#).await;
    assert_page(&miss, 200, "data-matched=\"false\"");
    assert!(miss.body.contains("No match: "));
    let listed = r#"{"seq": 9, "time_ms": 1, "process": {"kind": "exec", "exe": "/dev/shm/.x"}}"#;
    assert_page(&test(listed).await, 200, "data-matched=\"true\"");
    let bad = test("{not json").await;
    assert_page(&bad, 400, "the event is not valid");

    let pasted = std::fs::read_to_string(rule_file()).unwrap();
    let form = [
        csrf(&vic),
        ("rule", ""),
        ("yaml", pasted.as_str()),
        ("event", r#"{"Image": "/dev/shm/run"}"#),
    ];
    let hit = c.post("/rules/test", &vic, &form).await;
    assert_page(&hit, 200, "data-matched=\"true\"");
    assert!(
        d.audited("rules.import").len() == 1,
        "testing stores nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbooks_are_switched_on_and_off_and_into_dry_run() {
    let (d, c, ada, vic) = setting().await;
    let file = format!("{}/download-exec.yml", repo::path("playbooks"));
    d.ctl(&["playbooks", "apply", &file]);
    let listed = || {
        let all = d.ctl_list(&["playbooks", "list"]);
        all.as_array().unwrap()[0].clone()
    };
    assert_eq!(
        (listed()["enabled"].clone(), listed()["dry_run"].clone()),
        (true.into(), false.into())
    );
    let page = c.get("/playbooks", Some(&vic)).await;
    assert_page(&page, 200, "download-exec");
    assert!(
        !page
            .body
            .contains("action=\"/playbooks/download-exec/enabled\"")
    );
    let forged = c
        .post(
            "/playbooks/download-exec/dry-run",
            &vic,
            &[csrf(&vic), ("on", "true")],
        )
        .await;
    assert_eq!(forged.status, 403);

    let off = c
        .post(
            "/playbooks/download-exec/enabled",
            &ada,
            &[csrf(&ada), ("on", "false")],
        )
        .await;
    assert_eq!((off.status, off.location()), (303, Some("/playbooks")));
    assert_eq!(listed()["enabled"], false);
    let dry = c
        .post(
            "/playbooks/download-exec/dry-run",
            &ada,
            &[csrf(&ada), ("on", "true")],
        )
        .await;
    assert_eq!(dry.status, 303, "{}", dry.body);
    let now = listed();
    assert_eq!(
        (now["dry_run"].clone(), now["enabled"].clone()),
        (true.into(), false.into())
    );
    let live = c
        .post(
            "/playbooks/download-exec/dry-run",
            &ada,
            &[csrf(&ada), ("on", "false")],
        )
        .await;
    assert_eq!(live.status, 303);
    assert_eq!(listed()["dry_run"], false);
    let page = c.get("/playbooks", Some(&ada)).await;
    assert!(page.body.contains("Turn dry run on") && page.body.contains(">Enable<"));
    let entries = d.audited("playbook.dry_run");
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["actor"] == "ada"));
    let missing = c
        .post(
            "/playbooks/nothing/enabled",
            &ada,
            &[csrf(&ada), ("on", "true")],
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_person_takes_up_the_invite_and_signs_in_with_their_role() {
    let (d, c, ada, vic) = setting().await;
    let users = c.get("/users", Some(&ada)).await;
    assert_page(&users, 200, "<tbody id=\"users\">");
    assert!(users.body.contains("data-user=\"vic\""));
    let made = c
        .post(
            "/users/invite",
            &ada,
            &[csrf(&ada), ("name", "nia"), ("role", "analyst")],
        )
        .await;
    assert_page(&made, 200, "id=\"invite-code\"");
    let code = made.body.split("id=\"invite-code\">").nth(1).unwrap();
    let code = code.split('<').next().unwrap().to_string();
    assert!(
        made.body.contains(&format!("https://{}/invite", c.addr)),
        "{}",
        made.body
    );
    assert!(made.body.contains("cordonctl login --controller"));
    let again = c.get("/users", Some(&ada)).await;
    assert!(!again.body.contains(&code), "the code is shown once");

    let differ = [
        ("code", code.as_str()),
        ("password", PASSWORD),
        ("again", "something else"),
    ];
    assert_page(&c.post_public("/invite", &differ).await, 400, "differ");
    let short = [
        ("code", code.as_str()),
        ("password", "short"),
        ("again", "short"),
    ];
    assert_page(&c.post_public("/invite", &short).await, 400, "12 to");
    let form = [
        ("code", code.as_str()),
        ("password", PASSWORD),
        ("again", PASSWORD),
    ];
    let taken = c.post_public("/invite", &form).await;
    assert_page(&taken, 200, "Welcome, nia");
    let twice = c.post_public("/invite", &form).await;
    assert_page(&twice, 400, "already been used");

    let nia = c.browser("nia", PASSWORD).await;
    let home = c.get("/", Some(&nia)).await;
    assert!(home.body.contains("nia (analyst)"), "{}", home.body);
    assert!(
        !home.body.contains("href=\"/users\""),
        "no Users link for an analyst"
    );
    assert_eq!(c.get("/users", Some(&nia)).await.status, 403);
    assert_eq!(c.get("/users", Some(&vic)).await.status, 403);
    let accepted = d.audited("user.accept_invite");
    assert!(accepted.iter().all(|e| e["actor"] == "nia"), "{accepted:?}");
    let outcomes: Vec<&str> = accepted
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.len(),
        3,
        "the short password, the one that worked, the reuse"
    );
    assert!(outcomes[0].starts_with("refused") && outcomes[1] == "ok");
    assert!(outcomes[2].contains("already been used"), "{outcomes:?}");
    let invited = d.audited("user.invite");
    assert!(
        invited
            .iter()
            .any(|e| e["actor"] == "ada" && e["target"] == "user:nia")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_person_is_signed_out_and_the_last_admin_stays() {
    let (d, c, ada, vic) = setting().await;
    let off = c
        .post(
            "/users/vic/state",
            &ada,
            &[csrf(&ada), ("state", "disabled")],
        )
        .await;
    assert_eq!((off.status, off.location()), (303, Some("/users")));
    let page = c.get("/rules", Some(&vic)).await;
    assert_eq!(
        (page.status, page.location()),
        (303, Some("/login")),
        "session ended"
    );
    assert_eq!(c.sign_in("vic", PASSWORD, "").await.status, 401);
    let listed = d.ctl_json(&["users", "show", "vic"]);
    assert_eq!(listed["state"], "disabled");

    let promoted = c
        .post(
            "/users/vic/role",
            &ada,
            &[csrf(&ada), ("role", "responder")],
        )
        .await;
    assert_eq!(promoted.status, 303);
    assert_eq!(d.ctl_json(&["users", "show", "vic"])["role"], "responder");
    let bad = c
        .post("/users/vic/role", &ada, &[csrf(&ada), ("role", "overlord")])
        .await;
    assert_page(&bad, 400, "unknown role");

    // With the first admin disabled, ada is the last: she cannot step down.
    let first = c
        .post(
            "/users/admin/state",
            &ada,
            &[csrf(&ada), ("state", "disabled")],
        )
        .await;
    assert_eq!(first.status, 303, "{}", first.body);
    let down = c
        .post("/users/ada/role", &ada, &[csrf(&ada), ("role", "viewer")])
        .await;
    assert_page(&down, 400, "without an enabled admin");
    assert!(down.body.contains("id=\"users-problem\""));
    let back = c
        .post(
            "/users/admin/state",
            &ada,
            &[csrf(&ada), ("state", "enabled")],
        )
        .await;
    assert_eq!(back.status, 303);
    assert_eq!(d.ctl_json(&["users", "show", "ada"])["role"], "admin");
    let disabled = d.audited("user.disable");
    assert!(
        disabled
            .iter()
            .any(|e| e["actor"] == "ada" && e["target"] == "user:vic")
    );
}
