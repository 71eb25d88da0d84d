//! Secrets stay secret in a real deployment (issue 18's review), with logging at debug: after
//! `init`, an enrolment, a console sign-in with a password and a `cordonctl login` with an
//! invite, no log holds a token, an invite code, a password, a session id or any private
//! key's material; and every secret file is its owner's alone (0600, in 0700 directories).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::Deployment;
use cordon_tests::require_root;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files under `dir` that hold a secret: private keys, credentials and identities, and
/// the store and spool segments that hold telemetry (with the store's write-ahead log).
fn secret_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            found.extend(secret_files(&path));
        } else if name.ends_with(".key")
            || name.ends_with("key.pem")
            || name == "admin.toml"
            || name == "credential.toml"
            || name == "agent.toml"
            || name.contains(".db")
            || name.ends_with(".seg")
        {
            found.push(path);
        }
    }
    found
}

/// Each secret file under `dir` is 0600, owned by this process's user, in a 0700 directory.
fn assert_private(dir: &Path, step: &str) {
    let files = secret_files(dir);
    assert!(
        !files.is_empty(),
        "{step}: no secret file under {}",
        dir.display()
    );
    let uid = nix::unistd::geteuid().as_raw();
    println!("{step}: {} secret files private", files.len());
    for f in files {
        let meta = std::fs::metadata(&f).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{step}: {} is {mode:o}", f.display());
        assert_eq!(meta.uid(), uid, "{step}: {} owner", f.display());
        let parent = std::fs::metadata(f.parent().unwrap()).unwrap();
        let dir_mode = parent.permissions().mode() & 0o077;
        assert_eq!(
            dir_mode,
            0,
            "{step}: {} is open to others",
            f.parent().unwrap().display()
        );
    }
}

/// The base64 lines of every PEM private key under `dirs`.
fn key_material(dirs: &[&Path]) -> Vec<String> {
    let mut lines = Vec::new();
    for dir in dirs {
        for f in secret_files(dir) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            if text.contains("PRIVATE KEY") {
                lines.extend(
                    text.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
                        .map(str::to_string),
                );
            }
        }
    }
    lines
}

#[test]
fn no_secret_reaches_a_log_and_every_secret_file_is_private() {
    if !require_root("no_secret_reaches_a_log_and_every_secret_file_is_private") {
        return;
    }
    let (mut d, console) = Deployment::with_console("", "");
    d.log_filter = Some("debug".into());
    d.stop_controller();
    d.start_controller();
    assert_private(&d.data_dir, "after init");

    let token = d.ctl_json(&["token", "create", "--ttl", "10m"]);
    let token_text = token["token"].as_str().unwrap().to_string();
    let mut agent = d.enroll_agent_with(&token, "host", &[]);
    assert_private(&agent.state_dir, "after enrolment");
    d.start_agent(&mut agent);
    d.barrier(&agent, "secrets");
    assert_private(&agent.state_dir, "while the agent runs");

    let password = "correct horse battery staple 42";
    d.set_password("admin", password);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let session = rt.block_on(async {
        let b = console.browser("admin", password).await;
        assert_eq!(console.get("/agents", Some(&b)).await.status, 200);
        b.session.clone()
    });

    let invite = d.invite("ann", "responder", &[]);
    let code = invite["code"].as_str().unwrap().to_string();
    let home = d.dir.path().join("home-ann");
    let login = d.try_login(&code, &home);
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_private(&home, "after login");
    let listed = d.try_ctl_as(&home.join("credential.toml"), &["agents", "list"]);
    assert!(listed.status.success());
    assert_private(&d.data_dir, "after serving");

    d.stop_controller();
    drop(agent.proc.take());
    let logs = [d.controller_log(), agent.log.clone()];
    let text: String = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap())
        .collect();
    assert!(text.contains("DEBUG"), "the logs were not at debug level");
    let secret_part = token_text.trim_start_matches(cordon_proto::secrets::TOKEN_PREFIX);
    let mut secrets = vec![
        ("enrolment token", secret_part.to_string()),
        ("invite code", code),
        ("password", password.to_string()),
        ("console session", session),
    ];
    let keys = key_material(&[&d.data_dir, &agent.state_dir, &home]);
    assert!(
        keys.len() >= 4,
        "too few private keys found: {}",
        keys.len()
    );
    secrets.extend(keys.into_iter().map(|k| ("private key", k)));
    for (what, secret) in &secrets {
        assert!(!text.contains(secret.as_str()), "a {what} is in a log");
    }
    println!(
        "{} secrets checked against {} bytes of debug logs",
        secrets.len(),
        text.len()
    );
}
