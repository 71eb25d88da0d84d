//! The events table's daily partitions. Each UTC day of event time (`time_ms`) has its own
//! partition, `events_d<N>` (N: days since the Unix epoch, `m` for minus), created ahead of
//! time for today and the next few days, and on demand for an event outside them: a host with
//! a wrong clock, or a backlog from long ago, gets a partition for its day rather than a
//! DEFAULT partition. (A default partition would make every later partition for a day it holds
//! rows of fail to create, until those rows were moved by hand.)
//!
//! Creation takes an advisory lock, so controllers creating the same day at once do not race;
//! each controller remembers the days it has seen exist. A day dropped by another controller's
//! retention is created again when an insert finds it missing (`events.rs`).

use super::PgStore;
use crate::store::StoreError;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub(super) const DAY_MS: i64 = 86_400_000;

/// Days ahead of today whose partitions exist before any event needs them.
const AHEAD_DAYS: i64 = 3;

/// The advisory lock held while creating a partition ("cordpart").
const PARTITION_LOCK: i64 = 0x636f_7264_7061_7274;

/// The days whose partitions this controller knows to exist.
#[derive(Clone, Default)]
pub(super) struct Known(Arc<Mutex<HashSet<i64>>>);

impl Known {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn forget_all(&self) {
        self.lock().clear();
    }

    pub(super) fn forget(&self, day: i64) {
        self.lock().remove(&day);
    }
}

/// The day (since the epoch) of a time.
pub(in crate::store) fn day_of(time_ms: i64) -> i64 {
    time_ms.div_euclid(DAY_MS)
}

/// A day's partition's name.
pub(super) fn name(day: i64) -> String {
    match day < 0 {
        true => format!("events_dm{}", day.unsigned_abs()),
        false => format!("events_d{day}"),
    }
}

/// The day of a partition's name (None for another table).
pub(super) fn day_of_name(name: &str) -> Option<i64> {
    let n = name.strip_prefix("events_d")?;
    match n.strip_prefix('m') {
        Some(minus) => minus.parse::<i64>().ok().map(|d| -d),
        None => n.parse().ok(),
    }
}

/// A bound of a day's range: its first millisecond, or MINVALUE/MAXVALUE past i64's range.
fn bound(day: i64) -> String {
    match day.checked_mul(DAY_MS) {
        Some(ms) => ms.to_string(),
        None if day < 0 => "MINVALUE".into(),
        None => "MAXVALUE".into(),
    }
}

/// A day's first millisecond and the next day's, within i64's range.
pub(super) fn range(day: i64) -> (i64, i64) {
    let start = |d: i64| {
        d.checked_mul(DAY_MS)
            .unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
    };
    (start(day), start(day.saturating_add(1)))
}

impl PgStore {
    /// Today's partition and the next few days'.
    pub(super) async fn create_coming_partitions(&self) -> Result<(), StoreError> {
        let today = day_of(cordon_proto::time::now_ms());
        self.ensure_partitions((today..=today + AHEAD_DAYS).collect())
            .await
    }

    /// Creates the partitions of `days` that this controller has not seen exist.
    pub(in crate::store) async fn ensure_partitions(
        &self,
        days: HashSet<i64>,
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self.days.lock();
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut c = self.client().await?;
        for day in missing {
            let name = name(day);
            let failed = |source| StoreError::Partition {
                name: name.clone(),
                source,
            };
            let tx = c.transaction().await.map_err(failed)?;
            tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({PARTITION_LOCK});
                 CREATE TABLE IF NOT EXISTS {name} PARTITION OF events
                     FOR VALUES FROM ({}) TO ({});",
                bound(day),
                bound(day + 1)
            ))
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            self.days.lock().insert(day);
        }
        Ok(())
    }

    /// Every event partition's day, oldest first.
    pub(super) async fn partition_days(&self) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'events'::regclass",
                &[],
            )
            .await?;
        let mut days = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .filter_map(|n| day_of_name(n))
            .collect::<Vec<_>>();
        days.sort_unstable();
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_name_maps_back_to_its_day() {
        for day in [0, 1, 20_000, -3, i64::MAX / DAY_MS + 5] {
            assert_eq!(day_of_name(&name(day)), Some(day));
        }
        assert_eq!(day_of_name("event_keys"), None);
        assert_eq!(day_of(-1), -1, "before the epoch is the day before");
        assert_eq!(bound(i64::MAX / DAY_MS + 1), "MAXVALUE");
    }
}
