//! Open agent streams. Each agent has at most one: a new connection supersedes the old one.
//! Commands are pushed through here the moment they are persisted, and revocation closes a
//! stream through here at once.

use cordon_proto::ControllerMessage;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why the controller ended an agent's stream (the transport tells the agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The agent opened a newer stream.
    Superseded,
    /// The agent was revoked.
    Revoked,
    /// The controller is stopping.
    ShuttingDown,
}

pub type Outbound = mpsc::Sender<Result<ControllerMessage, StreamEnd>>;
pub type OutboundRx = mpsc::Receiver<Result<ControllerMessage, StreamEnd>>;

/// How many messages may queue for one agent before senders wait.
const OUTBOUND_QUEUE: usize = 256;

struct Entry {
    conn: u64,
    tx: Outbound,
    close: CancellationToken,
}

/// A freshly registered stream.
pub struct Registration {
    pub conn: u64,
    pub tx: Outbound,
    pub rx: OutboundRx,
    pub close: CancellationToken,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
    next: AtomicU64,
}

impl Sessions {
    /// Registers a stream for `agent_id`, closing any earlier one.
    pub fn register(&self, agent_id: &str) -> Registration {
        let conn = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let close = CancellationToken::new();
        let entry = Entry {
            conn,
            tx: tx.clone(),
            close: close.clone(),
        };
        let old = self.lock().insert(agent_id.to_string(), entry);
        if let Some(old) = old {
            let _ = old.tx.try_send(Err(StreamEnd::Superseded));
            old.close.cancel();
        }
        Registration {
            conn,
            tx,
            rx,
            close,
        }
    }

    /// Called as connection `conn` ends: removes its entry if it is still there. True unless
    /// a newer stream of the agent superseded it, that is when the agent's presence is this
    /// stream's to end, also when a revocation already closed and removed it (a heartbeat
    /// stored between the revocation and the close must not leave the agent shown online).
    pub fn remove_if(&self, agent_id: &str, conn: u64) -> bool {
        let mut map = self.lock();
        match map.get(agent_id) {
            Some(e) if e.conn == conn => {
                map.remove(agent_id);
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Closes the agent's stream for `why`; true if one was open.
    pub fn close(&self, agent_id: &str, why: StreamEnd) -> bool {
        let entry = self.lock().remove(agent_id);
        match entry {
            Some(e) => {
                let _ = e.tx.try_send(Err(why));
                e.close.cancel();
                true
            }
            None => false,
        }
    }

    pub fn close_all(&self, why: StreamEnd) {
        let entries: Vec<_> = self.lock().drain().collect();
        for (_, e) in entries {
            let _ = e.tx.try_send(Err(why));
            e.close.cancel();
        }
    }

    /// The sender for the agent's open stream, if any.
    pub fn sender(&self, agent_id: &str) -> Option<Outbound> {
        self.lock().get(agent_id).map(|e| e.tx.clone())
    }

    /// The agents with a stream open here.
    pub fn agent_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn is_online(&self, agent_id: &str) -> bool {
        self.lock().contains_key(agent_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_ends_the_presence_it_holds_unless_superseded() {
        let sessions = Sessions::default();
        let first = sessions.register("a");
        let second = sessions.register("a");
        assert!(
            first.close.is_cancelled(),
            "the older stream is told to close"
        );
        assert!(
            !sessions.remove_if("a", first.conn),
            "superseded: not its to end"
        );
        assert!(sessions.is_online("a"));

        // Revoked: the entry is gone before the stream unwinds, which still ends it.
        assert!(sessions.close("a", StreamEnd::Revoked));
        assert!(second.close.is_cancelled());
        assert!(!sessions.is_online("a"));
        assert!(sessions.remove_if("a", second.conn));
        assert!(
            !sessions.close("a", StreamEnd::Revoked),
            "nothing left to close"
        );
    }
}
