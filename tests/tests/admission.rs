//! The controller under abuse from anyone who can reach its port, against a real controller
//! on loopback: connections that never make a request are closed, connections past the caps
//! are refused while clients already in keep working, and wrong enrolment tokens are
//! rate-limited, never signed for, and logged in summary.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::store::Agents;
use cordon_proto::channel::tls_channel;
use cordon_proto::*;
use cordon_tests::eventually;
use cordon_tests::inproc::{TestController, connected, enrol_with};
use cordon_tests::rawconn::{closed_within, preface_only_from, tcp_from, tls_from};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

#[tokio::test]
async fn connections_that_send_no_request_are_closed_but_idle_agent_streams_and_admins_stay() {
    let ctl = TestController::start_configured(
        "[listener]\nhandshake_timeout_secs = 1\nfirst_request_timeout_secs = 2\n",
    )
    .await;
    let agent = ctl.enroll().await;
    // An agent's stream and an admin's connection, both idle from here on.
    let (_tx, mut inbound) = connected(&ctl, &agent).await;
    let mut admin = ctl.admin().await;
    admin.list_agents(ListAgentsRequest {}).await.unwrap();

    let lo = Ipv4Addr::LOCALHOST;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tcp_from(lo, &ctl.url).await);
    }
    let mut no_request = tls_from(lo, &ctl.url, &ctl.ca_pem()).await;
    let mut preface_only = preface_only_from(lo, &ctl.url, &ctl.ca_pem()).await;
    for (i, conn) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(conn, Duration::from_secs(10)).await,
            "TCP connection {i} without a TLS handshake stayed open"
        );
    }
    assert!(
        closed_within(&mut no_request, Duration::from_secs(10)).await,
        "a TLS connection without the HTTP/2 preface stayed open"
    );
    assert!(
        closed_within(&mut preface_only, Duration::from_secs(10)).await,
        "an HTTP/2 connection without a request stayed open"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Past every deadline, the idle agent stream still carries a command and the admin's
    // connection still answers.
    ctl.ctl
        .submit_command(
            agent.id.clone(),
            action::Kind::Ping(Ping {}),
            Duration::from_secs(60),
            "t".into(),
        )
        .await
        .unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(5), inbound.message())
        .await
        .expect("no command on the idle agent stream");
    assert!(
        matches!(
            delivered,
            Ok(Some(ControllerMessage {
                msg: Some(controller_message::Msg::Command(_))
            }))
        ),
        "{delivered:?}"
    );
    admin.list_agents(ListAgentsRequest {}).await.unwrap();
}

#[tokio::test]
async fn connections_past_the_caps_are_closed_and_clients_are_served_again_once_they_go() {
    let ctl = TestController::start_configured(
        "[listener]\nhandshake_timeout_secs = 60\nfirst_request_timeout_secs = 60\n\
         max_connections = 6\nmax_connections_per_source = 3\n",
    )
    .await;
    let mut admin = ctl.admin().await; // 1 open, from 127.0.0.1
    let (flood, other, third) = (
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tcp_from(flood, &ctl.url).await); // 4 open
    }
    // The flooding source's next connection is closed at once; another source is served.
    let mut over = tcp_from(flood, &ctl.url).await;
    assert!(
        closed_within(&mut over, Duration::from_secs(5)).await,
        "a connection past the per-source cap stayed open"
    );
    let mut second_admin = cordonctl::client::connect(&ctl.admin)
        .await
        .expect("another source is served"); // 5
    second_admin
        .list_agents(ListAgentsRequest {})
        .await
        .unwrap();
    held.push(tcp_from(other, &ctl.url).await); // 6: the total cap
    for source in [other, third] {
        let mut over = tcp_from(source, &ctl.url).await;
        assert!(
            closed_within(&mut over, Duration::from_secs(5)).await,
            "a connection past the total cap stayed open"
        );
    }
    assert!(
        cordonctl::client::connect(&ctl.admin).await.is_err(),
        "a new connection past the total cap was served"
    );
    // Connections already open are not affected.
    admin.list_agents(ListAgentsRequest {}).await.unwrap();

    drop(held);
    let served = eventually(Duration::from_secs(10), || async {
        let mut client = cordonctl::client::connect(&ctl.admin).await.ok()?;
        client.list_agents(ListAgentsRequest {}).await.ok()
    })
    .await;
    assert!(
        served.is_some(),
        "no new client was served after the flood went"
    );
}

#[tokio::test]
async fn wrong_tokens_are_rate_limited_sign_nothing_and_are_logged_in_summary() {
    let (logs, _guard) = cordon_tests::logs::capture();
    let ctl = TestController::start_configured(
        "[enrolment]\nburst = 5\nrefill_per_minute = 60\n\
         [listener]\nrefusal_log_interval_secs = 1\n",
    )
    .await;
    let ch = tls_channel(&ctl.url, Certificate::from_pem(ctl.ca_pem()), None)
        .await
        .unwrap();
    let mut client = enrollment_client::EnrollmentClient::new(ch);
    // A well-formed request (a real CSR) that only lacks a valid token.
    let key = rcgen::KeyPair::generate().unwrap();
    let wrong = EnrollRequest {
        token: "cdt_guessed".into(),
        csr_der: cordon_agent::uplink::enroll::csr_for(&key).unwrap(),
        host: Some(HostFacts {
            hostname: "guesser".into(),
            ..Default::default()
        }),
        labels: HashMap::new(),
    };
    const ATTEMPTS: usize = 40;
    let mut codes = Vec::new();
    for _ in 0..ATTEMPTS {
        let err = client.enroll(wrong.clone()).await.unwrap_err();
        if err.code() == Code::ResourceExhausted {
            assert!(err.message().contains("retry later"), "{err}");
        }
        codes.push(err.code());
    }
    assert_eq!(codes[..5], [Code::Unauthenticated; 5], "{codes:?}");
    let limited = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    assert!(
        limited >= ATTEMPTS - 10,
        "only {limited} refused: {codes:?}"
    );
    assert_eq!(
        ctl.ctl.ca.agent_certs_signed(),
        0,
        "the CA signed for a wrong token"
    );

    // Meanwhile another source enrols with a valid token.
    let t = ctl.token(1, 600).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ctl.ca_pem()))
        .domain_name("127.0.0.1");
    let elsewhere = Channel::from_shared(ctl.url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .local_address(Some(Ipv4Addr::new(127, 0, 0, 2).into()))
        .connect()
        .await
        .unwrap();
    let valid = EnrollRequest {
        token: t.token,
        csr_der: cordon_agent::uplink::enroll::csr_for(&rcgen::KeyPair::generate().unwrap())
            .unwrap(),
        ..wrong.clone()
    };
    enrollment_client::EnrollmentClient::new(elsewhere)
        .enroll(valid)
        .await
        .expect("another source was refused");
    assert_eq!(ctl.ctl.ca.agent_certs_signed(), 1);

    // Once the source's bucket refills, a valid token enrols from it too.
    let t = ctl.token(1, 600).await;
    let enrolled = eventually(Duration::from_secs(10), || async {
        enrol_with(t.token.clone(), t.ca_fingerprint.clone(), ctl.url.clone())
            .await
            .ok()
    })
    .await;
    let id = enrolled.expect("a valid enrolment was never admitted");
    assert!(ctl.ctl.store.agent(id).await.unwrap().is_some());
    assert_eq!(ctl.ctl.ca.agent_certs_signed(), 2);

    // The log has summary lines adding up to the refusals, not a line for each.
    let summaries = eventually(Duration::from_secs(10), || async {
        let text = logs.text();
        let refused: usize = text
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("what=\"enrolment attempts\""))
            .filter_map(|l| {
                l.split("refused=")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum();
        (refused >= ATTEMPTS).then_some(text)
    })
    .await
    .unwrap_or_else(|| panic!("no summary of the refusals:\n{}", logs.text()));
    let warnings = summaries.lines().filter(|l| l.contains("WARN")).count();
    assert!(
        warnings < 10,
        "{warnings} warnings for {ATTEMPTS} attempts:\n{summaries}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_with_two_uses_enrols_exactly_two_of_six_concurrent_agents() {
    // Room for the 20 refusals of the rounds below (each failed attempt counts).
    let ctl = TestController::start_configured("[enrolment]\nburst = 100\n").await;
    for round in 0..5 {
        let t = ctl.token(2, 600).await;
        let tries: Vec<_> = (0..6)
            .map(|_| {
                tokio::spawn(enrol_with(
                    t.token.clone(),
                    t.ca_fingerprint.clone(),
                    ctl.url.clone(),
                ))
            })
            .collect();
        let mut enrolled = 0;
        for attempt in tries {
            match attempt.await.unwrap() {
                Ok(_) => enrolled += 1,
                Err(e) => assert!(e.contains("already been used"), "round {round}: {e}"),
            }
        }
        assert_eq!(enrolled, 2, "round {round}");
    }
    let agents = ctl
        .admin()
        .await
        .list_agents(ListAgentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(agents.len(), 10);
}
