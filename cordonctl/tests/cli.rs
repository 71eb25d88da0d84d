//! The cordonctl binary as an administrator meets it without a controller: its help, its
//! refusals, and the offline `rules test` reading an event as `events query --json` prints
//! it. (Being an integration test, this also makes `cargo test --workspace` build the
//! binary that the end-to-end tests in `tests/` run.)

use std::path::Path;
use std::process::Command;

const CTL: &str = env!("CARGO_BIN_EXE_cordonctl");

fn ctl(args: &[&str]) -> (bool, String) {
    let out = Command::new(CTL)
        .args(args)
        .env_remove("CORDON_ADMIN")
        .output()
        .expect("run cordonctl");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn help_describes_every_host_action_in_its_own_words() {
    let (ok, text) = ctl(&["--help"]);
    assert!(ok, "{text}");
    assert!(!text.contains("Options every host action takes"), "{text}");
    let unblock = text
        .lines()
        .find(|l| l.trim_start().starts_with("unblock-ip"));
    assert!(
        unblock.is_some_and(|l| l.contains("Lifts a block")),
        "{text}"
    );
}

#[test]
fn without_a_credential_it_says_how_to_give_one() {
    let (ok, text) = ctl(&["agents", "list"]);
    assert!(!ok);
    assert!(
        text.contains("--admin") && text.contains("CORDON_ADMIN"),
        "{text}"
    );
}

/// An admin file whose CA is real and pinned, for a controller that is not there.
fn admin_file(dir: &Path) -> std::path::PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["ctl.test".into()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("admin.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("admin.key"), key.serialize_pem()).expect("write");
    let fp = cordon_proto::identity::fingerprint(cert.der());
    let path = dir.join("admin.toml");
    std::fs::write(
        &path,
        format!(
            "controller = \"https://127.0.0.1:1\"\nca_fingerprint = \"{fp}\"\n\
             ca_cert = \"ca.pem\"\ncert = \"admin.pem\"\nkey = \"admin.key\"\n"
        ),
    )
    .expect("write");
    path
}

#[test]
fn an_unreachable_controller_is_named_and_a_wrong_ca_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = admin_file(dir.path());
    let admin = admin.to_str().expect("utf8");
    // Port 1 on loopback: nothing listens there.
    let (ok, text) = ctl(&["--admin", admin, "agents", "list"]);
    assert!(!ok);
    assert!(text.contains("cannot reach the controller"), "{text}");

    let other = rcgen::KeyPair::generate().expect("key");
    let other = rcgen::CertificateParams::new(vec!["x".into()])
        .expect("params")
        .self_signed(&other)
        .expect("cert");
    std::fs::write(dir.path().join("ca.pem"), other.pem()).expect("write");
    let (ok, text) = ctl(&["--admin", admin, "agents", "list"]);
    assert!(!ok);
    assert!(
        text.contains("does not match the pinned CA fingerprint"),
        "{text}"
    );
}

#[test]
fn rules_test_reads_an_event_line_as_events_query_prints_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = dir.path().join("curl.yml");
    std::fs::write(
        &rule,
        "title: Curl to a shell\nid: 6a7d1d4e-1d7b-4f4e-9f1c-3d3c1f1f0001\nstatus: test\n\
         author: Cordon tests\nlevel: high\nlogsource:\n  category: process_creation\n  \
         product: linux\ndetection:\n  sel:\n    Image|endswith: /curl\n  condition: sel\n",
    )
    .expect("write");
    let rule = rule.to_str().expect("utf8");
    let line = r#"{"agent_id":"ab","seq":3,"time_ms":5,"kind":"process","summary":"exec curl","received_at_ms":6,"process":{"kind":"exec","pid":9,"exe":"/usr/bin/curl","argv":["curl","x"]}}"#;
    let (ok, text) = ctl(&["rules", "test", rule, "--event", line]);
    assert!(ok, "{text}");
    assert!(text.starts_with("MATCH Curl to a shell"), "{text}");
    let exit = line.replace(r#""kind":"exec""#, r#""kind":"exit""#);
    let (ok, text) = ctl(&["rules", "test", rule, "--event", &exit]);
    assert!(!ok, "an exit is no process creation: {text}");
    assert!(text.starts_with("no match"), "{text}");
}
