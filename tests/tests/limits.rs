//! Limits under abuse (issue 18), against a real controller on loopback: an HTTP/2 rapid-reset
//! flood from an anonymous client is cut off while others are served, an admin holds a bounded
//! number of streams, and an agent identity has one stream. (Sizes and fairness: `sizes.rs`.)

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::store::Events;
use cordon_proto::{ListAgentsRequest, TailEventsRequest};
use cordon_tests::eventually;
use cordon_tests::inproc::{TestController, connected, next_ack, notice_batch, stream_end};
use cordon_tests::rawconn::{tls_from, tls_with};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tonic::Code;

/// Most streams one flooding connection opens and resets.
const FLOOD_STREAMS: usize = 100_000;
/// How long the flood goes on, a new connection each time the server ends one.
const FLOOD_TIME: Duration = Duration::from_secs(3);
/// Most resets one connection may get through before the server ends it, in this test: the
/// server's own bound is `MAX_PENDING_ACCEPT_RESETS` streams reset before it takes them up;
/// those it took up first count against `MAX_LOCAL_ERROR_RESETS` and the connection's stream
/// bound instead, so the count on one connection varies with timing.
const MOST_RESETS: usize = 5_000;
/// Most flooding connections.
const FLOOD_CONNECTIONS: usize = 200;

/// What came of one flooding connection.
struct Flood {
    /// Streams opened and reset before the connection ended (or the bound ran out).
    reset: usize,
    /// Why the connection ended, if the server ended it (its GOAWAY, or a write into the
    /// connection it closed after one).
    ended: Option<String>,
}

/// Opens streams on one anonymous connection and resets each at once (CVE-2023-44487), as
/// fast as the connection allows, until the server ends it or `FLOOD_STREAMS` is reached.
async fn rapid_reset(url: &str, ca_pem: &str) -> Flood {
    let tls = tls_from(Ipv4Addr::new(127, 0, 0, 77), url, ca_pem).await;
    let (mut client, conn) = h2::client::Builder::new()
        .max_concurrent_reset_streams(FLOOD_STREAMS)
        .handshake::<_, bytes::Bytes>(tls)
        .await
        .expect("h2 handshake");
    let driver = tokio::spawn(conn);
    let uri = format!("{url}/cordon.v1.AdminService/ListAgents");
    let mut reset = 0;
    while reset < FLOOD_STREAMS {
        let req = http::Request::post(&uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        if std::future::poll_fn(|cx| client.poll_ready(cx))
            .await
            .is_err()
        {
            break;
        }
        match client.send_request(req, false) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => break,
        }
        reset += 1;
        if reset % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(client);
    let ended = tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .ok()
        .and_then(|r| r.unwrap().err())
        .map(|e| format!("{e:?}"));
    Flood { reset, ended }
}

/// Floods connection after connection for `FLOOD_TIME`; each one's outcome.
async fn floods(url: String, ca_pem: String) -> Vec<Flood> {
    let start = Instant::now();
    let mut all = Vec::new();
    while start.elapsed() < FLOOD_TIME && all.len() < FLOOD_CONNECTIONS {
        all.push(rapid_reset(&url, &ca_pem).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_is_cut_off_and_others_are_still_answered() {
    let ctl = TestController::start().await;
    let mut admin = ctl.admin().await;
    admin.list_agents(ListAgentsRequest {}).await.unwrap();
    let flood = tokio::spawn(floods(ctl.url.clone(), ctl.ca_pem()));
    // An honest administrator keeps calling on their own connection while the flood runs.
    let (mut slowest, mut calls) = (Duration::ZERO, 0);
    while !flood.is_finished() && calls < 1000 {
        let t = Instant::now();
        let call = admin.list_agents(ListAgentsRequest {});
        let answered = tokio::time::timeout(Duration::from_secs(5), call).await;
        assert!(
            matches!(answered, Ok(Ok(_))),
            "an honest call during the flood: {answered:?}"
        );
        slowest = slowest.max(t.elapsed());
        calls += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let floods = flood.await.unwrap();
    let mut resets: Vec<usize> = floods.iter().map(|f| f.reset).collect();
    resets.sort_unstable();
    let (median, most) = (resets[resets.len() / 2], resets[resets.len() - 1]);
    let calm = floods
        .iter()
        .filter(|f| {
            f.ended
                .as_ref()
                .is_some_and(|e| e.contains("ENHANCE_YOUR_CALM"))
        })
        .count();
    println!(
        "rapid reset: {} connections, streams reset on one before it was cut: median {median}, at most {most}, {calm} ended by GOAWAY ENHANCE_YOUR_CALM; {calls} honest calls answered, slowest {slowest:?}",
        floods.len()
    );
    for f in &floods {
        let ended = f
            .ended
            .as_deref()
            .expect("a flooding connection was never ended by the server");
        // The server's GOAWAY, or the flood writing into the connection closed after it.
        assert!(
            ended.contains("ENHANCE_YOUR_CALM")
                || ended.contains("BrokenPipe")
                || ended.contains("ConnectionReset"),
            "{ended}"
        );
        assert!(
            f.reset < MOST_RESETS,
            "{} resets went through on one connection",
            f.reset
        );
    }
    assert!(
        calm > 0,
        "no connection saw the server's GOAWAY ENHANCE_YOUR_CALM"
    );
    assert!(calls >= 10, "too few honest calls to say anything: {calls}");
}

#[tokio::test]
async fn an_admin_holds_a_bounded_number_of_streams_and_a_closed_one_frees_its_place() {
    let ctl = TestController::start_configured("[listener]\nmax_streams_per_admin = 3\n").await;
    let mut admin = ctl.admin().await;
    let mut tails = Vec::new();
    for _ in 0..3 {
        let tail = admin.tail_events(TailEventsRequest::default()).await;
        tails.push(tail.unwrap().into_inner());
    }
    let refused = admin
        .tail_events(TailEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert!(
        refused.message().contains("already has 3 streams open"),
        "{refused}"
    );
    // Unary calls are not held back by the bound.
    admin.list_agents(ListAgentsRequest {}).await.unwrap();
    // The three open tails still deliver: an agent's events reach each of them.
    let agent = ctl.enroll().await;
    let (tx, _inbound) = connected(&ctl, &agent).await;
    tx.send(notice_batch(1..=1)).await.unwrap();
    for tail in &mut tails {
        let got = tokio::time::timeout(Duration::from_secs(10), tail.message()).await;
        assert!(matches!(got, Ok(Ok(Some(_)))), "{got:?}");
    }
    // A tail hung up gives its place back.
    tails.pop();
    let again = eventually(Duration::from_secs(10), || {
        let mut admin = admin.clone();
        async move { admin.tail_events(TailEventsRequest::default()).await.ok() }
    })
    .await;
    assert!(again.is_some(), "the closed tail's place was not freed");
}

#[tokio::test]
async fn an_agent_identity_has_one_stream_the_newest() {
    let ctl = TestController::start().await;
    let agent = ctl.enroll().await;
    let (_old_tx, mut old) = connected(&ctl, &agent).await;
    let (new_tx, mut new) = connected(&ctl, &agent).await;
    // The older stream ends, saying why.
    let status = stream_end(&mut old)
        .await
        .expect_err("the older stream must end with a status");
    assert_eq!(status.code(), Code::Aborted, "{status}");
    assert!(status.message().contains("superseded"), "{status}");
    // The newer one carries telemetry and its acknowledgement.
    new_tx.send(notice_batch(1..=2)).await.unwrap();
    assert_eq!(next_ack(&mut new).await, 2);
    assert_eq!(
        ctl.ctl.store.event_count(agent.id.clone()).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn the_listener_speaks_tls_1_3_only() {
    let ctl = TestController::start().await;
    let (url, ca) = (ctl.url.clone(), ctl.ca_pem());
    let source = Ipv4Addr::LOCALHOST;
    let old = tls_with(source, &url, &ca, &[&rustls::version::TLS12]).await;
    let refused = old.expect_err("a TLS 1.2 handshake succeeded");
    assert!(refused.to_string().contains("ProtocolVersion"), "{refused}");
    let new = tls_with(source, &url, &ca, &[&rustls::version::TLS13]).await;
    let (_, session) = new.unwrap().into_inner();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}
