//! Telemetry events, stored once per (agent, sequence number).

use super::{Store, StoreError};
use rusqlite::params;

/// One event as stored: its sequence number, time, kind and encoded body.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub time_ms: i64,
    pub kind: String,
    pub body: Vec<u8>,
}

impl Store {
    /// Stores a batch in one transaction; events already stored are skipped. Returns how many
    /// were new.
    pub async fn insert_events(
        &self,
        agent_id: String,
        events: Vec<StoredEvent>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut added = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO events (agent_id, seq, time_ms, kind, body, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for e in &events {
                    added += stmt.execute(params![
                        agent_id,
                        e.seq as i64,
                        e.time_ms,
                        e.kind,
                        e.body,
                        now_ms
                    ])?;
                }
            }
            tx.commit()?;
            Ok(added)
        })
        .await
    }

    /// The newest `limit` events of an agent, newest last.
    pub async fn events(
        &self,
        agent_id: String,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT seq, time_ms, kind, body FROM
                   (SELECT * FROM events WHERE agent_id = ?1 ORDER BY seq DESC LIMIT ?2)
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![agent_id, limit], |r| {
                Ok(StoredEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    time_ms: r.get(1)?,
                    kind: r.get(2)?,
                    body: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn event_count(&self, agent_id: String) -> Result<u64, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM events WHERE agent_id = ?1",
                [agent_id],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }
}
