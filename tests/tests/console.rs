//! The web console with the real binaries on loopback, through a real HTTPS client that
//! trusts the controller's CA: sign-in and its rate limit, the session cookie, the security
//! headers, CSRF, roles on pages and on forged requests, four eyes, session expiry, sign-out,
//! a disabled person, TOTP, and the overview's live updates. Each asserts what a person would
//! see: the status, where a redirect goes, and what the page offers.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::console::{Browser, Console, Reply};
use cordon_tests::deploy::Deployment;
use std::time::Duration;
use tokio::time::Instant;

const PASSWORD: &str = "correct horse battery";

/// `name` with `role` and a console password (no cordonctl credential needed).
fn person(d: &Deployment, name: &str, role: &str, extra: &[&str]) {
    d.invite(name, role, extra);
    d.set_password(name, PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_takes_the_right_password_and_hands_out_a_strict_cookie() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "alice", "viewer", &[]);
    person(&d, "soar", "admin", &["--service"]);

    let wrong = c.sign_in("alice", "not the password", "").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("Wrong name, password or code"),
        "{}",
        wrong.body
    );
    assert_eq!(wrong.session_id(), None);
    let machine = c.sign_in("soar", PASSWORD, "").await;
    assert_eq!(machine.status, 401, "a service account never signs in");

    let ok = c.sign_in("alice", PASSWORD, "").await;
    assert_eq!((ok.status, ok.location()), (303, Some("/")));
    let cookie = ok.set_cookie(cordon_tests::console::COOKIE).unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr} in {cookie}");
    }
    let b = Browser {
        session: ok.session_id().unwrap(),
        csrf: String::new(),
    };
    let page = c.get("/", Some(&b)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Agents online") && page.body.contains("alice"));
    assert_eq!(
        page.header("content-security-policy"),
        Some(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(!page.body.contains("<script>") && !page.body.contains("style="));
    let css = c.get("/assets/console.css", None).await;
    assert_eq!(css.status, 200, "assets need no session");
    assert!(css.header("content-security-policy").is_some());

    let stranger = c.get("/", None).await;
    assert_eq!(
        (stranger.status, stranger.location()),
        (303, Some("/login"))
    );

    let sign_ins = d.audited("console.sign_in");
    let outcome = |who: &str, ok: bool| {
        sign_ins
            .iter()
            .any(|e| e["actor"] == who && e["outcome"].as_str().unwrap().starts_with("ok") == ok)
    };
    assert!(outcome("alice", false) && outcome("alice", true) && outcome("soar", false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_rate_limited_per_name_and_per_address() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "alice", "viewer", &[]);
    for _ in 0..5 {
        assert_eq!(c.sign_in("alice", "guess", "").await.status, 401);
    }
    let blocked = c.sign_in("alice", PASSWORD, "").await;
    assert_eq!(blocked.status, 429, "even the right password waits now");
    assert!(
        blocked.body.contains("Too many attempts"),
        "{}",
        blocked.body
    );
    assert_eq!(blocked.session_id(), None);

    // One address trying many names is held back too: each name is new, so only the
    // address's limit (20 at once, then one every 2 s) can refuse one.
    let mut refused = None;
    for i in 0..60 {
        let guess = c.sign_in(&format!("nobody{i}"), "guess", "").await;
        if guess.status == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(guess.status, 401, "attempt {i}");
    }
    let refused = refused.expect("the address is held back");
    assert!(
        refused >= 14,
        "20 attempts from the address first, 6 made above: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_csrf_token_and_sign_out_ends_the_session() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "alice", "viewer", &[]);
    let b = c.browser("alice", PASSWORD).await;

    let form = [("name", "alice"), ("password", PASSWORD)];
    let tokenless = c.request("POST", "/login", &[], Some(&form)).await;
    assert_eq!(
        tokenless.status, 403,
        "signing in needs the form's token too"
    );
    assert_eq!(tokenless.session_id(), None);

    let bare = c.post("/logout", &b, &[]).await;
    assert_eq!(bare.status, 403, "no token: {}", bare.body);
    let forged = c.post("/logout", &b, &[("csrf", "00ff")]).await;
    assert_eq!(forged.status, 403, "a wrong token");
    assert_eq!(c.get("/", Some(&b)).await.status, 200, "still signed in");

    let mut wrong = b.clone();
    wrong.csrf = "00ff".into();
    let header = c.post_with_header("/logout", &wrong).await;
    assert_eq!(header.status, 403, "a wrong token in the header");
    let out = c.post_with_header("/logout", &b).await;
    assert_eq!((out.status, out.location()), (303, Some("/login")));
    let page = c.get("/agents", Some(&b)).await;
    assert_eq!((page.status, page.location()), (303, Some("/login")));
    let ended = d.audited("console.sign_out");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["actor"], "alice");
    assert_eq!(ended[0]["detail"]["why"], "signed out");
}

/// `b` posts the approve form to `path`, with the page's CSRF token.
async fn approve(c: &Console, path: &str, b: &Browser, reason: &str) -> Reply {
    let form = [
        ("csrf", b.csrf.as_str()),
        ("decision", "approve"),
        ("reason", reason),
    ];
    c.post(path, b, &form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_four_eyes_hold_on_the_approvals_page() {
    let (d, c) = Deployment::with_console("[people]\nfour_eyes = true\n", "");
    let alice = d.member("alice", "approver", &[]);
    d.set_password("alice", PASSWORD);
    person(&d, "vera", "viewer", &[]);
    person(&d, "bob", "approver", &[]);
    let id = d.pending_isolation(&alice);
    let decide = format!("/approvals/{id}/decide");

    let vera = c.browser("vera", PASSWORD).await;
    let page = c.get("/approvals", Some(&vera)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&id), "the viewer sees the request");
    assert!(
        !page.body.contains("value=\"approve\""),
        "but no approve button"
    );
    let forged = approve(&c, &decide, &vera, "").await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        forged.body.contains("permission approve is required"),
        "{}",
        forged.body
    );

    let asker = c.browser("alice", PASSWORD).await;
    let page = c.get("/approvals", Some(&asker)).await;
    assert!(page.body.contains("your request") && !page.body.contains("value=\"approve\""));
    let own = approve(&c, &decide, &asker, "").await;
    assert_eq!(own.status, 403);
    assert!(own.body.contains("your own request"), "{}", own.body);
    assert_eq!(
        d.ctl_list(&["approvals", "list"]).as_array().unwrap().len(),
        1
    );

    let bob = c.browser("bob", PASSWORD).await;
    let page = c.get("/approvals", Some(&bob)).await;
    assert!(
        page.body.contains("value=\"approve\""),
        "another approver may decide"
    );
    let yes = approve(&c, &decide, &bob, "seen it").await;
    assert_eq!(
        (yes.status, yes.location()),
        (303, Some("/approvals")),
        "{}",
        yes.body
    );
    let all = d.ctl_list(&["approvals", "list", "--all"]);
    let decided = &all.as_array().unwrap()[0];
    assert_eq!(
        (decided["status"].as_str(), decided["decided_by"].as_str()),
        (Some("approved"), Some("bob"))
    );
    let refused = d.audited("permission.refused");
    assert!(
        refused.iter().any(|e| e["actor"] == "vera"),
        "the forged decision is audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_sent_back_to_sign_in() {
    let (d, c) = Deployment::with_console("", "session_idle_secs = 3\n");
    person(&d, "alice", "viewer", &[]);
    let b = c.browser("alice", PASSWORD).await;
    // Every request is use, so nothing may touch the session while it goes idle.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let page = c.get("/", Some(&b)).await;
    assert_eq!((page.status, page.location()), (303, Some("/login")));
    assert_eq!(c.get("/", Some(&b)).await.status, 303, "ended for good");
    let ended = d.audited("console.sign_out");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["detail"]["why"], "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_persons_session_ends() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "alice", "viewer", &[]);
    let b = c.browser("alice", PASSWORD).await;
    d.ctl(&["users", "disable", "alice"]);
    let page = c.get("/", Some(&b)).await;
    assert_eq!((page.status, page.location()), (303, Some("/login")));
    d.ctl(&["users", "enable", "alice"]);
    let again = c.get("/", Some(&b)).await;
    assert_eq!(again.status, 303, "the session ended for good");
    let anew = c.sign_in("alice", PASSWORD, "").await;
    assert_eq!(anew.status, 303, "enabled again, alice signs in anew");
    d.ctl(&["users", "disable", "alice"]);
    assert_eq!(c.sign_in("alice", PASSWORD, "").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_with_totp_needs_a_current_code_once() {
    let (d, c) = Deployment::with_console("", "");
    person(&d, "alice", "viewer", &[]);
    let set = d.ctl_json(&["users", "set-totp", "alice"]);
    assert_eq!(set["user"]["has_totp"], true);
    let secret = set["secret"].as_str().unwrap().to_string();
    assert!(set["otpauth_uri"].as_str().unwrap().contains(&secret));
    let bytes = totp_rs::Secret::Encoded(secret).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    let code = totp.generate_current().unwrap();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(
        c.sign_in("alice", PASSWORD, "").await.status,
        401,
        "no code"
    );
    assert_eq!(c.sign_in("alice", PASSWORD, &wrong).await.status, 401);
    assert_eq!(c.sign_in("alice", PASSWORD, &code).await.status, 303);
    assert_eq!(
        c.sign_in("alice", PASSWORD, &code).await.status,
        401,
        "a code works once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_follows_the_fleet_over_server_sent_events() {
    let (d, c) = Deployment::with_console("[people]\nfour_eyes = true\n", "");
    let alice = d.member("alice", "approver", &[]);
    person(&d, "vera", "viewer", &[]);
    let b = c.browser("vera", PASSWORD).await;
    let (head, mut events) = c.events("/live/overview", &b).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-type"], "text/event-stream");
    let first = events.next(Duration::from_secs(10)).await.unwrap();
    assert!(first.contains("event: overview"), "{first}");
    assert!(first.contains("\"pending_approvals\":0"), "{first}");

    d.pending_isolation(&alice);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let now = events.next(left).await.expect("the stream stays open");
        if now.contains("\"pending_approvals\":1") && now.contains("\"agents_offline\":1") {
            break;
        }
    }
    d.ctl(&["users", "disable", "vera"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let now = events.next(left).await.expect("an end event");
        if now.contains("event: end") {
            break;
        }
    }
}
