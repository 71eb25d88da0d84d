//! One simulated agent's life: the agent's protocol on one mTLS stream from its own source
//! address (hello, welcome, heartbeats on the schedule, telemetry batches with sequence
//! numbers resent from the last acknowledged one after a reconnect, signed commands verified
//! by the agent's own dispatcher and answered), reconnecting with the agent's jittered
//! backoff until the deadline.

use super::exec::{SIM_RULESET_HASH, SimExecutor};
use super::{Counters, SimIdentity, SimOptions, WelcomeLog};
use cordon_agent::commands::{Dispatcher, Ledger, Verifier};
use cordon_agent::uplink::backoff::Backoff;
use cordon_proto::agent_service_client::AgentServiceClient;
use cordon_proto::channel::tls_endpoint;
use cordon_proto::time::now_ms;
use cordon_proto::{
    AgentMessage, AgentMetrics, AgentNotice, ContainmentState, ControllerMessage, Event, Heartbeat,
    Hello, TelemetryBatch, agent_message, controller_message, event,
};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Identity};

/// Most events one simulated agent keeps unacknowledged; past it, it stops generating.
const MAX_UNACKED: usize = 10_000;

/// One simulated agent.
pub struct SimAgent {
    pub id: Arc<SimIdentity>,
    pub source: IpAddr,
    pub counters: Arc<Counters>,
    welcomes: Option<Arc<WelcomeLog>>,
    opts: Arc<SimOptions>,
    dispatcher: Arc<Dispatcher<SimExecutor>>,
    /// Events generated and not yet acknowledged, in sequence order.
    unacked: VecDeque<Event>,
    /// The next sequence number to give out.
    next_seq: u64,
}

/// Why a connected stream ended.
enum End {
    Closed,
    Deadline,
}

impl SimAgent {
    pub fn new(
        id: Arc<SimIdentity>,
        source: IpAddr,
        opts: Arc<SimOptions>,
        first_seq: u64,
    ) -> anyhow::Result<Self> {
        let exec = SimExecutor::new(format!("sim-{:05}", id.index));
        let verifier = Verifier::new(id.agent_id.clone(), id.signing_key.clone());
        let ledger = match opts.ledger_in_memory {
            true => Ledger::memory(),
            false => Ledger::open(id.ledger.clone())?,
        };
        let dispatcher = Dispatcher::new(verifier, ledger, exec);
        Ok(Self {
            id,
            source,
            counters: Arc::new(Counters::default()),
            welcomes: None,
            opts,
            dispatcher: Arc::new(dispatcher),
            unacked: VecDeque::new(),
            next_seq: first_seq,
        })
    }

    /// Records each welcome in `log` too.
    pub fn logging_welcomes(mut self, log: Arc<WelcomeLog>) -> Self {
        self.welcomes = Some(log);
        self
    }

    /// Connects and reconnects until `deadline`.
    pub async fn run(mut self, deadline: Instant) {
        let mut backoff = Backoff::new(self.opts.reconnect_min, self.opts.reconnect_max);
        while Instant::now() < deadline {
            match self.session(deadline).await {
                Ok(End::Deadline) => return,
                Ok(End::Closed) => backoff.reset(),
                Err(e) => {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(agent = self.id.index, error = %e, "no stream");
                }
            }
            tokio::time::sleep_until(deadline.min(Instant::now() + backoff.next_delay())).await;
        }
    }

    async fn client(&self) -> anyhow::Result<AgentServiceClient<tonic::transport::Channel>> {
        let id = &self.id;
        let channel = tls_endpoint(
            &id.controller,
            Certificate::from_pem(&id.ca_pem),
            Some(Identity::from_pem(&id.cert_pem, &id.key_pem)),
        )?
        .local_address(Some(self.source))
        .connect()
        .await?;
        Ok(cordon_agent::uplink::agent_client(channel))
    }

    /// Opens a stream and says hello; the outbox and the inbound stream once welcomed.
    async fn open(
        &self,
    ) -> anyhow::Result<(mpsc::Sender<AgentMessage>, Streaming<ControllerMessage>)> {
        let mut client = self.client().await?;
        let (tx, rx) = mpsc::channel(64);
        let hello = Hello {
            agent_id: self.id.agent_id.clone(),
            host: Some(self.dispatcher.executor().host()),
            heartbeat_interval_secs: self.opts.heartbeat.as_secs() as u32,
        };
        tx.send(msg(agent_message::Msg::Hello(hello))).await?;
        let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        match inbound.message().await? {
            Some(ControllerMessage {
                msg: Some(controller_message::Msg::Welcome(_)),
            }) => Ok((tx, inbound)),
            other => anyhow::bail!("expected a welcome, got {other:?}"),
        }
    }

    async fn session(&mut self, deadline: Instant) -> anyhow::Result<End> {
        let (tx, mut inbound) = self.open().await?;
        self.counters.welcomed();
        if let Some(log) = &self.welcomes {
            log.record();
        }
        let _online = Online(self.counters.clone());
        // What was in flight when the last stream broke goes again (stored once).
        self.resend(&tx).await;
        let mut heartbeat = tokio::time::interval(self.opts.heartbeat);
        let mut telemetry = self.opts.telemetry_every().map(tokio::time::interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(End::Deadline),
                _ = heartbeat.tick() => {
                    if tx.send(self.heartbeat()).await.is_err() {
                        return Ok(End::Closed);
                    }
                }
                _ = tick(&mut telemetry) => {
                    if let Some(batch) = self.generate()
                        && tx.send(batch).await.is_err()
                    {
                        return Ok(End::Closed);
                    }
                }
                m = inbound.message() => match m {
                    Ok(Some(m)) => self.handle(&tx, m.msg),
                    Ok(None) | Err(_) => return Ok(End::Closed),
                },
            }
        }
    }

    fn heartbeat(&self) -> AgentMessage {
        let isolated = self.dispatcher.executor().isolated.load(Ordering::Relaxed);
        let hash = if isolated { SIM_RULESET_HASH } else { "" };
        msg(agent_message::Msg::Heartbeat(Heartbeat {
            sent_at_ms: now_ms(),
            process_sensor: "none".into(),
            spooled_seq: self.next_seq.saturating_sub(1),
            containment: Some(ContainmentState {
                isolation_desired: isolated,
                isolation_table_present: isolated,
                isolation_ruleset_hash: hash.into(),
                isolation_applied_hash: hash.into(),
                ..Default::default()
            }),
            // As much as a real agent reports, so the controller stores as much.
            metrics: Some(AgentMetrics {
                cpu_percent: 0.5,
                rss_bytes: 30 << 20,
                spool_events: self.unacked.len() as u64,
                spool_bytes: 0,
                events_per_sec: self.opts.events_per_sec,
                events_lost: 0,
                sensors: vec!["process: simulated".into(), "file: simulated".into()],
                ..Default::default()
            }),
        }))
    }

    /// The next telemetry batch (`events_per_tick` new events), unless this agent has sent
    /// its quota or has too many unacknowledged.
    fn generate(&mut self) -> Option<AgentMessage> {
        let left = self
            .opts
            .events_per_agent
            .saturating_sub(self.counters.generated.load(Ordering::Relaxed));
        let n = left.min(self.opts.events_per_tick());
        if n == 0 || self.unacked.len() >= MAX_UNACKED {
            return None;
        }
        let events: Vec<Event> = (0..n).map(|_| self.event()).collect();
        self.unacked.extend(events.iter().cloned());
        self.counters.generated.fetch_add(n, Ordering::Relaxed);
        Some(msg(agent_message::Msg::Telemetry(TelemetryBatch {
            events,
        })))
    }

    fn event(&mut self) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        Event {
            seq,
            time_ms: now_ms(),
            body: Some(event::Body::Notice(AgentNotice {
                kind: "simulated".into(),
                message: format!("simulated event {seq} of {}", self.id.agent_id),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// Sends every unacknowledged event again, in batches.
    async fn resend(&self, tx: &mpsc::Sender<AgentMessage>) {
        let events: Vec<Event> = self.unacked.iter().cloned().collect();
        for chunk in events.chunks(cordon_agent::uplink::BATCH_EVENTS) {
            let batch = TelemetryBatch {
                events: chunk.to_vec(),
            };
            if tx
                .send(msg(agent_message::Msg::Telemetry(batch)))
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn handle(&mut self, tx: &mpsc::Sender<AgentMessage>, m: Option<controller_message::Msg>) {
        match m {
            Some(controller_message::Msg::Command(signed)) => {
                let (d, tx, counters) =
                    (self.dispatcher.clone(), tx.clone(), self.counters.clone());
                tokio::spawn(async move {
                    let result = d.handle(&signed).await;
                    counters.commands.fetch_add(1, Ordering::Relaxed);
                    if let Some(chunk) = d.executor().chunk(&result.command_id) {
                        let _ = tx.send(msg(agent_message::Msg::Chunk(chunk))).await;
                    }
                    let _ = tx.send(msg(agent_message::Msg::Result(result))).await;
                });
            }
            Some(controller_message::Msg::Ack(ack)) => {
                while self
                    .unacked
                    .front()
                    .is_some_and(|e| e.seq <= ack.through_seq)
                {
                    self.unacked.pop_front();
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

fn msg(m: agent_message::Msg) -> AgentMessage {
    AgentMessage { msg: Some(m) }
}

/// The next tick of an optional interval (never, without one).
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Marks an agent online while a welcomed stream lasts.
struct Online(Arc<Counters>);

impl Drop for Online {
    fn drop(&mut self) {
        self.0.online.store(false, Ordering::Relaxed);
    }
}
