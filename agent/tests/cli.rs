//! The agent's command line: clear errors and non-zero exits for what cannot work. (Being an
//! integration test, this also makes `cargo test --workspace` build the agent binary that the
//! end-to-end tests run.)

use std::process::Command;

fn agent(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cordon-agent"))
        .args(args)
        .output()
        .expect("run cordon-agent");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn validate_config_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "heartbeat_interval_secs = 5\n").expect("write");
    let (ok, text) = agent(&["validate-config", "--config", good.to_str().expect("utf8")]);
    assert!(ok, "{text}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "heartbeat_interval_secs = 5\nheartbeat = 3\n").expect("write");
    let (ok, text) = agent(&["validate-config", "--config", bad.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        text.contains("bad.toml") && text.contains("heartbeat"),
        "{text}"
    );
}

#[test]
fn run_without_enrolment_says_to_enrol() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text) = agent(&["run", "--state-dir", dir.path().to_str().expect("utf8")]);
    assert!(!ok);
    assert!(text.contains("cordon-agent enroll"), "{text}");
}

#[test]
fn enrolment_input_is_checked_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().to_str().expect("utf8");
    let base = [
        "enroll",
        "--controller",
        "https://127.0.0.1:1",
        "--state-dir",
        state,
    ];
    let (ok, text) = agent(&[&base[..], &["--token", "t", "--ca-fingerprint", "md5:00"]].concat());
    assert!(!ok);
    assert!(text.contains("sha256:"), "{text}");
    let (ok, text) = agent(&[&base[..], &["--ca-fingerprint", "sha256:00"]].concat());
    assert!(!ok);
    assert!(text.contains("token"), "{text}");
    let (ok, text) = agent(
        &[
            &base[..],
            &[
                "--token",
                "t",
                "--ca-fingerprint",
                &format!("sha256:{}", "ab".repeat(32)),
            ],
        ]
        .concat(),
    );
    assert!(!ok);
    assert!(text.contains("cannot reach the controller"), "{text}");
    assert!(!dir.path().join("agent.toml").exists());
}
