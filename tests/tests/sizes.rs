//! Size limits at their bound and one byte past it, against a real controller on loopback: an
//! agent's telemetry (as sent, and as it inflates from gzip, with a gzip bomb), an enrolment
//! request and an admin request. At the bound the message reaches its handler; one past it
//! the transport refuses it and nothing of it is stored.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::store::Events;
use cordon_proto::channel::tls_channel;
use cordon_proto::enrollment_client::EnrollmentClient;
use cordon_proto::limits::{ADMIN_MAX_MESSAGE, AGENT_MAX_MESSAGE, ENROLL_MAX_MESSAGE};
use cordon_proto::{
    AgentMessage, AgentNotice, EnrollRequest, Event, QueryEventsRequest, TelemetryBatch,
    agent_message, event,
};
use cordon_tests::inproc::{TestAgent, TestController, ack_or_end, session};
use prost::Message;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Certificate;

/// Text of each notice in a large batch.
const NOTICE_TEXT: usize = 64 * 1024;

fn notice(seq: u64, len: usize) -> Event {
    Event {
        seq,
        time_ms: 1,
        body: Some(event::Body::Notice(AgentNotice {
            kind: "size".into(),
            message: "x".repeat(len),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn telemetry(events: Vec<Event>) -> AgentMessage {
    AgentMessage {
        msg: Some(agent_message::Msg::Telemetry(TelemetryBatch { events })),
    }
}

/// The last event's text, for trimming a batch to size.
fn last_text(msg: &mut AgentMessage) -> &mut String {
    let Some(agent_message::Msg::Telemetry(b)) = &mut msg.msg else {
        unreachable!()
    };
    match &mut b.events.last_mut().unwrap().body {
        Some(event::Body::Notice(n)) => &mut n.message,
        _ => unreachable!(),
    }
}

/// A telemetry batch of notices from `first_seq` on whose encoding is exactly `len` bytes.
fn batch_of_len(first_seq: u64, len: usize) -> (AgentMessage, u64) {
    let mut events = Vec::new();
    let mut seq = first_seq;
    while telemetry(events.clone()).encoded_len() + 2 * NOTICE_TEXT < len {
        events.push(notice(seq, NOTICE_TEXT));
        seq += 1;
    }
    events.push(notice(seq, NOTICE_TEXT));
    let mut msg = telemetry(events);
    for _ in 0..8 {
        let now = msg.encoded_len();
        let text = last_text(&mut msg);
        let want = (text.len() + len).checked_sub(now).unwrap();
        text.truncate(want.min(text.len()));
        text.extend(std::iter::repeat_n('x', want - text.len()));
        if msg.encoded_len() == len {
            return (msg, seq);
        }
    }
    panic!("no batch of exactly {len} bytes");
}

/// Sends `msg` on a new stream of `agent`'s (gzip-compressed when `gzip`) and returns the
/// acknowledged sequence number, or the status the controller ended the stream with.
async fn send(
    ctl: &TestController,
    agent: &TestAgent,
    msg: AgentMessage,
    gzip: bool,
) -> Result<u64, tonic::Status> {
    let mut client = agent
        .client(&ctl.url)
        .await
        .max_encoding_message_size(usize::MAX);
    if gzip {
        client = client.send_compressed(CompressionEncoding::Gzip);
    }
    let (tx, mut inbound) = session(&mut client, &agent.id).await.unwrap();
    tx.send(msg).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), ack_or_end(&mut inbound));
    answer.await.expect("no answer within 30 s")
}

async fn stored(ctl: &TestController, agent: &TestAgent) -> u64 {
    ctl.ctl.store.event_count(agent.id.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_at_the_size_bound_is_stored_and_one_byte_past_it_is_refused() {
    let ctl = TestController::start().await;
    let agent = ctl.enroll().await;
    let (at, last) = batch_of_len(1, AGENT_MAX_MESSAGE);
    assert_eq!(send(&ctl, &agent, at, false).await.unwrap(), last);
    assert_eq!(stored(&ctl, &agent).await, last);

    let (past, _) = batch_of_len(last + 1, AGENT_MAX_MESSAGE + 1);
    let refused = send(&ctl, &agent, past, false).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused}");
    assert_eq!(
        stored(&ctl, &agent).await,
        last,
        "part of a refused batch was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_telemetry_inflating_to_the_bound_is_stored_and_past_it_or_a_bomb_is_refused() {
    let ctl = TestController::start().await;
    let agent = ctl.enroll().await;
    let (at, last) = batch_of_len(1, AGENT_MAX_MESSAGE);
    assert_eq!(send(&ctl, &agent, at, true).await.unwrap(), last);
    assert_eq!(stored(&ctl, &agent).await, last);

    let (past, _) = batch_of_len(last + 1, AGENT_MAX_MESSAGE + 1);
    let refused = send(&ctl, &agent, past, true).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("decompressing"), "{refused}");

    // 64 MiB of one byte, 64 KiB once compressed: refused as soon as the inflated
    // bytes pass the bound, without inflating the rest.
    let bomb = telemetry(vec![notice(last + 1, 64 << 20)]);
    let t = Instant::now();
    let refused = send(&ctl, &agent, bomb, true).await.unwrap_err();
    println!(
        "gzip bomb of 64 MiB refused in {:?}: {refused}",
        t.elapsed()
    );
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert_eq!(
        stored(&ctl, &agent).await,
        last,
        "part of a refused batch was stored"
    );
    // The agent's next stream is served as before.
    let (next, seq) = batch_of_len(last + 1, 1024);
    assert_eq!(send(&ctl, &agent, next, true).await.unwrap(), seq);
}

#[tokio::test]
async fn enrolment_and_admin_requests_at_the_bound_reach_their_handler_and_past_it_do_not() {
    let ctl = TestController::start().await;
    let ch = tls_channel(&ctl.url, Certificate::from_pem(ctl.ca_pem()), None)
        .await
        .unwrap();
    let mut enrol = EnrollmentClient::new(ch).max_encoding_message_size(usize::MAX);
    let sized = |len: usize| {
        let mut req = EnrollRequest {
            token: String::new(),
            ..Default::default()
        };
        let base = req.encoded_len() + 4; // the field's tag and a 3-byte length
        req.token = "t".repeat(len - base);
        assert_eq!(req.encoded_len(), len);
        req
    };
    // At the bound: the enrolment handler answers (the token is too long to be one).
    let at = enrol.enroll(sized(ENROLL_MAX_MESSAGE)).await.unwrap_err();
    assert_ne!(at.code(), Code::OutOfRange, "{at}");
    assert!(at.message().contains("token"), "{at}");
    let past = enrol
        .enroll(sized(ENROLL_MAX_MESSAGE + 1))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::OutOfRange, "{past}");

    let mut admin = ctl.admin().await.max_encoding_message_size(usize::MAX);
    let query = |len: usize| {
        let mut req = QueryEventsRequest::default();
        let base = 1 + 4; // the field's tag and a 4-byte length
        req.contains = "q".repeat(len - base);
        assert_eq!(req.encoded_len(), len);
        req
    };
    // At the bound: the query handler answers (the text is longer than a query may be).
    let at = admin
        .query_events(query(ADMIN_MAX_MESSAGE))
        .await
        .unwrap_err();
    assert_eq!(at.code(), Code::InvalidArgument, "{at}");
    let past = admin
        .query_events(query(ADMIN_MAX_MESSAGE + 1))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::OutOfRange, "{past}");
    // Both services keep serving.
    ctl.enroll().await;
}
