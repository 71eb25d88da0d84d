//! Prevention with the real fanotify group (root only): block-listed binaries, their copies
//! and renamed names are refused with EPERM every time and each refusal is reported once with
//! its path, digest and process; other binaries run, and so does a listed one changed since
//! it was hashed. Tamper protection refuses other processes' writes to the state directory
//! and reports them, while reads and the agent's own writes go through.

use super::*;
use cordon_proto::{PreventionEvent, event, prevention_event::Kind};
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn root_or_skip(test: &str) -> bool {
    if crate::sys::privileges::is_root() {
        return true;
    }
    assert!(
        !cordon_skips::in_ci(),
        "{test} needs root, and CI must run it"
    );
    cordon_skips::skip(test, "needs root");
    false
}

/// A copy of /bin/true with `tag` appended (an ELF runs with trailing bytes), so its digest
/// is this test's own and listing it blocks nothing else on the host.
fn binary(dir: &Path, name: &str, tag: &str) -> (PathBuf, [u8; 32]) {
    let p = dir.join(name);
    let mut bytes = std::fs::read("/bin/true").unwrap();
    bytes.extend(format!("{tag} {} {:?}", std::process::id(), Instant::now()).as_bytes());
    std::fs::write(&p, &bytes).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let digest = crate::sensors::hash::sha256_of(bytes.as_slice()).unwrap();
    (p, digest)
}

/// Whether running `p` was refused with EPERM (else it must have run and succeeded).
fn refused(p: &Path) -> bool {
    match Command::new(p).status() {
        Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => true,
        Err(e) => panic!("{}: {e}", p.display()),
        Ok(s) => {
            assert!(s.success(), "{}: {s}", p.display());
            false
        }
    }
}

/// Prevention events received until `n` have come, or five seconds pass.
fn events(
    rx: &mut tokio::sync::mpsc::Receiver<cordon_proto::Event>,
    n: usize,
) -> Vec<PreventionEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        match rx.try_recv() {
            Ok(cordon_proto::Event {
                body: Some(event::Body::Prevention(p)),
                ..
            }) => out.push(p),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    out
}

#[test]
fn listed_binaries_their_copies_and_new_names_are_refused_and_reported() {
    if !root_or_skip("exec prevention") {
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let (bad, digest) = binary(&dir, "bad", "listed");
    let (good, _) = binary(&dir, "good", "benign");
    let (emit, mut rx) = Emitter::channel(1024);
    let cfg = PreventionConfig {
        mode: Mode::Fanotify,
        ..Default::default()
    };
    let tamper = TamperConfig { protect: false };
    let p = Prevention::start(&cfg, &tamper, &[], emit, None);
    assert_eq!(p.mode(), "fanotify (exec deny)");
    let mut list: Vec<[u8; 32]> = (0..99u8).map(|i| [i; 32]).collect();
    list.push(digest);
    p.set_blocklist(list);

    for i in 0..20 {
        assert!(refused(&bad), "attempt {i} ran");
    }
    let renamed = dir.join("renamed");
    std::fs::rename(&bad, &renamed).unwrap();
    assert!(refused(&renamed));
    let copied = dir.join("copied");
    let cp = Command::new("cp")
        .arg(&renamed)
        .arg(&copied)
        .status()
        .unwrap();
    assert!(cp.success());
    assert!(refused(&copied));
    assert!(!refused(&good), "a binary not listed runs");
    assert!(
        !refused(&good),
        "and runs again (no longer checked until written)"
    );
    // Changed after it was hashed: no longer the listed file.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&copied)
        .and_then(|mut f| f.write_all(b"changed"))
        .unwrap();
    assert!(!refused(&copied), "a changed file is hashed again");
    // An allowed file overwritten with the listed content is checked again.
    std::fs::write(&good, std::fs::read(&renamed).unwrap()).unwrap();
    assert!(refused(&good), "a file rewritten with listed content");
    // A file that ran before a block list named it is refused once it does.
    let (later, later_digest) = binary(&dir, "later", "listed later");
    assert!(!refused(&later));
    let mut list: Vec<[u8; 32]> = (0..99u8).map(|i| [i; 32]).collect();
    list.extend([digest, later_digest]);
    p.set_blocklist(list);
    assert!(refused(&later), "a file allowed before the list named it");

    let got = events(&mut rx, 24);
    let paths: Vec<_> = got.iter().map(|e| e.path.as_str()).collect();
    let mut want = vec![bad.to_str().unwrap(); 20];
    want.extend([&renamed, &copied, &good, &later].map(|p| p.to_str().unwrap()));
    assert_eq!(paths, want);
    assert_eq!(got[23].sha256, hex::encode(later_digest));
    let me = std::env::current_exe().unwrap();
    for e in &got[..23] {
        assert_eq!(
            (e.sha256.as_str(), e.attempt.as_str(), e.mode.as_str()),
            (hex::encode(digest).as_str(), "exec", "fanotify")
        );
    }
    for e in &got {
        assert_eq!(e.kind, Kind::ExecDenied as i32);
        // Who tried: the test's child, still running the test binary when its exec failed.
        let who = e.process.as_ref().unwrap();
        assert!(who.pid != 0 && who.pid != std::process::id(), "{who:?}");
        assert_eq!(Path::new(&who.exe), me.as_path(), "{who:?}");
    }
    assert_eq!(p.denied(), 24);

    // An empty list denies nothing.
    p.set_blocklist(Vec::new());
    assert!(!refused(&renamed));
}

#[test]
fn tamper_protection_refuses_other_processes_writes_and_reports_them() {
    if !root_or_skip("tamper protection") {
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    let file = state.join("identity");
    std::fs::write(&file, b"secret").unwrap();
    let (agent_bin, _) = binary(&dir, "cordon-agent", "agent");
    let (emit, mut rx) = Emitter::channel(1024);
    let cfg = PreventionConfig {
        mode: Mode::Off,
        ..Default::default()
    };
    let p = Prevention::start(
        &cfg,
        &TamperConfig { protect: true },
        &[agent_bin.clone(), state.clone()],
        emit,
        None,
    );
    assert_eq!(p.mode(), TAMPER);

    let sh = |script: &str| {
        let child = Command::new("sh")
            .args(["-c", script])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        (pid, child.wait_with_output().unwrap())
    };
    let (writer, out) = sh(&format!("echo x > {}", file.display()));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    let (_, out) = sh(&format!("echo x > {}", agent_bin.display()));
    assert!(!out.status.success(), "the binary is protected too");
    // Reads go through, and so does running the binary.
    let (_, out) = sh(&format!(
        "cat {} {} > /dev/null && {}",
        file.display(),
        agent_bin.display(),
        agent_bin.display()
    ));
    assert!(out.status.success(), "{out:?}");
    // The agent (this process, any thread) still writes its state.
    std::thread::spawn({
        let file = file.clone();
        move || std::fs::write(file, b"mine").unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");

    let got = events(&mut rx, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].kind, Kind::TamperDenied as i32);
    assert_eq!(got[0].path, file.display().to_string());
    assert_eq!(got[0].attempt, "open_write");
    assert_eq!(got[0].process.as_ref().unwrap().pid, writer);
    assert_eq!(got[1].path, agent_bin.display().to_string());
    // Nothing else was refused: each denial is counted before its event is sent.
    assert_eq!(p.denied(), 2);
    assert!(
        std::iter::from_fn(|| rx.try_recv().ok())
            .all(|e| !matches!(e.body, Some(event::Body::Prevention(_))))
    );
}

/// An ELF whose interpreter is a protected file: the kernel opens the interpreter in the
/// middle of the exec, where it may hold a lock that reading the opener's system call needs.
/// The open must still be answered, and allowed (an exec writes nothing), or every exec
/// would hang.
#[cfg(target_arch = "x86_64")]
#[test]
fn an_exec_whose_interpreter_is_protected_is_answered_in_time() {
    if !root_or_skip("tamper protection and exec interpreters") {
        return;
    }
    const INTERP: &[u8] = b"/lib64/ld-linux-x86-64.so.2\0";
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let state = dir.path().canonicalize().unwrap();
    // A copy of the loader under the protected directory, at a path as long as the original.
    let room = INTERP.len() - 1 - state.as_os_str().len() - 1;
    let loader = state.join("l".repeat(room));
    std::fs::copy("/lib64/ld-linux-x86-64.so.2", &loader).unwrap();
    let mut elf = std::fs::read("/bin/true").unwrap();
    let at = elf.windows(INTERP.len()).position(|w| w == INTERP).unwrap();
    let mut patched = loader.as_os_str().as_encoded_bytes().to_vec();
    patched.push(0);
    elf[at..at + INTERP.len()].copy_from_slice(&patched);
    let program = dir.path().join("odd-interpreter");
    std::fs::write(&program, &elf).unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (emit, mut rx) = Emitter::channel(1024);
    let cfg = PreventionConfig {
        mode: Mode::Off,
        ..Default::default()
    };
    let p = Prevention::start(&cfg, &TamperConfig { protect: true }, &[state], emit, None);
    assert_eq!(p.mode(), TAMPER);
    let started = Instant::now();
    let status = Command::new(&program).status().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.denied(), 0);
    assert!(
        std::iter::from_fn(|| rx.try_recv().ok())
            .all(|e| !matches!(e.body, Some(event::Body::Prevention(_))))
    );
}
