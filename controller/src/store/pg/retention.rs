//! Event retention on PostgreSQL. Whole days go by dropping their partition (cheap, however
//! many events it holds, and no table bloat to vacuum); what is left to delete, in the day
//! that straddles the age cutoff or the part of the oldest day beyond the row cap, goes in
//! chunked deletes, as in the SQLite backend (`store/retention.rs`, whose contract this
//! keeps exactly: the counts are of events deleted, and the row cap keeps exactly the newest
//! by (time, agent, seq)). The keys of pruned events are forgotten with them, so a pruned
//! event resent is stored again.

use super::{PgStore, partitions};
use crate::store::{PRUNE_CHUNK, Pruned, StoreError};

/// Deletes up to $2 events older than $1, and their keys; counts them.
const DELETE_OLDER: &str = "WITH gone AS (
       DELETE FROM events WHERE (time_ms, agent_id, seq) IN
         (SELECT time_ms, agent_id, seq FROM events WHERE time_ms < $1 ORDER BY time_ms LIMIT $2)
       RETURNING agent_id, seq),
     keys AS (DELETE FROM event_keys k USING gone WHERE k.agent_id = gone.agent_id
                AND k.seq = gone.seq)
     SELECT COUNT(*) FROM gone";

/// Deletes the oldest $1 events, and their keys; counts them.
const DELETE_OLDEST: &str = "WITH gone AS (
       DELETE FROM events WHERE (time_ms, agent_id, seq) IN
         (SELECT time_ms, agent_id, seq FROM events ORDER BY time_ms, agent_id, seq LIMIT $1)
       RETURNING agent_id, seq),
     keys AS (DELETE FROM event_keys k USING gone WHERE k.agent_id = gone.agent_id
                AND k.seq = gone.seq)
     SELECT COUNT(*) FROM gone";

impl PgStore {
    /// `Events::prune_events`.
    pub(super) async fn prune(
        &self,
        older_than: Option<i64>,
        keep_newest: Option<u64>,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        if let Some(cutoff) = older_than {
            pruned.by_age = self.prune_older(cutoff).await?;
        }
        if let Some(keep) = keep_newest {
            pruned.by_cap = self.prune_beyond(keep).await?;
        }
        Ok(pruned)
    }

    /// Drops the days wholly before `cutoff`, then deletes the rest older than it.
    async fn prune_older(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for day in self.partition_days().await? {
            if day < partitions::day_of(cutoff) {
                n += self.drop_day(day).await?;
            }
        }
        loop {
            let limit = PRUNE_CHUNK as i64;
            let deleted = self.delete_chunk(DELETE_OLDER, &[&cutoff, &limit]).await?;
            n += deleted;
            if deleted < PRUNE_CHUNK {
                return Ok(n);
            }
        }
    }

    /// Deletes the oldest events beyond the newest `keep`: whole days while a day is no more
    /// than the excess, then chunks.
    async fn prune_beyond(&self, keep: u64) -> Result<u64, StoreError> {
        let total: i64 = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM event_keys", &[])
            .await?
            .try_get(0)?;
        // Events stored meanwhile are newer than all of these, so deleting exactly the
        // excess counted here never cuts below the cap.
        let mut excess = (total as u64).saturating_sub(keep);
        let mut n = 0;
        for day in self.partition_days().await? {
            if excess == 0 || self.day_count(day).await? > excess {
                break;
            }
            let dropped = self.drop_day(day).await?;
            excess = excess.saturating_sub(dropped);
            n += dropped;
        }
        while excess > 0 {
            let limit = excess.min(PRUNE_CHUNK) as i64;
            let deleted = self.delete_chunk(DELETE_OLDEST, &[&limit]).await?;
            if deleted == 0 {
                break;
            }
            excess = excess.saturating_sub(deleted);
            n += deleted;
        }
        Ok(n)
    }

    async fn delete_chunk(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()
            .await?
            .query_one(sql, args)
            .await?
            .try_get(0)?;
        Ok(n as u64)
    }

    /// How many events a day's partition holds (0 if it is gone).
    async fn day_count(&self, day: i64) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let name = partitions::name(day);
        let exists = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await?
            .try_get::<_, bool>(0)?;
        if !exists {
            return Ok(0);
        }
        let sql = format!("SELECT COUNT(*) FROM {name}");
        Ok(c.query_one(&sql, &[]).await?.try_get::<_, i64>(0)? as u64)
    }

    /// Drops a day's partition and forgets its keys; returns how many events it held.
    async fn drop_day(&self, day: i64) -> Result<u64, StoreError> {
        let name = partitions::name(day);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let exists = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await?
            .try_get::<_, bool>(0)?;
        if !exists {
            return Ok(0);
        }
        tx.batch_execute(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .await?;
        let count_sql = format!("SELECT COUNT(*) FROM {name}");
        let n: i64 = tx.query_one(&count_sql, &[]).await?.try_get(0)?;
        let (from, to) = partitions::range(day);
        tx.execute(
            "DELETE FROM event_keys WHERE time_ms >= $1 AND time_ms < $2",
            &[&from, &to],
        )
        .await?;
        tx.batch_execute(&format!("DROP TABLE {name}")).await?;
        tx.commit().await?;
        self.days.forget(day);
        Ok(n as u64)
    }
}
