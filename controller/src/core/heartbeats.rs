//! Heartbeats, coalesced. Ten thousand agents beating every ten seconds are a thousand
//! heartbeats a second; what they store (last seen, the sensor in use, containment state and
//! metrics) is current, not history, so each agent's newest heartbeat waits here and all of
//! them are stored together once a second, in one write. A heartbeat lost with the process
//! costs nothing: the next one says the same.
//!
//! An agent whose stream ends is marked offline under the same lock as a flush, after its
//! waiting heartbeat is dropped, so a heartbeat can never land after its "offline".

use crate::store::{Agents, AnyStore, Beat, StoreError};
use cordon_proto::Heartbeat;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often waiting heartbeats are stored.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Each agent's newest heartbeat not yet stored.
#[derive(Default)]
pub struct Heartbeats {
    waiting: std::sync::Mutex<HashMap<String, (i64, Heartbeat)>>,
    /// Held while a flush or an "offline" is being stored.
    storing: tokio::sync::Mutex<()>,
}

impl Heartbeats {
    /// Keeps `hb` as the agent's newest heartbeat, received at `now_ms`.
    pub fn note(&self, agent_id: &str, now_ms: i64, hb: Heartbeat) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.insert(agent_id.to_string(), (now_ms, hb));
    }

    /// Stores every waiting heartbeat in one write; how many. Those of a write that fails
    /// are dropped (the next ones say the same).
    pub async fn flush(&self, store: &AnyStore) -> Result<usize, StoreError> {
        let _storing = self.storing.lock().await;
        let beats: Vec<Beat> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting
                .drain()
                .map(|(agent_id, (now_ms, heartbeat))| Beat {
                    agent_id,
                    now_ms,
                    heartbeat,
                })
                .collect()
        };
        let n = beats.len();
        if n > 0 {
            store.agent_heartbeats(beats).await?;
        }
        Ok(n)
    }

    /// Marks the agent offline; its waiting heartbeat, if any, is dropped first.
    pub async fn offline(&self, store: &AnyStore, agent_id: &str) -> Result<(), StoreError> {
        let _storing = self.storing.lock().await;
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.remove(agent_id);
        }
        store.agent_offline(agent_id.to_string()).await
    }
}

/// Stores the waiting heartbeats every [`FLUSH_EVERY`], for ever (the caller aborts it).
pub async fn flush_loop(beats: Arc<Heartbeats>, store: AnyStore) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = beats.flush(&store).await {
            tracing::warn!(error = %e, "storing heartbeats failed; the next ones will say the same");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::conformance::enrolled;

    fn beat(sensor: &str) -> Heartbeat {
        Heartbeat {
            process_sensor: sensor.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn only_the_newest_heartbeat_is_stored_and_none_after_offline() {
        let store: AnyStore = Store::memory().unwrap().into();
        enrolled(&store, "a").await;
        enrolled(&store, "b").await;
        let beats = Heartbeats::default();
        beats.note("a", 10, beat("first"));
        beats.note("a", 20, beat("second"));
        beats.note("b", 30, beat("b's"));
        assert_eq!(beats.flush(&store).await.unwrap(), 2, "one write per agent");
        let a = store.agent("a".into()).await.unwrap().unwrap();
        assert_eq!((a.last_seen_ms, a.process_sensor.as_str()), (20, "second"));
        assert!(a.online);

        // A heartbeat waiting when the stream ends is dropped, not stored after "offline".
        beats.note("a", 40, beat("late"));
        beats.offline(&store, "a").await.unwrap();
        assert_eq!(beats.flush(&store).await.unwrap(), 0);
        let a = store.agent("a".into()).await.unwrap().unwrap();
        assert!(!a.online);
        assert_eq!(a.last_seen_ms, 20);
        let b = store.agent("b".into()).await.unwrap().unwrap();
        assert_eq!((b.last_seen_ms, b.online), (30, true));
    }
}
