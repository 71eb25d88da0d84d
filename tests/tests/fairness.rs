//! Telemetry fairness (issue 18), against a real controller on loopback: one agent floods
//! telemetry as fast as its stream takes it while another sends now and then. The quiet one's
//! batches keep being acknowledged as quickly as before the flood; the flooding one is held
//! back by its stream (a bounded number of batches in flight, never an unbounded queue in the
//! controller) and loses nothing it sent: every event stored exactly once.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::store::Events;
use cordon_proto::{AgentMessage, AgentNotice, Event, TelemetryBatch, agent_message, event};
use cordon_tests::inproc::{TestController, connected, next_ack, notice_batch};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Events in each of the flood's batches, and their text.
const FLOOD_BATCH: u64 = 500;
const FLOOD_TEXT: usize = 200;
/// The flood's bounds.
const FLOOD_BATCHES: u64 = 400;
const FLOOD_TIME: Duration = Duration::from_secs(8);
/// Longest a quiet agent's batch may wait for its acknowledgement during the flood: its
/// usual latency is a few milliseconds, and an alert on its host must still lead to
/// containment well within a second.
const QUIET_MOST: Duration = Duration::from_secs(1);
/// Most flood batches sent but not yet acknowledged at any time: what the stream's buffers
/// (the client's queue, HTTP/2 flow control, the controller's pipeline) hold.
const MOST_IN_FLIGHT: u64 = 64;

fn flood_batch(n: u64) -> AgentMessage {
    let events = (n * FLOOD_BATCH + 1..=(n + 1) * FLOOD_BATCH)
        .map(|seq| Event {
            seq,
            time_ms: 1,
            body: Some(event::Body::Notice(AgentNotice {
                kind: "flood".into(),
                message: "f".repeat(FLOOD_TEXT),
                count: seq,
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    AgentMessage {
        msg: Some(agent_message::Msg::Telemetry(TelemetryBatch { events })),
    }
}

/// Send-to-acknowledgement times of `n` one-event batches, one every 100 ms, from `first_seq`.
async fn quiet_latencies(
    ctl: &TestController,
    id: &cordon_tests::inproc::TestAgent,
    first_seq: u64,
    n: u64,
) -> Vec<Duration> {
    let (tx, mut inbound) = connected(ctl, id).await;
    let mut times = Vec::new();
    for seq in first_seq..first_seq + n {
        let t = Instant::now();
        tx.send(notice_batch(seq..=seq)).await.unwrap();
        let acked = tokio::time::timeout(Duration::from_secs(10), next_ack(&mut inbound)).await;
        assert_eq!(
            acked.expect("a quiet batch was not acknowledged within 10 s"),
            seq
        );
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_agent_is_held_back_loses_nothing_and_does_not_starve_a_quiet_one() {
    let ctl = TestController::start().await;
    let (quiet, loud) = (ctl.enroll().await, ctl.enroll().await);
    let before = quiet_latencies(&ctl, &quiet, 1, 10).await;

    let (tx, mut inbound) = connected(&ctl, &loud).await;
    let acked = Arc::new(AtomicU64::new(0));
    let acks = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let last = FLOOD_BATCHES * FLOOD_BATCH;
            while acked.load(Ordering::SeqCst) < last {
                let seq = next_ack(&mut inbound).await;
                acked.store(seq, Ordering::SeqCst);
            }
        })
    };
    let flood = tokio::spawn({
        let acked = acked.clone();
        async move {
            let (start, mut sent, mut most) = (Instant::now(), 0, 0);
            while sent < FLOOD_BATCHES && start.elapsed() < FLOOD_TIME {
                tx.send(flood_batch(sent)).await.unwrap();
                sent += 1;
                most = most.max(sent - acked.load(Ordering::SeqCst) / FLOOD_BATCH);
            }
            (sent, most, start.elapsed(), tx)
        }
    });
    let during = quiet_latencies(&ctl, &quiet, 11, 20).await;
    let (sent, most_in_flight, took, _tx) = flood.await.unwrap();
    let last = sent * FLOOD_BATCH;
    let drained = tokio::time::timeout(Duration::from_secs(60), async {
        while acked.load(Ordering::SeqCst) < last {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    drained
        .await
        .expect("the flood's last batch was not acknowledged");
    acks.abort();

    let stored = ctl.ctl.store.event_count(loud.id.clone()).await.unwrap();
    println!(
        "fairness: quiet agent send-to-ack before the flood p50 {:?} max {:?}, during it p50 {:?} max {:?}; flood {} events in {took:?} ({:.0}/s), at most {most_in_flight} batches in flight",
        before[before.len() / 2],
        before[before.len() - 1],
        during[during.len() / 2],
        during[during.len() - 1],
        last,
        last as f64 / took.as_secs_f64()
    );
    assert_eq!(
        stored, last,
        "the flooding agent's events, stored once each"
    );
    let slowest = during[during.len() - 1];
    assert!(
        slowest < QUIET_MOST,
        "a quiet batch waited {slowest:?} during the flood"
    );
    assert!(
        most_in_flight <= MOST_IN_FLIGHT,
        "{most_in_flight} batches in flight: the flood was queued, not held back"
    );
    assert!(
        sent >= 10,
        "the flood hardly ran ({sent} batches): nothing was shown"
    );
}
