//! An ordinary working day on a host with Cordon's default rules and playbooks: a package
//! installed and removed, a program compiled and run in /tmp, git, a Python venv with pip,
//! tar, ssh-keygen. None of it may raise a high or critical alert, and no shipped playbook
//! may act on the host on its own for any alert it raises (a medium one may ask a person).
//!
//! The agent sees every exec on the machine; this file holds one test, and cargo runs test
//! binaries one at a time, so what it sees in its window is this workload (and the
//! harness's own cordonctl calls). The playbooks are loaded as dry-run copies, so nothing
//! here can act on a process it did not start; whether a playbook would act automatically
//! is asked of the controller (`playbooks dry-run`) for every alert, and read from the
//! playbook's steps: a host action with no approval step before it is automatic.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::playbook::spec::{self, Action};
use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::repo::{detection_config, path};
use cordon_tests::require_root;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs `program args` in `dir`; it must succeed.
fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A package of our own, built here, installed with dpkg (maintainer scripts included) and
/// purged again; purged on drop too if the test stops half way.
struct TestPackage;

const PACKAGE: &str = "cordon-benign-probe";

impl TestPackage {
    fn install(work: &Path) -> Self {
        let root = work.join("pkg");
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/doc").join(PACKAGE)).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\nMaintainer: Cordon tests \
                 <t@example.invalid>\nDescription: a package the benign-workload test installs\n"
            ),
        )
        .unwrap();
        let postinst = root.join("DEBIAN/postinst");
        std::fs::write(&postinst, "#!/bin/sh\nset -e\necho configured >/dev/null\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&postinst, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            root.join("usr/share/doc").join(PACKAGE).join("README"),
            "hi\n",
        )
        .unwrap();
        run(
            work,
            "dpkg-deb",
            &["--root-owner-group", "--build", "pkg", "probe.deb"],
        );
        run(work, "dpkg", &["-i", "probe.deb"]);
        TestPackage
    }
}

impl Drop for TestPackage {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    }
}

/// A wheel of our own, so pip installs something real without a network.
fn write_wheel(work: &Path) -> PathBuf {
    let wheel = work.join("cordonbenign-1.0-py3-none-any.whl");
    let script = format!(
        "import zipfile\n\
         with zipfile.ZipFile({:?}, 'w') as z:\n\
         \x20   z.writestr('cordonbenign/__init__.py', 'VALUE = 42\\n')\n\
         \x20   z.writestr('cordonbenign-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: cordonbenign\\nVersion: 1.0\\n')\n\
         \x20   z.writestr('cordonbenign-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: cordon\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
         \x20   z.writestr('cordonbenign-1.0.dist-info/RECORD', 'cordonbenign/__init__.py,,\\ncordonbenign-1.0.dist-info/METADATA,,\\ncordonbenign-1.0.dist-info/WHEEL,,\\ncordonbenign-1.0.dist-info/RECORD,,\\n')\n",
        wheel.display().to_string()
    );
    run(work, "python3", &["-c", &script]);
    wheel
}

/// The day's work, every step in `work` (under /tmp, where builds and unpacking happen).
fn workday(work: &Path) {
    let _package = TestPackage::install(work);
    run(work, "dpkg", &["-s", PACKAGE]);

    std::fs::write(work.join("m.c"), "int main(void) { return 0; }\n").unwrap();
    run(work, "gcc", &["-O1", "-o", "m", "m.c"]);
    run(work, &work.join("m").display().to_string(), &[]);

    run(work, "git", &["init", "-q", "repo"]);
    let repo = work.join("repo");
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    run(&repo, "git", &["add", "README"]);
    run(&repo, "git", &["commit", "-q", "-m", "first"]);
    run(work, "git", &["clone", "-q", "repo", "clone"]);
    run(&work.join("clone"), "git", &["log", "--oneline"]);

    let wheel = write_wheel(work);
    run(work, "python3", &["-m", "venv", "venv"]);
    let pip = work.join("venv/bin/pip").display().to_string();
    let wheel = wheel.display().to_string();
    run(
        work,
        &pip,
        &["install", "-q", "--no-index", "--no-deps", &wheel],
    );
    let python = work.join("venv/bin/python").display().to_string();
    run(
        work,
        &python,
        &["-c", "import cordonbenign; assert cordonbenign.VALUE == 42"],
    );

    run(work, "tar", &["czf", "repo.tgz", "repo"]);
    std::fs::create_dir(work.join("unpacked")).unwrap();
    run(work, "tar", &["xzf", "repo.tgz", "-C", "unpacked"]);

    run(
        work,
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", "key"],
    );
}

/// The shipped playbooks copied with `dry_run: true`: (name, path of the shipped file).
fn dry_run_playbooks(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(path("playbooks")).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "yml") {
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                dir.join(p.file_name().unwrap()),
                format!("dry_run: true\n{text}"),
            )
            .unwrap();
            shipped.push(p);
        }
    }
    assert!(shipped.len() >= 3, "the checkout ships playbooks");
    shipped
}

/// Whether a playbook acts on a host before any person has approved.
fn acts_unapproved(playbook: &spec::Playbook) -> bool {
    for step in &playbook.steps {
        match step.action {
            Action::WaitForApproval { .. } => return false,
            ref a if a.contains_host() => return true,
            _ => {}
        }
    }
    false
}

/// Alerts of `agent` first seen at or after `since_ms`.
fn alerts_since(d: &Deployment, agent: &AgentHandle, since_ms: i64) -> Vec<Value> {
    let listed = d.ctl_list(&["alerts", "list", "--agent", &agent.id, "--limit", "10000"]);
    listed
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["first_at_ms"].as_i64().unwrap_or(0) >= since_ms)
        .collect()
}

#[test]
fn an_ordinary_day_raises_nothing_high_and_nothing_is_contained_automatically() {
    if !require_root("an_ordinary_day_raises_nothing_high_and_nothing_is_contained_automatically") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shipped = dry_run_playbooks(&dir.path().join("playbooks"));
    let extra = format!(
        "[playbooks]\ndir = {}\n",
        toml::Value::from(dir.path().join("playbooks").display().to_string())
    );
    let d = Deployment::loopback(&detection_config(&extra));
    let mut agent = d.enroll_agent("workday", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));

    let started = cordon_proto::time::now_ms();
    let work = tempfile::Builder::new()
        .prefix("cordon-workday-")
        .tempdir_in("/tmp")
        .unwrap();
    workday(work.path());
    d.barrier(&agent, "workday");

    let alerts = alerts_since(&d, &agent, started);
    let severe: Vec<_> = alerts
        .iter()
        .filter(|a| matches!(a["level"].as_str(), Some("high" | "critical")))
        .collect();
    assert!(
        severe.is_empty(),
        "high or critical alerts on an ordinary day: {severe:#?}"
    );
    for file in &shipped {
        let playbook = spec::parse(&std::fs::read_to_string(file).unwrap(), "shipped").unwrap();
        for a in &alerts {
            let id = a["id"].as_str().unwrap();
            let r = d.ctl_json(&[
                "playbooks",
                "dry-run",
                file.to_str().unwrap(),
                "--alert",
                id,
            ]);
            assert!(
                !(r["triggers"] == true && acts_unapproved(&playbook)),
                "{} would act on its own on {}: {a:#}",
                playbook.name,
                a["title"]
            );
        }
    }
    // The run saw what it should have: the program compiled and run in /tmp is a medium alert.
    assert!(
        alerts
            .iter()
            .any(|a| a["title"] == "Program Run From a Temporary Directory"),
        "{alerts:#?}"
    );
}
