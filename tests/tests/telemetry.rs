//! Telemetry from the real agent runtime to a real controller: every event stored exactly
//! once, through controller outages, and the spool emptied behind the acknowledgements.

#![allow(clippy::unwrap_used)]

use cordon_controller::store::Events;
use cordon_proto::{AgentNotice, event};
use cordon_tests::eventually;
use cordon_tests::inproc::TestController;
use prost::Message;
use std::time::Duration;

fn note(i: u64) -> event::Body {
    event::Body::Notice(AgentNotice {
        kind: "test".into(),
        count: i,
        ..Default::default()
    })
}

/// Waits until the controller holds the agent's start notice plus test events 0..n, each
/// exactly once and in sequence order with no gaps.
async fn expect_stored(ctl: &TestController, agent_id: &str, n: u64, timeout: Duration) {
    let all = eventually(timeout, || async {
        let stored = ctl
            .ctl
            .store
            .events(agent_id.to_string(), 100_000)
            .await
            .unwrap();
        (stored.len() as u64 == n + 1).then_some(stored)
    })
    .await;
    let stored = all.unwrap_or_else(|| panic!("expected {} events", n + 1));
    let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=n + 1).collect::<Vec<_>>(),
        "gaps or repeats in sequence numbers"
    );
    let mut counts: Vec<u64> = stored
        .iter()
        .filter_map(
            |e| match cordon_proto::Event::decode(e.body.as_slice()).ok()?.body {
                Some(event::Body::Notice(n)) if n.kind == "test" => Some(n.count),
                _ => None,
            },
        )
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (0..n).collect::<Vec<_>>(),
        "the stored events are not the ones emitted"
    );
}

#[tokio::test]
async fn events_are_stored_once_and_the_spool_empties() {
    let ctl = TestController::start().await;
    let a = ctl.enroll().await;
    let running = a.run();
    let emit = running.uplink.telemetry.emitter();
    for i in 0..5_000 {
        emit.emit(note(i));
    }
    // 5,000 events plus the agent's own start notice.
    expect_stored(&ctl, &a.id, 5_000, Duration::from_secs(30)).await;
    let t = running.uplink.telemetry.clone();
    let drained = eventually(Duration::from_secs(10), || async {
        (t.lock().depth() == 0).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "the spool still holds acknowledged events"
    );
}

#[tokio::test]
async fn events_emitted_during_a_controller_outage_arrive_exactly_once() {
    let mut ctl = TestController::start().await;
    let a = ctl.enroll().await;
    let running = a.run();
    let emit = running.uplink.telemetry.emitter();
    for i in 0..1_000 {
        emit.emit(note(i));
    }
    ctl.stop().await;
    for i in 1_000..3_000 {
        emit.emit(note(i));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctl.restart().await;
    for i in 3_000..4_000 {
        emit.emit(note(i));
    }
    expect_stored(&ctl, &a.id, 4_000, Duration::from_secs(40)).await;
}

#[tokio::test]
async fn file_changes_arrive_with_their_kind_and_hash() {
    use cordon_proto::{Event, FileEvent, file_event::Kind};
    let ctl = TestController::start().await;
    let a = ctl.enroll().await;
    let dir = tempfile::tempdir().unwrap();
    let _running = a.run_watching(&[dir.path()]);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let file_events = || async {
        let stored = ctl.ctl.store.events(a.id.clone(), 1000).await.unwrap();
        stored
            .iter()
            .filter(|s| s.kind == "file")
            .filter_map(|s| match Event::decode(s.body.as_slice()).ok()?.body {
                Some(event::Body::File(fe)) => Some(fe),
                _ => None,
            })
            .collect::<Vec<FileEvent>>()
    };
    let has = |evs: &[FileEvent], k: Kind, p: &std::path::Path| {
        evs.iter()
            .find(|e| e.kind() == k && e.path == p.display().to_string())
            .cloned()
    };

    let f = dir.path().join("payload.sh");
    std::fs::write(&f, b"#!/bin/sh\necho hi\n").unwrap();
    let modify = eventually(Duration::from_secs(10), || async {
        let evs = file_events().await;
        has(&evs, Kind::Create, &f)?;
        has(&evs, Kind::Modify, &f)
    })
    .await
    .expect("create and modify did not arrive");
    assert_eq!(modify.sha256, sha256_hex(b"#!/bin/sh\necho hi\n"));
    assert_eq!(modify.size, 18);

    let moved = dir.path().join("renamed.sh");
    std::fs::rename(&f, &moved).unwrap();
    std::fs::remove_file(&moved).unwrap();
    let rename = eventually(Duration::from_secs(10), || async {
        let evs = file_events().await;
        has(&evs, Kind::Delete, &moved)?;
        has(&evs, Kind::Rename, &moved)
    })
    .await
    .expect("rename and delete did not arrive");
    assert_eq!(rename.old_path, f.display().to_string());
}

fn sha256_hex(data: &[u8]) -> String {
    cordon_proto::identity::fingerprint(data)
        .trim_start_matches("sha256:")
        .to_string()
}
