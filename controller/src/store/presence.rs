//! Presence writes on SQLite, with group commit (`group.rs`): hellos, heartbeats and going
//! offline. A fleet of ten thousand agents sends hundreds of heartbeats a second, and a
//! controller restart brings them all back at once; each its own commit (one sync of the
//! log each) would queue every other write behind them. Here they share commits instead.
//!
//! Each writer still waits for its own commit, and writes are stored in the order they were
//! queued, so an agent's heartbeat can never be stored after its stream's "offline".

use super::agents::{HeartbeatColumns, heartbeat_columns};
use super::{Beat, Store, StoreError};
use cordon_proto::HostFacts;
use rusqlite::{Connection, params};

/// What happened to an agent's stream.
pub(super) enum Change {
    /// A hello: online, with its host facts.
    Connected(HostFacts),
    Heartbeat(HeartbeatColumns),
    Offline,
}

impl Store {
    /// Stores `change` for `agent_id` with whatever writes are queued; returns once it is
    /// committed.
    pub(super) async fn presence(
        &self,
        agent_id: String,
        now_ms: i64,
        change: Change,
    ) -> Result<(), StoreError> {
        self.grouped(move |c| store(c, &agent_id, now_ms, &change))
            .await
    }

    /// Stores several agents' heartbeats in one write.
    pub(super) async fn heartbeats(&self, beats: Vec<Beat>) -> Result<(), StoreError> {
        self.grouped_by(None, beats.len(), move |c| {
            for b in beats {
                let change = Change::Heartbeat(heartbeat_columns(b.heartbeat));
                store(c, &b.agent_id, b.now_ms, &change)?;
            }
            Ok(())
        })
        .await
    }
}

fn store(c: &Connection, id: &str, now_ms: i64, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::Connected(host) => c
            .prepare_cached(
                "UPDATE agents SET online = 1, last_seen = ?2, hostname = ?3, os_name = ?4,
                     os_version = ?5, kernel_version = ?6, arch = ?7, agent_version = ?8
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                now_ms,
                host.hostname,
                host.os_name,
                host.os_version,
                host.kernel_version,
                host.arch,
                host.agent_version
            ])?,
        Change::Heartbeat((sensor, containment, metrics)) => c
            .prepare_cached(
                "UPDATE agents SET last_seen = ?2, process_sensor = ?3, online = 1,
                     containment = COALESCE(?4, containment), metrics = COALESCE(?5, metrics)
                 WHERE id = ?1",
            )?
            .execute(params![id, now_ms, sensor, containment, metrics])?,
        Change::Offline => c
            .prepare_cached("UPDATE agents SET online = 0 WHERE id = ?1")?
            .execute([id])?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Agents;
    use crate::store::conformance::enrolled;

    #[tokio::test]
    async fn writes_in_one_group_are_stored_in_their_order() {
        let s = Store::memory().unwrap();
        enrolled(&s, "a").await;
        enrolled(&s, "b").await;
        let beat = |sensor: &str| {
            Change::Heartbeat(heartbeat_columns(cordon_proto::Heartbeat {
                process_sensor: sensor.into(),
                ..Default::default()
            }))
        };
        // Every write queues while the connection is busy, so they go in one group.
        let busy = s.hold_connection();
        let mut writes = Vec::new();
        for (id, now, change) in [
            ("a", 10, Change::Connected(HostFacts::default())),
            ("a", 20, beat("ebpf")),
            ("a", 30, Change::Offline),
            ("b", 40, beat("proc")),
        ] {
            let s2 = s.clone();
            writes.push(tokio::spawn(async move {
                s2.presence(id.into(), now, change).await
            }));
            // Queued before the next one starts.
            assert_eq!(s.until_queued(writes.len()).await, writes.len());
        }
        drop(busy);
        for w in writes {
            w.await.unwrap().unwrap();
        }
        let a = s.agent("a".into()).await.unwrap().unwrap();
        assert!(!a.online, "the heartbeat before 'offline' did not win");
        assert_eq!((a.last_seen_ms, a.process_sensor.as_str()), (20, "ebpf"));
        let b = s.agent("b".into()).await.unwrap().unwrap();
        assert!(b.online);
        assert_eq!((b.last_seen_ms, b.process_sensor.as_str()), (40, "proc"));
    }

    #[tokio::test]
    async fn heartbeats_stored_together_are_each_stored() {
        let s = Store::memory().unwrap();
        let ids: Vec<String> = (0..50).map(|i| format!("agent-{i}")).collect();
        for id in &ids {
            enrolled(&s, id).await;
        }
        let beats = ids.iter().enumerate().map(|(i, id)| Beat {
            agent_id: id.clone(),
            now_ms: 100 + i as i64,
            heartbeat: Default::default(),
        });
        s.agent_heartbeats(beats.collect()).await.unwrap();
        for (i, id) in ids.iter().enumerate() {
            let a = s.agent(id.clone()).await.unwrap().unwrap();
            assert!(a.online);
            assert_eq!(a.last_seen_ms, 100 + i as i64);
        }
    }
}
