//! File fetch end to end (issue #15): `cordonctl files fetch` has a real agent copy a file the
//! test made (several chunks); the controller checks its SHA-256 and keeps it; `files get`
//! writes the very bytes (mode 0600, never over a file without `--force`), audited as
//! `file.download`; the agent's own key is refused.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::deploy::Deployment;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

#[test]
fn a_fetched_file_comes_back_byte_for_byte_and_its_download_is_audited() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));

    // About 3 MiB of random bytes: seven chunks of at most 512 KiB.
    let mut bytes = Vec::new();
    let urandom = std::fs::File::open("/dev/urandom").unwrap();
    urandom
        .take((3 << 20) + 12_345)
        .read_to_end(&mut bytes)
        .unwrap();
    let src = d.dir.path().join("suspicious.bin");
    std::fs::write(&src, &bytes).unwrap();
    let hash = sha256(&bytes);

    let out = d.ctl(&["files", "fetch", &agent.id, src.to_str().unwrap()]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words[1..],
        [&bytes.len().to_string(), "bytes", "sha256", &hash],
        "{out}"
    );
    let id = words[0].to_string();

    let listed = d.ctl(&["files", "list", "--agent", &agent.id, "--json"]);
    let listed: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["path"], src.to_str().unwrap());
    assert_eq!(listed["size"], bytes.len() as u64);
    assert_eq!(listed["sha256"], hash.as_str());
    let shown = d.ctl_json(&["commands", "show", &id]);
    assert_eq!(
        (&shown["kind"], &shown["status"]),
        (&"fetch".into(), &"succeeded".into())
    );
    assert_eq!(shown["result"]["fetched"]["chunks"], 7);

    let dest = d.dir.path().join("downloaded.bin");
    let said = d.ctl(&["files", "get", &id, "-o", dest.to_str().unwrap()]);
    assert!(said.contains("matches the stored hash"), "{said}");
    assert_eq!(std::fs::read(&dest).unwrap(), bytes, "the very bytes");
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let err = d.ctl_refused(&["files", "get", &id, "-o", dest.to_str().unwrap()]);
    assert!(err.contains("exists: pass --force"), "{err}");
    let nothing = d.dir.path().join("nothing.bin");
    let err = d.ctl_refused(&[
        "files",
        "get",
        "no-such-file",
        "-o",
        nothing.to_str().unwrap(),
    ]);
    assert!(err.contains("no fetched file"), "{err}");
    assert!(!nothing.exists(), "a failed download leaves no file");
    std::fs::write(&dest, b"something else").unwrap();
    d.ctl(&["files", "get", &id, "-o", dest.to_str().unwrap(), "--force"]);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);

    // An analyst may list fetched files but not download them (the bytes may be malware).
    let analyst = d.member("ann", "analyst", &[]);
    let listed = d.try_ctl_as(&analyst.credential(), &["files", "list"]);
    assert!(listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains(&id));
    let theirs = d.dir.path().join("theirs.bin");
    let get = ["files", "get", id.as_str(), "-o", theirs.to_str().unwrap()];
    let out = d.try_ctl_as(&analyst.credential(), &get);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("PermissionDenied"),
        "{err}"
    );
    assert!(!theirs.exists(), "a refused download leaves no file");

    let audited = d.audited("file.download");
    assert_eq!(
        audited.len(),
        3,
        "every download, even the refused write: {audited:?}"
    );
    assert_eq!(audited[0]["target"], format!("file:{id}"));
    assert_eq!(audited[0]["detail"]["sha256"], hash.as_str());
}

#[test]
fn the_agents_own_key_and_what_is_not_a_file_are_refused() {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("a1", &[]);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));

    let key = agent.state_dir.join("key.pem");
    assert!(key.exists(), "the agent's key is where the test looks");
    let err = d.ctl_refused(&["files", "fetch", &agent.id, key.to_str().unwrap()]);
    assert!(err.contains("one of the agent's own files"), "{err}");
    let err = d.ctl_refused(&["files", "fetch", &agent.id, "/dev/zero"]);
    assert!(
        err.contains("it is a char_device, not a regular file"),
        "{err}"
    );
    let big = d.dir.path().join("big");
    std::fs::write(&big, vec![7u8; 5000]).unwrap();
    let err = d.ctl_refused(&[
        "files",
        "fetch",
        &agent.id,
        big.to_str().unwrap(),
        "--max-bytes",
        "4096",
    ]);
    assert!(
        err.contains("5000 bytes are over the limit of 4096"),
        "{err}"
    );
    let listed = d.ctl(&["files", "list", "--json"]);
    assert!(
        listed.trim().is_empty(),
        "nothing refused is kept: {listed}"
    );
}
