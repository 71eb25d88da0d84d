//! The controller's database stopped for a minute during a telemetry burst (alone in its
//! test binary: it stops the binary's whole private cluster). The controller stays up and
//! says it is unhealthy (log, health endpoint, a clear error to admin requests); the agent
//! spools; once the database is back everything flows again without a restart, and every
//! event is stored exactly once.

#![allow(clippy::unwrap_used)]

use cordon_controller::store::pg::testing::{start_cluster, stop_cluster};
use cordon_proto::event;
use cordon_proto::file_event::Kind;
use cordon_tests::deploy::free_loopback_port as free_port;
use cordon_tests::replicas::on_postgres;
use cordon_tests::{poll, within};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(60);
/// Files made before the outage and during it.
const FILES: usize = 150;

/// The health endpoint's status code.
fn health(port: u16) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn make_files(dir: &Path, prefix: &str) {
    for i in 0..FILES {
        std::fs::write(dir.join(format!("{prefix}-{i:04}")), "x").unwrap();
    }
}

#[test]
fn a_database_outage_loses_no_event_and_stores_none_twice() {
    let port = free_port();
    let extra = format!("health_listen = \"127.0.0.1:{port}\"");
    let Some((d, _)) = on_postgres("store_outage", &extra) else {
        return;
    };
    let watched = d.dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let mut agent = d.enroll_agent("a1", &[]);
    agent.watch_only(&watched);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    assert_eq!(health(port), 200);

    make_files(&watched, "before");
    stop_cluster();
    let down = Instant::now();
    make_files(&watched, "during");
    assert!(
        within(Duration::from_secs(20), || health(port) == 503),
        "the health endpoint never reported the outage"
    );
    let asked = Instant::now();
    let out = d.try_ctl(&["agents", "list"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("store is unavailable"),
        "{err}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the refusal took {:?}",
        asked.elapsed()
    );
    let log = std::fs::read_to_string(d.controller_log()).unwrap();
    assert!(log.contains("unhealthy: store unavailable"), "{log}");
    // The outage lasts its full minute (a bounded wait: the database is what is awaited).
    std::thread::sleep(OUTAGE.saturating_sub(down.elapsed()));
    start_cluster();

    assert!(
        within(Duration::from_secs(30), || health(port) == 200),
        "the controller never became healthy again"
    );
    let last = watched
        .join(format!("during-{:04}", FILES - 1))
        .display()
        .to_string();
    let stored = poll(Duration::from_secs(90), || {
        let events = d.stored_events(&agent.id);
        let has_last = events.iter().any(|r| created(r).is_some_and(|p| p == last));
        has_last.then_some(events)
    })
    .unwrap_or_else(|| {
        panic!(
            "the events made during the outage never arrived:\n{}",
            agent.log_text()
        )
    });
    let mut seqs: Vec<u64> = stored.iter().map(|r| r.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), stored.len(), "an event was stored twice");
    let mut creates: HashMap<String, usize> = HashMap::new();
    for p in stored.iter().filter_map(created) {
        *creates.entry(p).or_default() += 1;
    }
    for prefix in ["before", "during"] {
        for i in 0..FILES {
            let p = watched
                .join(format!("{prefix}-{i:04}"))
                .display()
                .to_string();
            assert_eq!(creates.get(&p), Some(&1), "{p}");
        }
    }
    let log = std::fs::read_to_string(d.controller_log()).unwrap();
    assert!(log.contains("healthy again"), "{log}");
}

/// The path of a stored file creation.
fn created(r: &cordon_proto::EventRecord) -> Option<String> {
    match r.event.as_ref()?.body.as_ref()? {
        event::Body::File(f) if f.kind() == Kind::Create => Some(f.path.clone()),
        _ => None,
    }
}
