//! The controller's command line: init, validate-config, and their refusals. (Being an
//! integration test, this also makes `cargo test --workspace` build the controller binary
//! that the end-to-end tests run; `cordonctl/tests/cli.rs` does the same for cordonctl.)

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .env_remove("CORDON_ADMIN")
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const CONTROLLER: &str = env!("CARGO_BIN_EXE_cordon-controller");

#[test]
fn init_then_validate_and_refuse_a_second_init() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ctl");
    let data = data.to_str().expect("utf8");
    let (ok, text) = run(
        CONTROLLER,
        &[
            "init",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:7999",
            "--name",
            "ctl.test",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("https://ctl.test:7999") && text.contains("sha256:"),
        "{text}"
    );
    let (ok, text) = run(CONTROLLER, &["validate-config", "--data-dir", data]);
    assert!(ok, "{text}");
    let (ok, text) = run(CONTROLLER, &["init", "--data-dir", data]);
    assert!(!ok);
    assert!(text.contains("refusing to overwrite"), "{text}");

    let cfg = dir.path().join("ctl/controller.toml");
    let text = std::fs::read_to_string(&cfg).expect("read") + "command_ttl_secs = 0\n";
    std::fs::write(&cfg, text.replace("command_ttl_secs = 3600\n", "")).expect("write");
    let (ok, text) = run(CONTROLLER, &["validate-config", "--data-dir", data]);
    assert!(!ok);
    assert!(
        text.contains("controller.toml") && text.contains("command_ttl_secs"),
        "{text}"
    );
}

#[test]
fn serve_without_init_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text) = run(
        CONTROLLER,
        &["serve", "--data-dir", dir.path().to_str().expect("utf8")],
    );
    assert!(!ok);
    assert!(text.contains("controller.toml"), "{text}");
}
