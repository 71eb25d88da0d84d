//! Event retention: deleting events past an age or beyond a row cap, in bounded chunks. Each
//! chunk is its own short transaction, and the store's connection is released between chunks,
//! so a prune of millions of rows never holds the write lock (or the store) for long.
//!
//! Age is the event's own time (`time_ms`, the agent's clock: what queries filter and sort
//! by), so an event that arrives late but is already past retention goes at the next prune.
//! The row cap keeps the newest events in `(time_ms, agent_id, seq)` order, the order of the
//! `events_by_time` index that both deletes walk.
//!
//! Pruning forgets which `(agent, seq)` pairs were stored, so a resend of a pruned event would
//! be stored again. That does not happen in practice: the controller acknowledges a batch only
//! after committing it, the agent never resends what was acknowledged, and an event is pruned
//! only long after its acknowledgement. (An agent that lost its acknowledgement record resends
//! only its recent, unpruned tail; and a re-stored old event is pruned again at the next pass.)

use super::{Store, StoreError};
use rusqlite::params;

/// Most events deleted in one transaction.
pub const PRUNE_CHUNK: u64 = 5_000;

/// How many events one prune deleted, and why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Older than the cutoff.
    pub by_age: u64,
    /// Beyond the row cap.
    pub by_cap: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.by_age + self.by_cap
    }
}

const DELETE_OLDER: &str = "DELETE FROM events WHERE (agent_id, seq) IN
     (SELECT agent_id, seq FROM events WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)";
const DELETE_OLDEST: &str = "DELETE FROM events WHERE (agent_id, seq) IN
     (SELECT agent_id, seq FROM events ORDER BY time_ms, agent_id, seq LIMIT ?1)";

impl Store {
    /// `Events::prune_events`, deleting at most `chunk` events per transaction.
    pub(super) async fn prune_in_chunks(
        &self,
        older_than: Option<i64>,
        keep_newest: Option<u64>,
        chunk: u64,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        if let Some(cutoff) = older_than {
            loop {
                let n = self
                    .with(move |c| {
                        Ok(c.prepare_cached(DELETE_OLDER)?
                            .execute(params![cutoff, chunk as i64])?)
                    })
                    .await? as u64;
                pruned.by_age += n;
                if n < chunk {
                    break;
                }
            }
        }
        if let Some(keep) = keep_newest {
            let total = self
                .with(|c| {
                    Ok(c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))?)
                })
                .await? as u64;
            // Events stored meanwhile are newer than all of these, so deleting exactly the
            // excess counted here never cuts below the cap.
            let mut excess = total.saturating_sub(keep);
            while excess > 0 {
                let limit = excess.min(chunk);
                let n = self
                    .with(move |c| Ok(c.prepare_cached(DELETE_OLDEST)?.execute([limit as i64])?))
                    .await? as u64;
                pruned.by_cap += n;
                if n == 0 {
                    break;
                }
                excess = excess.saturating_sub(n);
            }
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Events;
    use crate::store::StoredEvent;

    fn ev(agent: &str, seq: u64, time_ms: i64) -> StoredEvent {
        StoredEvent {
            agent_id: agent.into(),
            seq,
            time_ms,
            kind: "notice".into(),
            summary: format!("event {seq}"),
            body: vec![1, 2, 3],
            received_at_ms: time_ms,
        }
    }

    /// Every stored (agent, seq, time), in time order.
    async fn stored(s: &Store) -> Vec<(String, u64, i64)> {
        s.with(|c| {
            let mut stmt = c.prepare(
                "SELECT agent_id, seq, time_ms FROM events ORDER BY time_ms, agent_id, seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap()
    }

    /// Two agents, 100 events each, one per millisecond from time 1000.
    async fn filled() -> Store {
        let s = Store::memory().unwrap();
        for agent in ["a", "b"] {
            let batch = (0..100)
                .map(|i| ev(agent, i + 1, 1000 + i as i64))
                .collect();
            s.insert_events(batch).await.unwrap();
        }
        s
    }

    #[tokio::test]
    async fn old_events_go_and_nothing_at_or_after_the_cutoff_does() {
        let s = filled().await;
        let pruned = s.prune_in_chunks(Some(1050), None, 7).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                by_age: 100,
                by_cap: 0
            },
            "50 per agent, in many chunks"
        );
        let left = stored(&s).await;
        assert_eq!(left.len(), 100);
        assert!(
            left.iter().all(|(_, _, t)| *t >= 1050),
            "nothing older is left"
        );
        assert_eq!(
            left.first().map(|e| e.2),
            Some(1050),
            "the event at the cutoff stays"
        );
        let again = s.prune_in_chunks(Some(1050), None, 7).await.unwrap();
        assert_eq!(again.total(), 0, "a second pass finds nothing");
    }

    #[tokio::test]
    async fn the_row_cap_keeps_exactly_the_newest() {
        let s = filled().await;
        let pruned = s.prune_in_chunks(None, Some(61), 7).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                by_age: 0,
                by_cap: 139
            }
        );
        let left = stored(&s).await;
        // Newest first: times 1099 down to 1070 for both agents (60 events), then a's 1069
        // before b's, in (time, agent, seq) order.
        let mut want: Vec<(String, u64, i64)> = (1069..1100)
            .flat_map(|t| ["a", "b"].map(|a| (a.to_string(), (t - 999) as u64, t)))
            .collect();
        want.remove(0);
        assert_eq!(left, want);
        assert_eq!(
            s.prune_in_chunks(None, Some(61), 7).await.unwrap().total(),
            0
        );
        assert_eq!(
            s.prune_events(None, Some(1_000)).await.unwrap().total(),
            0,
            "under the cap"
        );
    }

    #[tokio::test]
    async fn age_and_cap_together_count_each_deletion_once() {
        let s = filled().await;
        let pruned = s.prune_in_chunks(Some(1090), Some(12), 5).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                by_age: 180,
                by_cap: 8
            }
        );
        let left = stored(&s).await;
        assert_eq!(left.len(), 12);
        assert!(left.iter().all(|(_, _, t)| *t >= 1094));
    }
}
