//! Telemetry from an agent's stream, pipelined: while one batch is being committed, the next
//! ones are already judged and queued, so the store can commit several in one transaction
//! (see `store::ingest`); acknowledgements still go out in order, each only after its batch
//! is committed. Storing a batch is the core's (`Controller::ingest`).

use crate::core::Controller;
use cordon_proto::TelemetryBatch;
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
        self.pending.push_back(tokio::spawn(async move {
            Ok(ctl.ingest(&agent_id, batch).await?)
        }));
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
