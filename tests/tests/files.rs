//! The file sensor in fanotify mode end to end, with the real binaries and the agent in its
//! own network namespace: a file written in a directory no configuration names is stored once,
//! with the process that wrote it (pid, exe, argv), and a `chmod u+s` is stored as an
//! attribute change with the setuid bit named.

use cordon_proto::{FileEvent, event, file_event::Kind};
use cordon_tests::deploy::{AgentHandle, Deployment};
use cordon_tests::{poll, require_root};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// File events stored for `agent` whose summary contains `text`.
fn file_events(d: &Deployment, agent: &AgentHandle, text: &str) -> Vec<FileEvent> {
    d.event_bodies(&agent.id, "file", Some(text))
        .into_iter()
        .filter_map(|b| match b {
            event::Body::File(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// A directory under /var/tmp, which no default configuration names.
fn unnamed_dir(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("cordon-fan-{tag}-"))
        .tempdir_in("/var/tmp")
        .expect("a directory in /var/tmp");
    let conf = cordon_agent::sensors::file::FileSensorConfig::default();
    let path = dir.path().to_string_lossy().into_owned();
    assert!(
        !conf
            .watch
            .iter()
            .chain(&conf.recursive)
            .any(|w| path.starts_with(w.as_str())),
        "{path} must be outside the configured directories"
    );
    dir
}

fn fanotify_agent(d: &Deployment, name: &str) -> AgentHandle {
    let mut agent = d.enroll_agent(name, &[]);
    agent.configure("[files]\nmode = \"fanotify\"\n");
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    let shown = poll(Duration::from_secs(10), || {
        let text = d.ctl(&["agents", "show", &agent.id]);
        text.contains("file: fanotify").then_some(text)
    });
    assert!(shown.is_some(), "agents show names the file sensor's mode");
    agent
}

fn wait_for(d: &Deployment, agent: &AgentHandle, path: &Path, kind: Kind) -> Vec<FileEvent> {
    let text = path.display().to_string();
    poll(Duration::from_secs(20), || {
        let got = file_events(d, agent, &text);
        got.iter()
            .any(|f| f.kind() == kind && f.path == text)
            .then_some(got)
    })
    .unwrap_or_else(|| panic!("no {kind:?} event for {text}"))
}

#[test]
fn a_write_where_no_configuration_looks_is_stored_once_with_its_writer() {
    if !require_root("a_write_where_no_configuration_looks_is_stored_once_with_its_writer") {
        return;
    }
    let d = Deployment::namespaces("");
    let agent = fanotify_agent(&d, "fan-write");
    let dir = unnamed_dir("write");
    let file = dir.path().join("dropped");
    let script = format!("echo payload > {}", file.display());
    let writer = Command::new("/bin/sh")
        .args(["-c", &script])
        .spawn()
        .expect("sh");
    let pid = writer.id();
    assert!(writer.wait_with_output().unwrap().status.success());

    let got = wait_for(&d, &agent, &file, Kind::Modify);
    let path = file.display().to_string();
    let writes: Vec<_> = got
        .iter()
        .filter(|f| f.kind() == Kind::Modify && f.path == path)
        .collect();
    assert_eq!(writes.len(), 1, "stored once: {writes:?}");
    let w = writes[0];
    assert_eq!(w.source, "fanotify");
    let p = w.process.as_ref().expect("the writer");
    assert_eq!(p.pid, pid);
    assert_eq!(p.exe, cordon_tests::real_path("/bin/sh"));
    assert_eq!(p.argv, vec!["/bin/sh".to_string(), "-c".into(), script]);
    assert!(p.start_ticks > 0, "{p:?}");
    assert_eq!(w.size, 8);
    assert!(
        !w.hash_skipped.is_empty(),
        "not hashed outside the configured directories"
    );
    assert!(
        got.iter()
            .any(|f| f.kind() == Kind::Create && f.path == path),
        "the creation too: {got:?}"
    );
}

#[test]
fn a_chmod_u_plus_s_is_stored_with_setuid_named() {
    if !require_root("a_chmod_u_plus_s_is_stored_with_setuid_named") {
        return;
    }
    let d = Deployment::namespaces("");
    let agent = fanotify_agent(&d, "fan-chmod");
    let dir = unnamed_dir("chmod");
    let file = dir.path().join("tool");
    std::fs::write(&file, b"#!/bin/sh\n").unwrap();
    let chmod = Command::new("chmod")
        .args(["u+s"])
        .arg(&file)
        .spawn()
        .expect("chmod");
    let pid = chmod.id();
    assert!(chmod.wait_with_output().unwrap().status.success());

    let got = wait_for(&d, &agent, &file, Kind::Attrib);
    let attrib: Vec<_> = got.iter().filter(|f| f.kind() == Kind::Attrib).collect();
    assert_eq!(attrib.len(), 1, "{attrib:?}");
    let a = attrib[0];
    assert!(a.setuid && !a.setgid, "{a:?}");
    assert_eq!(a.mode & 0o170000, 0o100000, "a regular file: {a:?}");
    assert_ne!(a.mode & 0o4000, 0, "{a:?}");
    let p = a.process.as_ref().expect("the chmod");
    assert_eq!(p.pid, pid);
    assert!(p.exe.ends_with("/chmod"), "{p:?}");
    let summaries = d.ctl(&[
        "events",
        "query",
        "--agent",
        &agent.id,
        "--kind",
        "file",
        "--contains",
        "setuid",
    ]);
    assert!(
        summaries.contains(&file.display().to_string()),
        "{summaries}"
    );
}
