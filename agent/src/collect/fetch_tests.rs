//! File fetch against files the tests make: a regular file is copied whole with its hash and
//! metadata; everything else on the refusal list is refused with its reason.

use super::*;
use ring::digest::{SHA256, digest};
use std::os::unix::fs::PermissionsExt;

struct Host {
    tmp: tempfile::TempDir,
    fetcher: Fetcher,
    outbox: Outbox,
}

/// A host with a state directory (holding a key), a configuration file and a 1 MiB limit.
fn host() -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(state.join("keys")).unwrap();
    std::fs::write(state.join("keys/agent.key"), b"secret key").unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(&config, b"heartbeat_interval_secs = 10\n").unwrap();
    let fetcher = Fetcher::new(&state, Some(config), 1 << 20);
    let outbox = Outbox::new(state.join("outbox"));
    Host {
        tmp,
        fetcher,
        outbox,
    }
}

impl Host {
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn fetch(&self, path: &Path, max_bytes: u64) -> Result<FetchedFile, FetchError> {
        let f = FetchFile {
            path: path.to_str().unwrap().to_string(),
            max_bytes,
        };
        self.fetcher.fetch(&f, "cmd-1", &self.outbox)
    }

    fn refusal(&self, path: &Path) -> String {
        self.fetch(path, 0).expect_err("refused").to_string()
    }
}

#[test]
fn a_regular_file_is_copied_whole_with_its_hash_and_metadata() {
    let h = host();
    let path = h.path("evil.bin");
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o750)).unwrap();
    let got = h.fetch(&path, 0).expect("fetched");
    assert_eq!(got.size, bytes.len() as u64);
    assert_eq!(got.sha256, hex::encode(digest(&SHA256, &bytes)));
    assert_eq!((got.mode, got.chunks), (0o750, 2));
    assert_eq!(got.mtime, std::fs::metadata(&path).unwrap().mtime());
    let sent: Vec<u8> = h
        .outbox
        .pending("cmd-1")
        .unwrap()
        .flat_map(|c| c.unwrap().data)
        .collect();
    assert_eq!(sent, bytes, "the outbox sends the bytes hashed");
}

#[test]
fn an_empty_file_is_fetched_with_no_chunks() {
    let h = host();
    let path = h.path("empty");
    std::fs::write(&path, b"").unwrap();
    let got = h.fetch(&path, 0).expect("fetched");
    assert_eq!((got.size, got.chunks), (0, 0));
}

#[test]
fn what_is_not_a_regular_file_is_refused_by_its_type() {
    let h = host();
    let target = h.path("target");
    std::fs::write(&target, b"x").unwrap();
    let link = h.path("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(
        h.refusal(&link).contains("it is a symlink"),
        "{}",
        h.refusal(&link)
    );
    let fifo = h.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(h.refusal(&fifo).contains("it is a fifo"));
    assert!(h.refusal(h.tmp.path()).contains("it is a dir"));
    let zero = Path::new("/dev/zero");
    assert!(h.refusal(zero).contains("it is a char_device"));
    assert!(h.refusal(&h.path("missing")).contains("cannot fetch"));
    assert!(h.fetch(Path::new("relative"), 0).is_err());
}

#[test]
fn a_file_over_the_limit_is_refused_with_its_size() {
    let h = host();
    let path = h.path("big");
    std::fs::write(&path, vec![0u8; (1 << 20) + 1]).unwrap();
    let why = h.refusal(&path);
    assert!(
        why.contains("1048577 bytes are over the limit of 1048576"),
        "{why}"
    );
    let small = h.path("small");
    std::fs::write(&small, vec![1u8; 2000]).unwrap();
    let why = h.fetch(&small, 1000).expect_err("over what was asked");
    assert!(why.to_string().contains("limit of 1000"), "{why}");
    assert_eq!(
        h.fetcher.limit(&FetchFile {
            path: String::new(),
            max_bytes: 5 << 20
        }),
        1 << 20
    );
}

#[test]
fn the_agents_own_files_are_refused_however_they_are_named() {
    let h = host();
    let key = h.path("state/keys/agent.key");
    assert!(h.refusal(&key).contains("one of the agent's own files"));
    let via = h.path("via");
    std::os::unix::fs::symlink(h.path("state"), &via).unwrap();
    let why = h.refusal(&via.join("keys/agent.key"));
    assert!(
        why.contains("agent's own files"),
        "a symlinked directory: {why}"
    );
    let hard = h.path("hard-link");
    std::fs::hard_link(&key, &hard).unwrap();
    let why = h.refusal(&hard);
    assert!(why.contains("agent's own files"), "a hard link: {why}");
    let why = h.refusal(&h.path("agent.toml"));
    assert!(
        why.contains("agent's own files"),
        "the configuration: {why}"
    );
}

#[test]
fn a_file_whose_size_moves_while_copied_is_refused_and_not_kept() {
    let h = host();
    // A procfs file says it has 0 bytes and then reads as more: a file that grew.
    let why = h.refusal(Path::new("/proc/self/status"));
    assert!(why.contains("changed while copied (0 bytes, then"), "{why}");
    assert!(!h.outbox.dir().join("cmd-1.bin").exists(), "nothing kept");
}
