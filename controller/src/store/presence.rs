//! Presence writes on SQLite, with group commit (`group.rs`): hellos, heartbeats and going
//! offline. A fleet of ten thousand agents sends hundreds of heartbeats a second, and a
//! controller restart brings them all back at once; each its own commit (one sync of the
//! log each) would queue every other write behind them. Here they share commits instead.
//!
//! Each writer still waits for its own commit, and writes are stored in the order they were
//! queued, so an agent's heartbeat can never be stored after its stream's "offline".

use super::agents::{HeartbeatColumns, heartbeat_columns};
use super::{Store, StoreError, group};
use cordon_proto::HostFacts;
use rusqlite::{Transaction, params};
use tokio::sync::oneshot;

/// Most presence writes one transaction holds.
const GROUP_WRITES: usize = 5_000;

/// What happened to an agent's stream.
pub(super) enum Change {
    /// A hello: online, with its host facts.
    Connected(HostFacts),
    Heartbeat(HeartbeatColumns),
    Offline,
}

/// One presence write waiting to be stored.
pub(super) struct Job {
    agent_id: String,
    now_ms: i64,
    change: Change,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl Store {
    /// Stores `change` for `agent_id` with whatever presence writes are queued; returns once
    /// it is committed.
    pub(super) async fn presence(
        &self,
        agent_id: String,
        now_ms: i64,
        change: Change,
    ) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        let job = Job {
            agent_id,
            now_ms,
            change,
            done,
        };
        self.join_group(&self.presence, job);
        result
            .await
            .map_err(|_| StoreError::Task("the presence write was dropped".into()))?
    }
}

/// The change a heartbeat makes.
pub(super) fn heartbeat(hb: cordon_proto::Heartbeat) -> Change {
    Change::Heartbeat(heartbeat_columns(hb))
}

impl group::Job for Job {
    type Stored = ();
    const GROUP_WEIGHT: usize = GROUP_WRITES;

    fn weight(&self) -> usize {
        1
    }

    fn store(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let id = &self.agent_id;
        match &self.change {
            Change::Connected(host) => tx
                .prepare_cached(
                    "UPDATE agents SET online = 1, last_seen = ?2, hostname = ?3, os_name = ?4,
                         os_version = ?5, kernel_version = ?6, arch = ?7, agent_version = ?8
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    self.now_ms,
                    host.hostname,
                    host.os_name,
                    host.os_version,
                    host.kernel_version,
                    host.arch,
                    host.agent_version
                ])?,
            Change::Heartbeat((sensor, containment, metrics)) => tx
                .prepare_cached(
                    "UPDATE agents SET last_seen = ?2, process_sensor = ?3, online = 1,
                         containment = COALESCE(?4, containment),
                         metrics = COALESCE(?5, metrics)
                     WHERE id = ?1",
                )?
                .execute(params![id, self.now_ms, sensor, containment, metrics])?,
            Change::Offline => tx
                .prepare_cached("UPDATE agents SET online = 0 WHERE id = ?1")?
                .execute([id])?,
        };
        Ok(())
    }

    fn answer(self, result: Result<(), StoreError>) {
        let _ = self.done.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Agents;
    use crate::store::conformance::enrolled;

    fn job(
        agent: &str,
        now_ms: i64,
        change: Change,
    ) -> (Job, oneshot::Receiver<Result<(), StoreError>>) {
        let (done, answer) = oneshot::channel();
        let job = Job {
            agent_id: agent.into(),
            now_ms,
            change,
            done,
        };
        (job, answer)
    }

    #[tokio::test]
    async fn writes_in_one_group_are_stored_in_their_order() {
        let s = Store::memory().unwrap();
        enrolled(&s, "a").await;
        enrolled(&s, "b").await;
        let beat = |sensor: &str| {
            heartbeat(cordon_proto::Heartbeat {
                process_sensor: sensor.into(),
                ..Default::default()
            })
        };
        let (hello, hello_done) = job("a", 10, Change::Connected(HostFacts::default()));
        let (beat_a, beat_a_done) = job("a", 20, beat("ebpf"));
        let (gone, gone_done) = job("a", 30, Change::Offline);
        let (beat_b, beat_b_done) = job("b", 40, beat("proc"));
        for j in [hello, beat_a, gone, beat_b] {
            s.presence.push(j);
        }
        let queue = s.presence.clone();
        s.with(move |c| {
            let group = queue.take_group();
            assert_eq!(group.len(), 4, "one group holds every queued write");
            group::store_group(c, group);
            Ok(())
        })
        .await
        .unwrap();
        for answer in [hello_done, beat_a_done, gone_done, beat_b_done] {
            answer.await.unwrap().unwrap();
        }
        let a = s.agent("a".into()).await.unwrap().unwrap();
        assert!(!a.online, "the heartbeat before 'offline' did not win");
        assert_eq!((a.last_seen_ms, a.process_sensor.as_str()), (20, "ebpf"));
        let b = s.agent("b".into()).await.unwrap().unwrap();
        assert!(b.online);
        assert_eq!((b.last_seen_ms, b.process_sensor.as_str()), (40, "proc"));
    }

    #[tokio::test]
    async fn concurrent_heartbeats_are_each_stored() {
        let s = Store::memory().unwrap();
        let ids: Vec<String> = (0..50).map(|i| format!("agent-{i}")).collect();
        for id in &ids {
            enrolled(&s, id).await;
        }
        let mut beats = tokio::task::JoinSet::new();
        for (i, id) in ids.iter().enumerate() {
            let (s, id) = (s.clone(), id.clone());
            beats.spawn(async move {
                s.agent_heartbeat(id, 100 + i as i64, Default::default())
                    .await
            });
        }
        for stored in beats.join_all().await {
            stored.unwrap();
        }
        for (i, id) in ids.iter().enumerate() {
            let a = s.agent(id.clone()).await.unwrap().unwrap();
            assert!(a.online);
            assert_eq!(a.last_seen_ms, 100 + i as i64);
        }
    }
}
