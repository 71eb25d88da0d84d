//! Hot reload with a real controller: rule and playbook files added, changed, broken and
//! removed under the configured directories are applied as `rules import` / `playbooks
//! apply` would (audited with actor `reload`); a broken file is refused and the previous
//! version stays in force; a removed file disables what it held, and writing it again puts it
//! back in force.

use cordon_proto::{
    Event, ListAuditRequest, ListPlaybooksRequest, ListRulesRequest, PlaybookRecord, ProcessEvent,
    RuleRecord, event, process_event,
};
use cordon_tests::inproc::TestController;
use cordon_tests::logs::Captured;
use std::path::Path;
use std::time::Duration;

const RULE_ID: &str = "0b9a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
/// Bound on waiting for a change to show (the watcher applies within a second).
const WAIT: Duration = Duration::from_secs(15);

fn rule(title: &str, level: &str, image: &str) -> String {
    format!(
        "title: {title}\nid: {RULE_ID}\nstatus: test\nauthor: Cordon tests\nlogsource:\n  category: process_creation\n  product: linux\ndetection:\n  sel:\n    Image|endswith: '{image}'\n  condition: sel\nlevel: {level}\n"
    )
}

fn playbook(description: &str) -> String {
    format!(
        "name: reloaded\ndescription: {description}\ntrigger:\n  rules: [{RULE_ID}]\nsteps:\n  - action: set_incident\n    severity: critical\n"
    )
}

fn exec(image: &str) -> Event {
    Event {
        seq: 1,
        time_ms: 0,
        body: Some(event::Body::Process(ProcessEvent {
            kind: process_event::Kind::Exec as i32,
            exe: image.into(),
            argv: vec![image.into()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Writes through a temp file and a rename, as editors and config management do.
fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Polls `probe` until it gives a value, within [`WAIT`].
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    logs: &Captured,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the log:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rules(c: &TestController) -> Vec<RuleRecord> {
    let mut admin = c.admin().await;
    admin
        .list_rules(ListRulesRequest {})
        .await
        .expect("rules")
        .into_inner()
        .rules
}

async fn playbooks(c: &TestController) -> Vec<PlaybookRecord> {
    let mut admin = c.admin().await;
    let listed = admin
        .list_playbooks(ListPlaybooksRequest {})
        .await
        .expect("playbooks");
    listed.into_inner().playbooks
}

/// The audit entries by `reload` so far: (action, target, outcome, detail).
async fn reload_audit(c: &TestController) -> Vec<(String, String, String, String)> {
    let mut admin = c.admin().await;
    let entries = admin
        .list_audit(ListAuditRequest {
            since_ms: 0,
            limit: 1000,
            actor: String::new(),
        })
        .await
        .expect("audit")
        .into_inner()
        .entries;
    entries
        .into_iter()
        .filter(|e| e.actor == "reload")
        .map(|e| (e.action, e.target, e.outcome, e.detail))
        .collect()
}

/// A WARN line names the refused file and the line of its error.
fn assert_warned(logs: &Captured, file: &str) {
    let text = logs.text();
    let warned = text.lines().any(|l| {
        l.contains(" WARN ") && l.contains(file) && l.contains("refused") && l.contains("line")
    });
    assert!(warned, "no WARN naming {file} and a line:\n{text}");
}

/// The title the running detector gives an exec of `image`, if a rule matches.
fn judged(c: &TestController, image: &str) -> Option<String> {
    c.ctl
        .detector
        .judge(&exec(image))
        .into_iter()
        .map(|f| f.rule.title)
        .next()
}

/// Current-thread runtime, so the log of every task the test spawns is captured.
#[tokio::test]
async fn rule_and_playbook_files_are_applied_refused_and_removed_while_running() {
    let (logs, _guard) = cordon_tests::logs::capture();
    let rules_dir = tempfile::tempdir().expect("tempdir");
    let pb_dir = tempfile::tempdir().expect("tempdir");
    let (r, p) = (rules_dir.path().to_owned(), pb_dir.path().to_owned());
    let mut c = TestController::start_configured(&format!(
        "[detection]\nrules_dir = {:?}\n[playbooks]\ndir = {:?}\n",
        r.display().to_string(),
        p.display().to_string()
    ))
    .await;
    let rule_file = r.join("reloaded.yml");
    let origin = rule_file.display().to_string();

    // (1) A rule file added: listed, enabled, in force, audited.
    write(&rule_file, &rule("Reloaded One", "medium", "/evil-one"));
    let listed = until(&logs, "the rule to be listed", || async {
        rules(&c).await.into_iter().find(|x| x.id == RULE_ID)
    })
    .await;
    assert_eq!(
        (listed.title.as_str(), listed.enabled),
        ("Reloaded One", true)
    );
    assert_eq!(listed.origin, origin);
    assert_eq!(
        judged(&c, "/usr/bin/evil-one").as_deref(),
        Some("Reloaded One")
    );
    let audit = reload_audit(&c).await;
    assert!(
        audit.iter().any(|(a, t, o, d)| a == "rules.import"
            && t == &format!("rule:{RULE_ID}")
            && o == "ok"
            && d.contains(&origin)),
        "{audit:?}"
    );

    // (2) Changed: the new version is in force, the old one is not.
    write(&rule_file, &rule("Reloaded Two", "high", "/evil-two"));
    let listed = until(&logs, "the changed rule", || async {
        rules(&c)
            .await
            .into_iter()
            .find(|x| x.id == RULE_ID && x.title == "Reloaded Two")
    })
    .await;
    assert_eq!((listed.level.as_str(), listed.enabled), ("high", true));
    assert_eq!(
        judged(&c, "/usr/bin/evil-two").as_deref(),
        Some("Reloaded Two")
    );
    assert_eq!(judged(&c, "/usr/bin/evil-one"), None);

    // (3) Broken: refused and audited as such; the previous version stays.
    let before = reload_audit(&c).await.len();
    write(&rule_file, "title: Broken\nid: [unclosed\n");
    let refusal = until(&logs, "the broken rule's refusal", || async {
        reload_audit(&c)
            .await
            .into_iter()
            .skip(before)
            .find(|(a, ..)| a == "rules.import")
    })
    .await;
    assert!(refusal.2.starts_with("refused: "), "{refusal:?}");
    assert!(refusal.3.contains(&origin), "{refusal:?}");
    assert_warned(&logs, &origin);
    let listed = rules(&c)
        .await
        .into_iter()
        .find(|x| x.id == RULE_ID)
        .expect("rule");
    assert_eq!(
        (listed.title.as_str(), listed.enabled),
        ("Reloaded Two", true)
    );
    assert_eq!(
        judged(&c, "/usr/bin/evil-two").as_deref(),
        Some("Reloaded Two")
    );

    // (4) A playbook file: added, changed, broken (refused, previous kept), removed.
    let pb_file = p.join("reloaded.yml");
    write(&pb_file, &playbook("first"));
    let pb = until(&logs, "the playbook", || async {
        playbooks(&c)
            .await
            .into_iter()
            .find(|x| x.name == "reloaded")
    })
    .await;
    assert_eq!((pb.description.as_str(), pb.enabled), ("first", true));
    assert!(
        c.ctl
            .playbooks
            .enabled()
            .iter()
            .any(|(x, _)| x.name == "reloaded")
    );
    write(&pb_file, &playbook("second"));
    until(&logs, "the changed playbook", || async {
        playbooks(&c)
            .await
            .into_iter()
            .find(|x| x.description == "second")
    })
    .await;
    let installed = c.ctl.playbooks.enabled();
    let (running, _) = installed
        .iter()
        .find(|(x, _)| x.name == "reloaded")
        .expect("installed");
    assert_eq!(running.description, "second");
    let before = reload_audit(&c).await.len();
    write(
        &pb_file,
        &playbook("third").replace("set_incident", "format_disk"),
    );
    let refusal = until(&logs, "the broken playbook's refusal", || async {
        reload_audit(&c)
            .await
            .into_iter()
            .skip(before)
            .find(|(a, ..)| a == "playbook.apply")
    })
    .await;
    assert!(refusal.2.starts_with("refused: "), "{refusal:?}");
    assert!(
        refusal.2.contains("reloaded.yml"),
        "names the file: {refusal:?}"
    );
    assert_warned(&logs, &pb_file.display().to_string());
    let pb = playbooks(&c)
        .await
        .into_iter()
        .find(|x| x.name == "reloaded")
        .expect("kept");
    assert_eq!((pb.description.as_str(), pb.enabled), ("second", true));
    std::fs::remove_file(&pb_file).expect("remove");
    until(&logs, "the removed playbook to be disabled", || async {
        playbooks(&c)
            .await
            .into_iter()
            .find(|x| x.name == "reloaded" && !x.enabled)
    })
    .await;
    assert!(
        !c.ctl
            .playbooks
            .enabled()
            .iter()
            .any(|(x, _)| x.name == "reloaded")
    );
    let audit = reload_audit(&c).await;
    assert!(
        audit
            .iter()
            .any(|(a, t, o, _)| a == "playbook.disable" && t == "playbook:reloaded" && o == "ok")
    );

    // (5) The rule file removed: its rule stays listed, disabled, and no longer matches.
    std::fs::remove_file(&rule_file).expect("remove");
    until(&logs, "the removed rule to be disabled", || async {
        rules(&c)
            .await
            .into_iter()
            .find(|x| x.id == RULE_ID && !x.enabled)
    })
    .await;
    assert_eq!(judged(&c, "/usr/bin/evil-two"), None);
    let audit = reload_audit(&c).await;
    assert!(
        audit.iter().any(|(a, t, o, _)| a == "rule.disable"
            && t == &format!("rule:{RULE_ID}")
            && o == "ok")
    );

    // Written again: back in force.
    write(&rule_file, &rule("Reloaded Three", "low", "/evil-three"));
    until(&logs, "the restored rule to be enabled", || async {
        rules(&c)
            .await
            .into_iter()
            .find(|x| x.id == RULE_ID && x.enabled && x.title == "Reloaded Three")
    })
    .await;
    assert_eq!(
        judged(&c, "/usr/bin/evil-three").as_deref(),
        Some("Reloaded Three")
    );
    c.stop().await;
}
