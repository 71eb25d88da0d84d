//! The controller's refusals, each checked against a real controller on loopback with real
//! certificates: a refused peer gets a clear error, and other agents are not affected.

#![allow(clippy::unwrap_used)]

use cordon_controller::store::{Agents, CommandQueue, Events};
use cordon_proto::agent_service_client::AgentServiceClient;
use cordon_proto::channel::tls_channel;
use cordon_proto::*;
use cordon_tests::eventually;
use cordon_tests::inproc::{
    TestController, connected, enrol_with, next_ack, notice_batch, session, stream_end,
};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::{Certificate, Identity};

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
            ..Default::default()
        }],
    };
    a_tx.send(AgentMessage {
        msg: Some(agent_message::Msg::Telemetry(batch)),
    })
    .await
    .unwrap();
    let status = stream_end(&mut a_in)
        .await
        .expect_err("the oversized message must end the stream with an error");
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
