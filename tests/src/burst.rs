//! Telemetry bursts whose every event is known: files made in a directory the agent's file
//! sensor watches (and nothing else), and the checks of what the controller stored of them
//! (each exactly once, no sequence number missing) and of what the agent's spool holds.

use crate::deploy::{AgentHandle, Deployment, SpoolSnapshot};
use crate::poll;
use cordon_proto::file_event::Kind;
use cordon_proto::{Event, EventRecord, event};
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Files named `{prefix}-{i:05}-` padded with `x` to `len` characters, in one directory.
/// Each file made is one create and one modify (close-write) event.
pub struct Files {
    pub dir: PathBuf,
    pub prefix: String,
    pub len: usize,
}

impl Files {
    pub fn new(dir: &Path, prefix: &str, len: usize) -> Self {
        Self {
            dir: dir.to_path_buf(),
            prefix: prefix.into(),
            len,
        }
    }

    pub fn path(&self, i: usize) -> String {
        let name = format!("{}-{i:05}-", self.prefix);
        let pad = "x".repeat(self.len.saturating_sub(name.len()));
        self.dir.join(name + &pad).display().to_string()
    }

    /// Makes files `range`, stopping early once `stop` is set; returns how many it made.
    /// Paced in bursts, to let the file sensor keep up with the kernel's inotify queue.
    pub fn make(&self, range: Range<usize>, stop: &AtomicBool) -> usize {
        let mut made = 0;
        for i in range {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::fs::write(self.path(i), i.to_string()).unwrap();
            made += 1;
            if made % 50 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        made
    }

    pub fn make_all(&self, range: Range<usize>) {
        self.make(range, &AtomicBool::new(false));
    }

    /// Makes files `0..n` while the controller is away, in chunks, each taken into the
    /// agent's spool before the next: the kernel's inotify queue (16384 events) never
    /// overflows however slow the machine, so every event made reaches the agent.
    pub fn make_spooled(&self, n: usize, agent: &AgentHandle) {
        for first in (0..n).step_by(250) {
            let last = (first + 250).min(n) - 1;
            self.make_all(first..last + 1);
            wait_spooled(agent, &self.keys(last)[1]);
        }
    }

    /// The events file `i` gives: its create and its modify.
    pub fn keys(&self, i: usize) -> [(Kind, String); 2] {
        [(Kind::Create, self.path(i)), (Kind::Modify, self.path(i))]
    }
}

/// The kind and path of a file event.
pub fn file_key(ev: &Event) -> Option<(Kind, String)> {
    match &ev.body {
        Some(event::Body::File(f)) => Some((f.kind(), f.path.clone())),
        _ => None,
    }
}

/// The stored file events by kind and path, each with its sequence number; fails if any
/// file event was stored twice (under two sequence numbers).
pub fn stored_files(stored: &[EventRecord]) -> HashMap<(Kind, String), u64> {
    let mut by_key = HashMap::new();
    for r in stored {
        if let Some(key) = r.event.as_ref().and_then(file_key)
            && let Some(earlier) = by_key.insert(key.clone(), r.seq)
        {
            panic!(
                "{key:?} stored twice: sequence numbers {earlier} and {}",
                r.seq
            );
        }
    }
    by_key
}

/// Sequence numbers up to the highest stored one that are not stored.
pub fn missing_seqs(stored: &[EventRecord]) -> BTreeSet<u64> {
    let have: BTreeSet<u64> = stored.iter().map(|r| r.seq).collect();
    let last = have.last().copied().unwrap_or(0);
    (1..=last).filter(|s| !have.contains(s)).collect()
}

/// The agent's and the controller's logs, for a failure's message.
pub fn logs(d: &Deployment, agent: &AgentHandle) -> String {
    format!(
        "agent log:\n{}\ncontroller log:\n{}",
        agent.log_text(),
        std::fs::read_to_string(d.controller_log()).unwrap_or_default()
    )
}

/// Waits until the store holds `key` (then, the stream being in order, everything spooled
/// before it has been sent too); returns all the agent's stored events.
pub fn wait_stored(
    d: &Deployment,
    agent: &AgentHandle,
    key: &(Kind, String),
    timeout: Duration,
) -> Vec<EventRecord> {
    poll(timeout, || {
        let stored = d.stored_events(&agent.id);
        let found = stored
            .iter()
            .any(|r| r.event.as_ref().and_then(file_key).as_ref() == Some(key));
        found.then_some(stored)
    })
    .unwrap_or_else(|| panic!("{key:?} was never stored\n{}", logs(d, agent)))
}

/// Waits until the agent's spool holds `key`, unacknowledged.
pub fn wait_spooled(agent: &AgentHandle, key: &(Kind, String)) -> SpoolSnapshot {
    poll(Duration::from_secs(30), || {
        let snap = agent.spool_snapshot();
        let found = snap
            .unacked
            .iter()
            .any(|e| file_key(e).as_ref() == Some(key));
        found.then_some(snap)
    })
    .unwrap_or_else(|| panic!("{key:?} never reached the spool\n{}", agent.log_text()))
}

/// `controllers = [...]` for an agent's config file.
pub fn controllers(urls: &[&str]) -> String {
    let list: Vec<String> = urls
        .iter()
        .map(|u| toml::Value::from(*u).to_string())
        .collect();
    format!("controllers = [{}]\n", list.join(", "))
}

/// Enrols agent `a1` watching a directory of its own alone, with `urls` as its controllers,
/// starts it and waits until it is online; returns it and the directory.
pub fn online_watching(d: &Deployment, urls: &[&str]) -> (AgentHandle, PathBuf) {
    let mut agent = d.enroll_agent("a1", &[]);
    let watch = watched(d, &agent);
    agent.configure(&controllers(urls));
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(20));
    (agent, watch)
}

/// A directory for the agent's file sensor to watch alone.
pub fn watched(d: &Deployment, agent: &AgentHandle) -> PathBuf {
    let watch = d.dir.path().join("watch");
    std::fs::create_dir(&watch).unwrap();
    agent.watch_only(&watch);
    watch
}

/// Checks that every event of files `0..n` is stored once and no sequence number is missing.
pub fn assert_all_stored_once(d: &Deployment, agent: &AgentHandle, files: &Files, n: usize) {
    let stored = wait_stored(d, agent, &files.keys(n - 1)[1], Duration::from_secs(60));
    // Panics on an event stored twice.
    let by_key = stored_files(&stored);
    let missing: Vec<usize> = (0..n)
        .filter(|i| files.keys(*i).iter().any(|k| !by_key.contains_key(k)))
        .collect();
    assert!(
        missing.is_empty(),
        "files not stored: {missing:?}\n{}",
        logs(d, agent)
    );
    assert_eq!(missing_seqs(&stored), BTreeSet::new(), "gaps in the store");
}

/// A burst of files `0..n` being made in `watch` in the background.
pub struct Burst {
    pub files: std::sync::Arc<Files>,
    pub maker: std::thread::JoinHandle<usize>,
    /// Whether the first events were stored before [`Burst::start`] returned.
    pub flowing: bool,
}

impl Burst {
    /// Starts the burst and returns once the controller has stored file 150's creation (or
    /// 30 s passed: see `flowing`), so a fault injected next hits events in flight.
    pub fn start(d: &Deployment, agent: &AgentHandle, watch: &Path, n: usize) -> Self {
        let files = std::sync::Arc::new(Files::new(watch, "burst", 0));
        let maker = std::thread::spawn({
            let files = files.clone();
            move || files.make(0..n, &AtomicBool::new(false))
        });
        let flowing = poll(Duration::from_secs(30), || {
            let stored = stored_files(&d.stored_events(&agent.id));
            stored.contains_key(&files.keys(150)[0]).then_some(())
        })
        .is_some();
        Self {
            files,
            maker,
            flowing,
        }
    }
}
