//! Telemetry from agents' streams: each batch is judged by detection, described and stored
//! once per (agent, seq), then acknowledged. A stream's batches are pipelined: while one is
//! being committed, the next ones are already judged and queued, so the store can commit
//! several in one transaction (see `store::ingest`); acknowledgements still go out in order,
//! each only after its batch is committed.

use super::Controller;
use crate::store::StoredEvent;
use cordon_proto::limits::MAX_BATCH_EVENTS;
use cordon_proto::time::now_ms;
use cordon_proto::{Event, ProcessEvent, TelemetryBatch, event, file_event, process_event};
use prost::Message;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tonic::Status;

/// Most batches of one stream being stored at once.
pub const PIPELINE_DEPTH: usize = 8;

/// One agent's batches being stored, oldest first.
pub struct Pipeline {
    ctl: Arc<Controller>,
    agent_id: Arc<str>,
    pending: VecDeque<JoinHandle<Result<Option<u64>, Status>>>,
}

impl Pipeline {
    pub fn new(ctl: Arc<Controller>, agent_id: &str) -> Self {
        Self {
            ctl,
            agent_id: agent_id.into(),
            pending: VecDeque::with_capacity(PIPELINE_DEPTH),
        }
    }

    /// Starts storing a batch. Call only when not [`Self::is_full`].
    pub fn start(&mut self, batch: TelemetryBatch) {
        let (ctl, agent_id) = (self.ctl.clone(), self.agent_id.clone());
        self.pending.push_back(tokio::spawn(
            async move { ctl.ingest(&agent_id, batch).await },
        ));
    }

    pub fn is_full(&self) -> bool {
        self.pending.len() >= PIPELINE_DEPTH
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Waits until the oldest batch is committed; returns the sequence number that may now
    /// be acknowledged (`None` for an empty batch), or `None` when nothing is pending.
    /// Cancel-safe: dropped before it completes, the batch stays pending.
    pub async fn next(&mut self) -> Option<Result<Option<u64>, Status>> {
        let stored = self.pending.front_mut()?.await;
        self.pending.pop_front();
        Some(stored.unwrap_or_else(|e| Err(Status::internal(format!("ingest task: {e}")))))
    }
}

impl Controller {
    /// Stores a telemetry batch from `agent_id` in one transaction (each sequence number once)
    /// and passes the new events to `events tail`. Returns the highest sequence number in the
    /// batch, which may be acknowledged now that it is committed; `None` for an empty batch.
    /// (Public so the benchmark measures the real path.)
    pub async fn ingest(
        self: &Arc<Self>,
        agent_id: &str,
        batch: TelemetryBatch,
    ) -> Result<Option<u64>, Status> {
        if batch.events.len() > MAX_BATCH_EVENTS {
            return Err(Status::invalid_argument(format!(
                "telemetry batch of {} events is over the limit of {MAX_BATCH_EVENTS}",
                batch.events.len()
            )));
        }
        let Some(through) = batch.events.iter().map(|e| e.seq).max() else {
            return Ok(None);
        };
        let received = now_ms();
        let findings = batch
            .events
            .iter()
            .map(|e| self.detector.judge(e))
            .collect();
        let events = batch
            .events
            .iter()
            .map(|e| {
                let (kind, summary) = describe(e);
                StoredEvent {
                    agent_id: agent_id.to_string(),
                    seq: e.seq,
                    time_ms: e.time_ms,
                    kind: kind.to_string(),
                    summary,
                    body: e.encode_to_vec(),
                    received_at_ms: received,
                }
            })
            .collect();
        let (added, alerts) = self
            .store
            .ingest(events, findings, Some(self.detector.grouping))
            .await?;
        crate::playbook::engine::on_alerts(self, &alerts);
        for a in alerts.iter().filter(|a| a.new) {
            tracing::info!(
                agent_id = %a.agent_id,
                alert = %a.alert_id,
                incident = %a.incident_id,
                level = %a.finding.level,
                "alert: {}",
                a.finding.title
            );
        }
        if self.events.receiver_count() > 0 {
            for e in added {
                // A tailer that went away meanwhile is fine.
                let _ = self.events.send(Arc::new(e));
            }
        }
        Ok(Some(through))
    }
}

/// The stored kind and a one-line text form of an event (what `--contains` searches).
pub fn describe(e: &Event) -> (&'static str, String) {
    match &e.body {
        Some(event::Body::Notice(n)) => {
            let count = if n.count > 0 {
                format!(" (count {})", n.count)
            } else {
                String::new()
            };
            ("notice", format!("{}: {}{count}", n.kind, n.message))
        }
        Some(event::Body::File(f)) => {
            let kind = match f.kind() {
                file_event::Kind::Create => "create",
                file_event::Kind::Modify => "modify",
                file_event::Kind::Delete => "delete",
                file_event::Kind::Rename => "rename",
                file_event::Kind::Unspecified => "change",
            };
            let from = if f.old_path.is_empty() {
                String::new()
            } else {
                format!(" from {}", f.old_path)
            };
            let hash = if f.sha256.is_empty() {
                String::new()
            } else {
                format!(" sha256 {}", f.sha256)
            };
            ("file", format!("{kind} {}{from}{hash}", f.path))
        }
        Some(event::Body::Process(p)) => ("process", describe_process(p)),
        None => ("empty", String::new()),
    }
}

/// "exec /usr/bin/id -u (pid 7, ppid 1, user root, parent /bin/sh)" or
/// "exit /usr/bin/id (pid 7) code 0 after 3 ms".
fn describe_process(p: &ProcessEvent) -> String {
    let partial = if p.partial { " [partial]" } else { "" };
    match p.kind() {
        process_event::Kind::Exit => {
            let how = if p.exit_signal > 0 {
                format!("signal {}", p.exit_signal)
            } else {
                format!("code {}", p.exit_code)
            };
            format!(
                "exit {} (pid {}) {how} after {} ms{partial}",
                p.exe, p.pid, p.lifetime_ms
            )
        }
        _ => {
            let user = if p.user.is_empty() {
                p.uid.to_string()
            } else {
                p.user.clone()
            };
            format!(
                "exec {} {} (pid {}, ppid {}, user {user}, parent {}){partial}",
                p.exe,
                p.argv.join(" "),
                p.pid,
                p.ppid,
                p.parent_exe
            )
        }
    }
}
