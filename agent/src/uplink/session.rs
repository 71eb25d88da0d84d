//! One connection's life: open the stream, say hello, wait for welcome, then heartbeats out
//! and commands in until the stream ends or a renewed certificate asks for a reconnect.

use super::failover::Target;
use super::{Uplink, UplinkError};
use crate::sensors::inventory::host_facts;
use cordon_proto::time::now_ms;
use cordon_proto::{
    AgentMessage, Heartbeat, Hello, TelemetryBatch, agent_message, command_result,
    controller_message,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// How a stream that was up came to an end.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The controller closed it (restart, revocation, superseded): reconnect after a delay.
    Closed,
    /// A new certificate is on disk: reconnect now.
    Renewed,
}

const OUTBOUND_QUEUE: usize = 256;

/// Runs one stream to `target`. Errors before the welcome are connection failures; once
/// welcomed, the end of the stream is an `End`.
pub async fn run(up: &Arc<Uplink>, target: &Target) -> Result<End, UplinkError> {
    let mut client = up.client(target).await?;
    let (tx, rx) = mpsc::channel::<AgentMessage>(OUTBOUND_QUEUE);
    // The heartbeat interval of a reloaded configuration applies from the next connection,
    // whose hello tells the controller.
    let config = up.config.load();
    let hello = Hello {
        agent_id: up.agent_id.clone(),
        host: Some(host_facts()),
        heartbeat_interval_secs: config.heartbeat_interval_secs as u32,
    };
    let _ = tx
        .send(AgentMessage {
            msg: Some(agent_message::Msg::Hello(hello)),
        })
        .await;
    let mut inbound = client
        .session(ReceiverStream::new(rx))
        .await
        .map_err(|s| UplinkError::Refused(cordon_proto::status::describe(&s)))?
        .into_inner();
    match inbound.message().await {
        Ok(Some(m)) if matches!(m.msg, Some(controller_message::Msg::Welcome(_))) => {}
        Ok(_) => {
            return Err(UplinkError::Refused(
                "the controller did not welcome this agent".into(),
            ));
        }
        Err(s) => return Err(UplinkError::Refused(cordon_proto::status::describe(&s))),
    }
    tracing::info!(agent_id = %up.agent_id, controller = %target, "connected to the controller");
    *up.connected_to.lock().unwrap_or_else(|p| p.into_inner()) = Some(target.clone());
    let _shipper = AbortOnDrop(tokio::spawn(ship(up.clone(), tx.clone())));

    let mut heartbeat = tokio::time::interval(config.heartbeat());
    loop {
        tokio::select! {
            _ = up.renewed.notified() => return Ok(End::Renewed),
            _ = heartbeat.tick() => {
                let c = up.containment.clone();
                let containment = tokio::task::spawn_blocking(move || c.state()).await.ok();
                // Sampled before the message is built: the spool lock must not be held
                // while the metrics take it again.
                let spooled_seq = up.telemetry.lock().last_seq();
                let metrics = Some(up.metrics());
                let hb = Heartbeat {
                    sent_at_ms: now_ms(),
                    process_sensor: up.process_sensor.clone(),
                    spooled_seq,
                    containment,
                    metrics,
                };
                if tx.send(AgentMessage { msg: Some(agent_message::Msg::Heartbeat(hb)) }).await.is_err() {
                    return Ok(End::Closed);
                }
            }
            msg = inbound.message() => match msg {
                Ok(Some(m)) => handle(up, &tx, m.msg),
                Ok(None) => {
                    tracing::warn!("the controller closed the stream");
                    return Ok(End::Closed);
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), reason = %cordon_proto::status::describe(&status), "the stream ended");
                    return Ok(End::Closed);
                }
            },
        }
    }
}

fn handle(up: &Arc<Uplink>, tx: &mpsc::Sender<AgentMessage>, msg: Option<controller_message::Msg>) {
    match msg {
        Some(controller_message::Msg::Command(signed)) => {
            // Commands run in their own task, so a slow one never holds up heartbeats; those
            // that change the host take their turn, in the order they arrived.
            let up = up.clone();
            let tx = tx.clone();
            let mut turn = crate::commands::in_order(&signed).then(|| up.lane.join());
            tokio::spawn(async move {
                if let Some(turn) = turn.as_mut() {
                    turn.wait().await;
                }
                let result = up.dispatcher.handle(&signed).await;
                // The next command goes once this one has run (its result may wait for the
                // stream).
                drop(turn);
                if matches!(
                    result.output,
                    Some(
                        command_result::Output::Collection(_) | command_result::Output::Fetched(_)
                    )
                ) && send_chunks(&up, &tx, &result.command_id).await.is_err()
                {
                    return;
                }
                let _ = tx
                    .send(AgentMessage {
                        msg: Some(agent_message::Msg::Result(result)),
                    })
                    .await;
            });
        }
        Some(controller_message::Msg::Ack(ack)) => {
            // The controller has stored everything through this sequence number.
            let t = up.telemetry.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = t.lock().ack(ack.through_seq) {
                    tracing::error!(error = %e, "trimming the spool failed");
                }
                t.written.notify_waiters();
            });
        }
        Some(controller_message::Msg::Edge(policies)) => {
            // Stored (fsync) off the async threads; refusals are reported as notices.
            let up = up.clone();
            tokio::task::spawn_blocking(move || {
                for outcome in up.edge.accept(&policies) {
                    if let Err(why) = outcome {
                        tracing::error!(error = %why, "edge policy refused");
                        up.telemetry.emitter().notice("edge_policy_refused", why);
                    }
                }
            });
        }
        Some(controller_message::Msg::Welcome(_)) | None => {
            tracing::debug!("ignoring an unexpected controller message");
        }
    }
}

/// Sends the rows or bytes kept for a command, in order, before its result (again, when the
/// result is sent again), reading one chunk at a time. Err when the stream is gone; a result
/// whose chunks cannot be read goes without the rest, and the controller, finding them short,
/// records the command as failed.
async fn send_chunks(
    up: &Arc<Uplink>,
    tx: &mpsc::Sender<AgentMessage>,
    command_id: &str,
) -> Result<(), ()> {
    let outbox = up.dispatcher.executor().outbox.clone();
    let id = command_id.to_string();
    let mut pending = match tokio::task::spawn_blocking(move || outbox.pending(&id)).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(e)) => {
            tracing::error!(command_id, error = %e, "cannot read a result's chunks to send");
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    loop {
        let Ok((next, rest)) = tokio::task::spawn_blocking(move || {
            let next = pending.next();
            (next, pending)
        })
        .await
        else {
            return Ok(());
        };
        pending = rest;
        let chunk = match next {
            None => return Ok(()),
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                tracing::error!(command_id, error = %e, "cannot read a result's chunk to send");
                return Ok(());
            }
        };
        let msg = AgentMessage {
            msg: Some(agent_message::Msg::Chunk(chunk)),
        };
        tx.send(msg).await.map_err(|_| ())?;
    }
}

/// Stops a task when the session ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Events per telemetry batch on the wire.
pub const BATCH_EVENTS: usize = 1000;
/// Most events sent but not yet acknowledged.
const MAX_IN_FLIGHT: u64 = 20_000;

/// Sends spooled events in order, starting after the last acknowledged one (so whatever was
/// in flight when a stream broke is sent again; the controller stores each once). While a
/// batch awaits its acknowledgement, new events wait for it unless a full batch is ready:
/// a quiet host's event leaves at once, a busy host's travel in fewer, larger batches.
async fn ship(up: Arc<Uplink>, tx: mpsc::Sender<AgentMessage>) {
    let t = up.telemetry.clone();
    let mut next = t.lock().acked() + 1;
    loop {
        let woken = t.written.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let (acked, last) = {
            let spool = t.lock();
            (spool.acked(), spool.last_seq())
        };
        next = next.max(acked + 1);
        let in_flight = next > acked + 1;
        let ready = (last + 1).saturating_sub(next);
        let batch = if ready == 0
            || next - acked > MAX_IN_FLIGHT
            || (in_flight && ready < BATCH_EVENTS as u64)
        {
            Vec::new()
        } else {
            let spool = t.spool.clone();
            match tokio::task::spawn_blocking(move || {
                spool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .read_from(next, BATCH_EVENTS)
            })
            .await
            {
                Ok(Ok(events)) => events,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reading the spool failed");
                    Vec::new()
                }
                Err(_) => return,
            }
        };
        let Some(last) = batch.last().map(|e| e.seq) else {
            // Nothing to send yet: wait for new events or an ack.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), woken).await;
            continue;
        };
        let msg = AgentMessage {
            msg: Some(agent_message::Msg::Telemetry(TelemetryBatch {
                events: batch,
            })),
        };
        if tx.send(msg).await.is_err() {
            return;
        }
        next = last + 1;
    }
}
