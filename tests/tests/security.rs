//! The controller's refusals, each checked against a real controller on loopback with real
//! certificates: a refused peer gets a clear error, and other agents are not affected.

#![allow(clippy::unwrap_used)]

use cordon_agent::state::StateDir;
use cordon_agent::uplink::enroll::{EnrollOptions, enroll};
use cordon_controller::store::{Agents, CommandQueue};
use cordon_proto::agent_service_client::AgentServiceClient;
use cordon_proto::channel::tls_channel;
use cordon_proto::*;
use cordon_tests::eventually;
use cordon_tests::inproc::{TestAgent, TestController};
use cordon_tests::rawconn::{closed_within, preface_only_from, tcp_from, tls_from};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Streaming};

type Outbox = mpsc::Sender<AgentMessage>;

fn hello(agent_id: &str) -> AgentMessage {
    AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            agent_id: agent_id.into(),
            host: Some(HostFacts {
                hostname: "test".into(),
                ..Default::default()
            }),
            heartbeat_interval_secs: 1,
        })),
    }
}

/// Opens a stream, says hello as `claimed`, and returns the outbox and the inbound stream.
async fn session(
    client: &mut AgentServiceClient<Channel>,
    claimed: &str,
) -> Result<(Outbox, Streaming<ControllerMessage>), tonic::Status> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(hello(claimed)).await.expect("queue hello");
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    match inbound.message().await? {
        Some(ControllerMessage {
            msg: Some(controller_message::Msg::Welcome(_)),
        }) => Ok((tx, inbound)),
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn online(ctl: &TestController, id: &str) -> bool {
    let rec = ctl
        .admin()
        .await
        .get_agent(GetAgentRequest {
            agent_id: id.into(),
        })
        .await
        .expect("get agent");
    rec.into_inner().online
}

async fn connected(
    ctl: &TestController,
    agent: &TestAgent,
) -> (Outbox, Streaming<ControllerMessage>) {
    let mut client = agent.client(&ctl.url).await;
    session(&mut client, &agent.id).await.expect("session")
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_on_agent_and_admin_services() {
    let ctl = TestController::start().await;
    let ch = tls_channel(&ctl.url, Certificate::from_pem(ctl.ca_pem()), None)
        .await
        .expect("channel");
    let err = session(&mut AgentServiceClient::new(ch.clone()), "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert!(err.message().contains("client certificate"), "{err}");
    let err = admin_service_client::AdminServiceClient::new(ch)
        .list_agents(ListAgentsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let ctl = TestController::start().await;
    let other = TestController::start().await;
    let stranger = other.enroll().await;
    let (cert, key) = stranger.cert_and_key();
    let refused = match tls_channel(
        &ctl.url,
        Certificate::from_pem(ctl.ca_pem()),
        Some(Identity::from_pem(cert, key)),
    )
    .await
    {
        Err(_) => true,
        Ok(ch) => session(&mut AgentServiceClient::new(ch), &stranger.id)
            .await
            .is_err(),
    };
    assert!(refused, "a certificate from another CA was accepted");
    assert!(
        ctl.ctl
            .store
            .agent(stranger.id.clone())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn agent_and_admin_certificates_only_work_on_their_own_service() {
    let ctl = TestController::start().await;
    let agent = ctl.enroll().await;
    // Agent certificate on the admin service.
    let ca = Certificate::from_pem(ctl.ca_pem());
    let (cert, key) = agent.cert_and_key();
    let ch = tls_channel(&ctl.url, ca.clone(), Some(Identity::from_pem(cert, key)))
        .await
        .unwrap();
    let err = admin_service_client::AdminServiceClient::new(ch)
        .create_token(CreateTokenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    // Admin certificate on the agent service.
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let admin_id = Identity::from_pem(read(&ctl.admin.cert), read(&ctl.admin.key));
    let ch = tls_channel(&ctl.url, ca, Some(admin_id)).await.unwrap();
    let err = session(&mut AgentServiceClient::new(ch), &agent.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(!online(&ctl, &agent.id).await);
}

#[tokio::test]
async fn an_agent_cannot_claim_another_agents_id() {
    let ctl = TestController::start().await;
    let (a, b) = (ctl.enroll().await, ctl.enroll().await);
    let (b_tx, mut b_in) = connected(&ctl, &b).await;
    let mut a_client = a.client(&ctl.url).await;
    let err = session(&mut a_client, &b.id).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(
        err.message().contains(&a.id),
        "the refusal should name the real identity: {err}"
    );
    // B is untouched: still online, and its stream still carries a command round trip.
    assert!(online(&ctl, &b.id).await);
    assert!(!online(&ctl, &a.id).await);
    let cmd = ctl
        .ctl
        .submit_command(
            b.id.clone(),
            action::Kind::Ping(Ping {}),
            Duration::from_secs(60),
            "t".into(),
        )
        .await
        .unwrap();
    let Some(ControllerMessage {
        msg: Some(controller_message::Msg::Command(_)),
    }) = b_in.message().await.unwrap()
    else {
        panic!("B did not receive its command");
    };
    drop(b_tx);
    assert_eq!(cmd.agent_id, b.id);
}

/// Enrols a new agent (the real enrolment path, fresh state) with `token`; its id, or why not.
async fn enrol_with(token: String, ca_fingerprint: String, url: String) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("s"));
    let opts = EnrollOptions {
        controller: url,
        token,
        ca_fingerprint,
        labels: HashMap::new(),
        force: false,
    };
    enroll(&state, opts)
        .await
        .map(|identity| identity.agent_id)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn tokens_are_single_use_expire_and_unknown_ones_are_refused() {
    let ctl = TestController::start().await;
    let attempt = |token, fp, url| async move { enrol_with(token, fp, url).await.map(|_| ()) };
    let t = ctl.token(1, 600).await;
    attempt(t.token.clone(), t.ca_fingerprint.clone(), ctl.url.clone())
        .await
        .expect("first use");
    let err = attempt(t.token.clone(), t.ca_fingerprint.clone(), ctl.url.clone())
        .await
        .unwrap_err();
    assert!(err.contains("already been used"), "{err}");

    let short = ctl.token(5, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = attempt(short.token, short.ca_fingerprint.clone(), ctl.url.clone())
        .await
        .unwrap_err();
    assert!(err.contains("expired"), "{err}");

    let err = attempt(
        "cdt_not-a-real-token".into(),
        t.ca_fingerprint.clone(),
        ctl.url.clone(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("unknown enrolment token"), "{err}");

    // A wrong pinned fingerprint never gets as far as sending the token.
    let wrong = format!("sha256:{}", "00".repeat(32));
    let err = attempt(t.token, wrong, ctl.url.clone()).await.unwrap_err();
    assert!(err.contains("pinned CA"), "{err}");
    assert_eq!(
        ctl.admin()
            .await
            .list_agents(ListAgentsRequest {})
            .await
            .unwrap()
            .into_inner()
            .agents
            .len(),
        1
    );
}

#[tokio::test]
async fn oversized_messages_are_refused_without_harming_other_agents() {
    let ctl = TestController::start().await;
    let (a, b) = (ctl.enroll().await, ctl.enroll().await);
    let (_b_tx, _b_in) = connected(&ctl, &b).await;
    let (a_tx, mut a_in) = connected(&ctl, &a).await;
    let huge = "x".repeat(limits::AGENT_MAX_MESSAGE + 1024);
    let batch = TelemetryBatch {
        events: vec![Event {
            seq: 1,
            time_ms: 1,
            body: Some(event::Body::Notice(AgentNotice {
                kind: "x".into(),
                message: huge,
                ..Default::default()
            })),
        }],
    };
    a_tx.send(AgentMessage {
        msg: Some(agent_message::Msg::Telemetry(batch)),
    })
    .await
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match a_in.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the oversized stream was not closed");
    let status = end.expect_err("the oversized message must end the stream with an error");
    assert!(
        matches!(
            status.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ),
        "{status}"
    );
    assert_eq!(ctl.ctl.store.event_count(a.id.clone()).await.unwrap(), 0);
    assert!(online(&ctl, &b.id).await, "another agent was affected");

    // The enrolment service has its own, smaller limit; the controller keeps serving.
    let ch = tls_channel(&ctl.url, Certificate::from_pem(ctl.ca_pem()), None)
        .await
        .unwrap();
    let req = EnrollRequest {
        token: "t".repeat(limits::ENROLL_MAX_MESSAGE + 1),
        ..Default::default()
    };
    let refused = enrollment_client::EnrollmentClient::new(ch)
        .enroll(req)
        .await;
    assert!(refused.is_err(), "an oversized enrolment was accepted");
    ctl.enroll().await;
}

#[tokio::test]
async fn revocation_cuts_the_stream_within_a_second_and_refuses_renewal_and_reconnection() {
    let ctl = TestController::start().await;
    let (a, b) = (ctl.enroll().await, ctl.enroll().await);
    let (_b_tx, _b_in) = connected(&ctl, &b).await;
    let (_a_tx, mut a_in) = connected(&ctl, &a).await;
    let mut renew_client = a.client(&ctl.url).await;

    let started = Instant::now();
    ctl.admin()
        .await
        .revoke_agent(RevokeAgentRequest {
            agent_id: a.id.clone(),
        })
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(1), a_in.message())
        .await
        .expect("the revoked agent's stream stayed open for over a second");
    let status = end.expect_err("revocation must end the stream with an error");
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // Renewal over the still-open HTTP/2 connection is refused by the service...
    let key = rcgen::KeyPair::from_pem(&a.cert_and_key().1).unwrap();
    let csr = cordon_agent::uplink::enroll::csr_for(&key).unwrap();
    let err = renew_client
        .renew(RenewRequest {
            csr_der: csr.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    // ...and a new connection is refused at the handshake.
    let refused = match tls_channel(
        &ctl.url,
        Certificate::from_pem(ctl.ca_pem()),
        Some(Identity::from_pem(a.cert_and_key().0, a.cert_and_key().1)),
    )
    .await
    {
        Err(_) => true,
        Ok(ch) => AgentServiceClient::new(ch)
            .renew(RenewRequest { csr_der: csr })
            .await
            .is_err(),
    };
    assert!(
        refused,
        "a revoked certificate was accepted on a new connection"
    );
    assert!(online(&ctl, &b.id).await, "revoking A affected B");
}

#[tokio::test]
async fn renewal_gives_a_new_certificate_only_for_the_same_key() {
    let ctl = TestController::start().await;
    let a = ctl.enroll().await;
    let before = ctl.ctl.store.agent(a.id.clone()).await.unwrap().unwrap();
    let mut client = a.client(&ctl.url).await;
    let key = rcgen::KeyPair::from_pem(&a.cert_and_key().1).unwrap();
    let csr = cordon_agent::uplink::enroll::csr_for(&key).unwrap();
    let resp = client
        .renew(RenewRequest { csr_der: csr })
        .await
        .expect("renew")
        .into_inner();
    assert!(resp.certificate_pem.contains("BEGIN CERTIFICATE"));
    let after = ctl.ctl.store.agent(a.id.clone()).await.unwrap().unwrap();
    assert_ne!(before.cert_serial, after.cert_serial);

    let other_key = rcgen::KeyPair::generate().unwrap();
    let csr = cordon_agent::uplink::enroll::csr_for(&other_key).unwrap();
    let err = client
        .renew(RenewRequest { csr_der: csr })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
}

fn notice_batch(seqs: std::ops::RangeInclusive<u64>) -> AgentMessage {
    let events = seqs
        .map(|seq| Event {
            seq,
            time_ms: 1,
            body: Some(event::Body::Notice(AgentNotice {
                kind: "test".into(),
                count: seq,
                ..Default::default()
            })),
        })
        .collect();
    AgentMessage {
        msg: Some(agent_message::Msg::Telemetry(TelemetryBatch { events })),
    }
}

async fn next_ack(inbound: &mut Streaming<ControllerMessage>) -> u64 {
    loop {
        match inbound.message().await.unwrap() {
            Some(ControllerMessage {
                msg: Some(controller_message::Msg::Ack(a)),
            }) => return a.through_seq,
            Some(_) => continue,
            None => panic!("stream ended before an ack"),
        }
    }
}

#[tokio::test]
async fn telemetry_is_stored_once_and_acknowledged() {
    let ctl = TestController::start().await;
    let a = ctl.enroll().await;
    let (tx, mut inbound) = connected(&ctl, &a).await;
    tx.send(notice_batch(1..=3)).await.unwrap();
    assert_eq!(next_ack(&mut inbound).await, 3);
    // A resend after a lost ack overlaps what is stored.
    tx.send(notice_batch(2..=5)).await.unwrap();
    assert_eq!(next_ack(&mut inbound).await, 5);
    assert_eq!(ctl.ctl.store.event_count(a.id.clone()).await.unwrap(), 5);
}

#[tokio::test]
async fn an_agent_cannot_complete_another_agents_command() {
    let ctl = TestController::start().await;
    let (a, b) = (ctl.enroll().await, ctl.enroll().await);
    let cmd = ctl
        .ctl
        .submit_command(
            a.id.clone(),
            action::Kind::Ping(Ping {}),
            Duration::from_secs(60),
            "t".into(),
        )
        .await
        .unwrap();
    let (b_tx, _b_in) = connected(&ctl, &b).await;
    let forged = CommandResult {
        command_id: cmd.id.clone(),
        outcome: CommandOutcome::Succeeded as i32,
        ..Default::default()
    };
    b_tx.send(AgentMessage {
        msg: Some(agent_message::Msg::Result(forged)),
    })
    .await
    .unwrap();
    // Give the controller time to process it, then check nothing changed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = ctl
        .ctl
        .store
        .command(cmd.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, cordon_controller::store::CommandStatus::Pending);
}

#[tokio::test]
async fn commands_for_an_offline_agent_wait_for_it_or_expire() {
    let ctl = TestController::start().await;
    let a = ctl.enroll().await;
    let submit = |ttl: u64| {
        ctl.ctl.submit_command(
            a.id.clone(),
            action::Kind::Ping(Ping {}),
            Duration::from_secs(ttl),
            "t".into(),
        )
    };
    let short = submit(1).await.unwrap();
    let long = submit(600).await.unwrap();
    let expired = eventually(Duration::from_secs(5), || async {
        let row = ctl
            .ctl
            .store
            .command(short.id.clone())
            .await
            .unwrap()
            .unwrap();
        (row.status == cordon_controller::store::CommandStatus::Expired).then_some(row)
    })
    .await
    .expect("the short command never expired");
    assert!(expired.error.contains("expired"));

    // The real agent runtime comes online and runs the waiting command.
    let _running = a.run();
    let done = ctl
        .ctl
        .wait_command(&long.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.status,
        cordon_controller::store::CommandStatus::Succeeded,
        "{}",
        done.error
    );
}

#[tokio::test]
async fn the_agent_refuses_a_tampered_command_and_the_controller_records_why() {
    let ctl = TestController::start().await;
    let a = ctl.enroll().await;
    // A command signed by the controller, then altered: its expiry pushed a day later.
    let now = cordon_proto::time::now_ms();
    let command = Command {
        id: "cmd-tampered".into(),
        agent_id: a.id.clone(),
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        action: Some(action::Kind::Ping(Ping {}).into()),
    };
    use prost::Message;
    let mut signed = ctl.ctl.signer.sign(&command);
    let altered = Command {
        expires_at_ms: now + 86_400_000,
        ..command.clone()
    };
    signed.command = altered.encode_to_vec();
    ctl.ctl
        .store
        .insert_command(cordon_controller::store::CommandRow {
            id: command.id.clone(),
            agent_id: a.id.clone(),
            kind: "ping".into(),
            envelope: signed.encode_to_vec(),
            created_at_ms: now,
            expires_at_ms: now + 60_000,
            status: cordon_controller::store::CommandStatus::Pending,
            delivered_at_ms: None,
            completed_at_ms: None,
            error: String::new(),
            result: None,
            created_by: "attacker".into(),
        })
        .await
        .unwrap();
    // The real agent runtime connects, receives it, and must refuse it.
    let _running = a.run();
    let row = ctl
        .ctl
        .wait_command(&command.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, cordon_controller::store::CommandStatus::Failed);
    assert!(
        row.error.contains("refused by the agent: bad signature"),
        "{}",
        row.error
    );
}

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
