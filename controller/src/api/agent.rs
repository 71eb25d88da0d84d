//! The agent service: the one bidirectional stream per agent (hello, heartbeats, telemetry
//! and acks, commands and results) and certificate renewal. The agent's identity is always
//! the one in its client certificate; ids inside messages are only checked against it.

use super::telemetry::Pipeline;
use crate::core::Controller;
use crate::core::sessions::Outbound;
use cordon_proto::agent_service_server::AgentService;
use cordon_proto::time::now_ms;
use cordon_proto::{
    Ack, AgentMessage, ControllerMessage, Hello, RenewRequest, RenewResponse, Welcome,
    agent_message, controller_message,
};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// Longest heartbeat interval an agent may announce.
const MAX_HEARTBEAT_SECS: u64 = 3600;
/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct AgentApi(pub Arc<Controller>);

#[tonic::async_trait]
impl AgentService for AgentApi {
    type SessionStream = Pin<Box<dyn Stream<Item = Result<ControllerMessage, Status>> + Send>>;

    async fn session(
        &self,
        req: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let ctl = self.0.clone();
        let (agent_id, cert_expires_ms) = super::agent_peer(&req)?;
        let mut inbound = req.into_inner();
        let hello = first_hello(&mut inbound).await?;
        if hello.agent_id != agent_id {
            tracing::warn!(agent_id = %agent_id, claimed = %hello.agent_id, "hello claims another agent's id");
            return Err(Status::permission_denied(format!(
                "hello claims agent {:?} but the client certificate belongs to agent {agent_id}",
                hello.agent_id
            )));
        }
        let host = hello.host.unwrap_or_default();
        ctl.agent_connected(&agent_id, host.clone()).await?;
        let reg = ctl.sessions.register(&agent_id);
        let welcome = ControllerMessage {
            msg: Some(controller_message::Msg::Welcome(Welcome {
                agent_id: agent_id.clone(),
                server_time_ms: now_ms(),
            })),
        };
        let _ = reg.tx.send(Ok(welcome)).await;
        tracing::info!(agent_id = %agent_id, hostname = %host.hostname, "agent online");

        // The agent's own heartbeat interval stretches the idle limit, within reason.
        let heartbeat = u64::from(hello.heartbeat_interval_secs).min(MAX_HEARTBEAT_SECS);
        let idle = Duration::from_secs(ctl.config.agent_idle_timeout_secs.max(3 * heartbeat));
        // What the controller sends, then why the session ended (if it says).
        let (end_tx, end_rx) = mpsc::channel(1);
        let stream = ReceiverStream::new(reg.rx)
            .map(|m| m.map_err(Status::from))
            .chain(ReceiverStream::new(end_rx).map(Err));
        let session = Session {
            ctl,
            agent_id,
            conn: reg.conn,
            tx: reg.tx,
            close: reg.close,
        };
        tokio::spawn(session.run(inbound, idle, cert_expires_ms, end_tx));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn renew(&self, req: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        let (agent_id, _) = super::agent_peer(&req)?;
        let issued = self.0.renew(&agent_id, &req.into_inner().csr_der).await?;
        Ok(Response::new(RenewResponse {
            certificate_pem: issued.pem,
            certificate_expires_at_ms: issued.expires_at_ms,
        }))
    }
}

async fn first_hello(inbound: &mut Streaming<AgentMessage>) -> Result<Hello, Status> {
    match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
        Err(_) => Err(Status::deadline_exceeded("no hello within 10 seconds")),
        Ok(Err(status)) => Err(status),
        Ok(Ok(Some(AgentMessage {
            msg: Some(agent_message::Msg::Hello(h)),
        }))) => Ok(h),
        Ok(Ok(_)) => Err(Status::invalid_argument(
            "the first message on the stream must be hello",
        )),
    }
}

/// One agent's open stream, as seen from the controller.
struct Session {
    ctl: Arc<Controller>,
    agent_id: String,
    conn: u64,
    tx: Outbound,
    close: CancellationToken,
}

impl Session {
    async fn run(
        self,
        mut inbound: Streaming<AgentMessage>,
        idle: Duration,
        cert_expires_ms: i64,
        end_tx: mpsc::Sender<Status>,
    ) {
        if let Err(e) = self.ctl.deliver_open(&self.agent_id).await {
            tracing::error!(agent_id = %self.agent_id, error = %e, "delivering queued commands failed");
        }
        let edge = tokio::spawn(crate::core::edge::keep_in_sync(
            self.ctl.clone(),
            self.agent_id.clone(),
            self.tx.clone(),
            self.close.clone(),
        ));
        let until_expiry = Duration::from_millis((cert_expires_ms - now_ms()).max(0) as u64);
        let expiry = tokio::time::sleep(until_expiry);
        tokio::pin!(expiry);
        let mut telemetry = Pipeline::new(self.ctl.clone(), &self.agent_id);
        let end: Option<Status> = loop {
            let next = tokio::select! {
                _ = self.close.cancelled() => break None,
                _ = &mut expiry => break Some(Status::unauthenticated(
                    "the client certificate has expired; reconnect with the renewed one")),
                Some(stored) = telemetry.next() => {
                    if let Err(status) = self.acknowledge(stored).await {
                        break Some(status);
                    }
                    continue;
                }
                // A full pipeline reads nothing more until its oldest batch is committed.
                n = tokio::time::timeout(idle, inbound.message()), if !telemetry.is_full() => n,
            };
            match next {
                Err(_) => {
                    break Some(Status::deadline_exceeded(
                        "no message from the agent in time",
                    ));
                }
                Ok(Ok(None)) => {
                    // The agent is done sending: acknowledge what is still being stored.
                    while let Some(stored) = telemetry.next().await {
                        if self.acknowledge(stored).await.is_err() {
                            break;
                        }
                    }
                    break None;
                }
                Ok(Err(status)) => {
                    tracing::warn!(agent_id = %self.agent_id, error = %status, "agent stream failed");
                    break Some(status);
                }
                Ok(Ok(Some(msg))) => {
                    if let Err(status) = self.handle(msg, &mut telemetry).await {
                        tracing::warn!(agent_id = %self.agent_id, error = %status, "closing agent stream");
                        break Some(status);
                    }
                }
            }
        };
        edge.abort();
        let current = self.ctl.sessions.remove_if(&self.agent_id, self.conn);
        if let Some(status) = end {
            let _ = end_tx.try_send(status);
        }
        if current {
            if let Err(e) = self.ctl.agent_offline(&self.agent_id).await {
                tracing::error!(agent_id = %self.agent_id, error = %e, "marking agent offline failed");
            }
            tracing::info!(agent_id = %self.agent_id, "agent offline");
        }
    }

    async fn handle(&self, msg: AgentMessage, telemetry: &mut Pipeline) -> Result<(), Status> {
        match msg.msg {
            Some(agent_message::Msg::Heartbeat(hb)) => {
                self.ctl.heartbeat(&self.agent_id, hb)?;
            }
            Some(agent_message::Msg::Telemetry(batch)) => telemetry.start(batch),
            Some(agent_message::Msg::Result(result)) => {
                self.ctl.record_result(&self.agent_id, result).await?;
            }
            Some(agent_message::Msg::Chunk(chunk)) => {
                self.ctl.record_chunk(&self.agent_id, chunk).await?;
            }
            Some(agent_message::Msg::Hello(_)) => {
                return Err(Status::invalid_argument(
                    "hello may only be the first message",
                ));
            }
            None => return Err(Status::invalid_argument("empty agent message")),
        }
        Ok(())
    }

    /// Acknowledges a committed batch; a batch that failed ends the stream.
    async fn acknowledge(&self, stored: Result<Option<u64>, Status>) -> Result<(), Status> {
        let stored = stored.inspect_err(|status| {
            tracing::warn!(agent_id = %self.agent_id, error = %status, "closing agent stream");
        })?;
        if let Some(through) = stored {
            let ack = ControllerMessage {
                msg: Some(controller_message::Msg::Ack(Ack {
                    through_seq: through,
                })),
            };
            let _ = self.tx.send(Ok(ack)).await;
        }
        Ok(())
    }
}
