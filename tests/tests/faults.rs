//! Faults in the telemetry pipeline, with the real binaries: the agent killed mid-stream, the
//! link to the controller cut, the spool filled past its bound, a spool segment corrupted on
//! disk. Events are files made in a directory the agent's file sensor watches (and nothing
//! else), so every payload is known; the outcome is checked in the controller's store through
//! `cordonctl events query`, against what the agent's spool held (read from a copy).

#![allow(clippy::unwrap_used)]

use cordon_proto::{AgentNotice, Event, EventRecord, event};
use cordon_tests::burst::{
    Files, file_key, logs, missing_seqs, stored_files, wait_spooled, wait_stored,
};
use cordon_tests::deploy::{AgentHandle, Deployment, SpoolSnapshot};
use cordon_tests::{poll, require_root};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Smallest spool bound the agent accepts (`spool_max_bytes`): 1 MiB, in 64 KiB segments.
const SMALL_SPOOL: &str = "spool_max_bytes = 1048576\n";

fn notices<'a>(stored: &'a [EventRecord], kind: &str) -> Vec<(u64, &'a AgentNotice)> {
    stored
        .iter()
        .filter_map(|r| match r.event.as_ref()?.body.as_ref()? {
            event::Body::Notice(n) if n.kind == kind => Some((r.seq, n)),
            _ => None,
        })
        .collect()
}

/// Checks that every event in `spooled` is stored, exactly as it was spooled.
fn assert_stored_as_spooled(stored: &[EventRecord], spooled: &[Event]) {
    let by_seq: HashMap<u64, &EventRecord> = stored.iter().map(|r| (r.seq, r)).collect();
    for ev in spooled {
        let got = by_seq.get(&ev.seq).and_then(|r| r.event.as_ref());
        assert_eq!(
            got,
            Some(ev),
            "spooled event {} is not stored as spooled",
            ev.seq
        );
    }
}

/// Waits until the agent's heartbeat says it has nothing left to send (so a fault from here
/// on meets an empty backlog).
fn wait_caught_up(d: &Deployment, agent: &AgentHandle) {
    let caught_up = poll(Duration::from_secs(20), || {
        let m = &d.agent_record(&agent.id)["metrics"];
        (m["rss_bytes"].as_u64().unwrap_or(0) > 0 && m["spool_events"] == 0).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "the agent never caught up: {}\n{}",
        d.agent_record(&agent.id),
        logs(d, agent)
    );
}

/// Waits until the agent has said it started `times` times (its file sensor is watching
/// by then: it starts before the agent connects).
fn wait_started(d: &Deployment, agent: &AgentHandle, times: usize) {
    let started = poll(Duration::from_secs(30), || {
        (notices(&d.stored_events(&agent.id), "agent_started").len() == times).then_some(())
    });
    assert!(
        started.is_some(),
        "the agent did not start again\n{}",
        logs(d, agent)
    );
}

/// A deployment with one running agent whose file sensor watches only `DIR/watch`.
fn deploy_watching(d: Deployment, agent_toml: &str) -> (Deployment, AgentHandle, PathBuf) {
    let watch = d.dir.path().join("watch");
    std::fs::create_dir(&watch).unwrap();
    let mut agent = d.enroll_agent("a1", &[]);
    agent.watch_only(&watch);
    agent.configure(agent_toml);
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(15));
    (d, agent, watch)
}

/// Makes files while the agent streams them and SIGKILLs the agent once some are stored;
/// returns what its spool held then.
fn kill_mid_stream(d: &Deployment, agent: &mut AgentHandle, files: Files) -> SpoolSnapshot {
    let files = Arc::new(files);
    let stop = Arc::new(AtomicBool::new(false));
    let maker = std::thread::spawn({
        let (files, stop) = (files.clone(), stop.clone());
        move || files.make(0..2000, &stop)
    });
    let flowing = poll(Duration::from_secs(30), || {
        let stored = stored_files(&d.stored_events(&agent.id));
        let ours = (0..2000).take_while(|i| stored.contains_key(&files.keys(*i)[0]));
        (ours.count() >= 150).then_some(())
    });
    agent.proc.as_mut().unwrap().kill9();
    stop.store(true, Ordering::Relaxed);
    maker.join().unwrap();
    assert!(flowing.is_some(), "events never flowed\n{}", logs(d, agent));
    agent.spool_snapshot()
}

#[test]
fn sigkill_mid_stream_stores_every_spooled_event_exactly_once() {
    let (d, mut agent, watch) = deploy_watching(Deployment::loopback(""), "");
    // A kill can land when everything happens to be acknowledged: try again (up to three
    // kills, each checked) until one finds events spooled and not yet stored.
    let mut at_kills = Vec::new();
    for round in 0..3 {
        if round > 0 {
            d.start_agent(&mut agent);
            wait_started(&d, &agent, round + 1);
        }
        let snap = kill_mid_stream(&d, &mut agent, Files::new(&watch, &format!("r{round}"), 0));
        let caught = !snap.unacked.is_empty();
        at_kills.push(snap);
        if caught {
            break;
        }
    }
    assert!(
        at_kills.last().is_some_and(|s| !s.unacked.is_empty()),
        "no kill found an unacknowledged event: (acked, last) {:?}",
        at_kills
            .iter()
            .map(|s| (s.acked, s.last_seq))
            .collect::<Vec<_>>()
    );

    d.start_agent(&mut agent);
    wait_started(&d, &agent, at_kills.len() + 1);
    let after = Files::new(&watch, "after", 0);
    after.make_all(0..50);
    let stored = wait_stored(&d, &agent, &after.keys(49)[1], Duration::from_secs(60));

    for at_kill in &at_kills {
        assert_stored_as_spooled(&stored, &at_kill.unacked);
    }
    let files = stored_files(&stored);
    assert_eq!(missing_seqs(&stored), BTreeSet::new(), "gaps in the store");
    for key in (0..50).flat_map(|i| after.keys(i)) {
        assert!(
            files.contains_key(&key),
            "{key:?} made after the restart is missing"
        );
    }
}

#[test]
fn netns_a_cut_link_holds_events_in_the_spool_until_it_is_back() {
    if !require_root("netns_a_cut_link_holds_events_in_the_spool_until_it_is_back") {
        return;
    }
    let (d, agent, watch) = deploy_watching(Deployment::namespaces(""), "");
    let before = Files::new(&watch, "before", 0);
    before.make_all(0..20);
    wait_stored(&d, &agent, &before.keys(19)[1], Duration::from_secs(30));

    d.set_agent_link(false);
    let during = Files::new(&watch, "during", 0);
    let n = 300;
    during.make_all(0..n);
    let held = wait_spooled(&agent, &during.keys(n - 1)[1]);
    let held_keys: BTreeSet<_> = held.unacked.iter().filter_map(file_key).collect();
    for key in (0..n).flat_map(|i| during.keys(i)) {
        assert!(held_keys.contains(&key), "{key:?} is not in the spool");
    }
    // A while later the store still has none of them: they wait in the spool.
    std::thread::sleep(Duration::from_secs(3));
    let stored = stored_files(&d.stored_events(&agent.id));
    // (Only the files made while the link was down: the spool on disk may still hold some
    // stored ones, as the acknowledged number is written at most once a second.)
    let early: Vec<_> = (0..n)
        .flat_map(|i| during.keys(i))
        .filter(|k| stored.contains_key(k))
        .collect();
    assert!(
        early.is_empty(),
        "stored while the link was down: {early:?}"
    );
    assert!(agent.spool_snapshot().unacked.len() >= 2 * n);

    d.set_agent_link(true);
    let stored = wait_stored(&d, &agent, &during.keys(n - 1)[1], Duration::from_secs(60));
    assert_stored_as_spooled(&stored, &held.unacked);
    assert_eq!(missing_seqs(&stored), BTreeSet::new(), "gaps in the store");
    let files = stored_files(&stored);
    let creates: Vec<u64> = (0..n).map(|i| files[&during.keys(i)[0]]).collect();
    assert!(
        creates.windows(2).all(|w| w[0] < w[1]),
        "stored out of order: {creates:?}"
    );
    // And the agent says its backlog is gone.
    wait_caught_up(&d, &agent);
}

#[test]
fn a_full_spool_reports_exactly_the_events_it_dropped() {
    let (mut d, agent, watch) = deploy_watching(Deployment::loopback(""), SMALL_SPOOL);
    wait_caught_up(&d, &agent);
    d.stop_controller();
    // About 640 bytes of spool per file with these long names: 2500 files overflow 1 MiB
    // by half, not so much that a loss report is itself pushed out.
    let files = Files::new(&watch, "full", 200);
    let n = 2500;
    files.make_spooled(n, &agent);
    // The loss report follows the events that displaced the oldest ones.
    let reported = poll(Duration::from_secs(10), || {
        let snap = agent.spool_snapshot();
        let lost = snap
            .unacked
            .iter()
            .any(|e| matches!(&e.body, Some(event::Body::Notice(n)) if n.kind == "events_lost"));
        lost.then_some(())
    });
    assert!(reported.is_some(), "the spool never overflowed");
    d.start_controller();
    let stored = wait_stored(&d, &agent, &files.keys(n - 1)[1], Duration::from_secs(90));

    let missing = missing_seqs(&stored);
    assert!(!missing.is_empty(), "nothing was dropped");
    let lost = notices(&stored, "events_lost");
    let mut reported = BTreeSet::new();
    for (seq, n) in &lost {
        assert!(n.first_seq <= n.last_seq && n.last_seq < *seq, "{n:?}");
        assert_eq!(n.count, n.last_seq - n.first_seq + 1, "{n:?}");
        for s in n.first_seq..=n.last_seq {
            assert!(
                reported.insert(s),
                "sequence number {s} reported lost twice"
            );
        }
    }
    assert_eq!(
        reported, missing,
        "the loss reports do not name what is missing"
    );
    let total: u64 = lost.iter().map(|(_, n)| n.count).sum();
    assert_eq!(total, missing.len() as u64);
    // Every file event made is either stored or counted as lost.
    let stored_files = stored_files(&stored).len() as u64;
    assert_eq!(stored_files + total, 2 * n as u64);
    // The agent's own count agrees.
    let counted = poll(Duration::from_secs(10), || {
        let m = &d.agent_record(&agent.id)["metrics"];
        (m["events_lost"] == total).then_some(())
    });
    assert!(counted.is_some(), "{}", d.agent_record(&agent.id));
}

#[test]
fn a_corrupt_spool_segment_is_reported_and_telemetry_carries_on() {
    let (mut d, mut agent, watch) = deploy_watching(Deployment::loopback(""), SMALL_SPOOL);
    wait_caught_up(&d, &agent);
    d.stop_controller();
    // About 400 KB: six 64 KiB segments waiting for the controller.
    let files = Files::new(&watch, "held", 200);
    let n = 600;
    files.make_spooled(n, &agent);
    agent.proc.as_mut().unwrap().terminate();
    let intact = agent.spool_snapshot();

    // Flip bytes in the middle of a segment that is neither the oldest nor the newest.
    let mut segments: Vec<PathBuf> = std::fs::read_dir(agent.spool_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    let mut bytes = std::fs::read(&segments[1]).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&segments[1], bytes).unwrap();
    let damaged = agent.spool_snapshot();
    assert_eq!(damaged.report.corrupt_regions, 1);
    let kept: BTreeSet<u64> = damaged.unacked.iter().map(|e| e.seq).collect();
    let cut: BTreeSet<u64> = intact
        .unacked
        .iter()
        .map(|e| e.seq)
        .filter(|s| !kept.contains(s))
        .collect();
    assert!(!cut.is_empty());

    d.start_agent(&mut agent);
    d.start_controller();
    wait_started(&d, &agent, 2);
    let later = Files::new(&watch, "later", 0);
    later.make_all(0..20);
    let stored = wait_stored(&d, &agent, &later.keys(19)[1], Duration::from_secs(60));

    let corrupt = notices(&stored, "spool_corrupt");
    assert_eq!(corrupt.len(), 1, "{corrupt:?}");
    let (notice_seq, notice) = corrupt[0];
    let bytes = format!("{} bytes", damaged.report.corrupt_bytes);
    assert!(notice.message.contains(&bytes), "{notice:?}");
    // What survived the damage is stored as spooled; only what was cut is missing.
    assert_stored_as_spooled(&stored, &damaged.unacked);
    assert_eq!(missing_seqs(&stored), cut);
    // And a loss report names exactly those sequence numbers.
    let reported: BTreeSet<u64> = notices(&stored, "events_lost")
        .iter()
        .flat_map(|(_, n)| n.first_seq..=n.last_seq)
        .collect();
    assert_eq!(reported, cut, "the loss report does not name what was cut");
    // New events flow after the notice.
    let files = stored_files(&stored);
    for key in (0..20).flat_map(|i| later.keys(i)) {
        assert!(files[&key] > notice_seq, "{key:?}");
    }
}
