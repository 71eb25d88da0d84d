//! The audit log on PostgreSQL: the same hash chain as SQLite's (`store/audit.rs` builds and
//! checks it); appends are serialised by an advisory lock held to the end of their
//! transaction, so seqs never repeat or skip across controllers.

use super::{PgStore, big};
use crate::policy::audit::{AuditEntry, AuditRecord, Verification};
use crate::store::audit::{COLUMNS, Read, VERIFY_CHUNK, detail_json, next_record, verify_chain};
use crate::store::{AuditFilter, AuditLog, StoreError};
use tokio_postgres::Row;

/// The advisory lock held while appending ("cordaudt").
const AUDIT_LOCK: i64 = 0x636f_7264_6175_6474;

fn read(r: &Row) -> Result<AuditRecord, StoreError> {
    let seq: i64 = r.try_get(0)?;
    Ok(AuditRecord {
        seq: u64::try_from(seq).map_err(|e| StoreError::Corrupt(format!("audit seq: {e}")))?,
        time_ms: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        detail: r.try_get(5)?,
        outcome: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

fn records(rows: Vec<Row>) -> Result<Vec<AuditRecord>, StoreError> {
    rows.iter().map(read).collect()
}

impl AuditLog for PgStore {
    async fn append_audit(
        &self,
        entry: AuditEntry,
        now_ms: i64,
    ) -> Result<AuditRecord, StoreError> {
        let detail = detail_json(&entry)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .await?;
        let last = tx
            .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
            .await?;
        let last = match last {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        };
        let rec = next_record(entry, detail, now_ms, last);
        tx.execute(
            &format!("INSERT INTO audit ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[
                &(rec.seq as i64),
                &rec.time_ms,
                &rec.actor,
                &rec.action,
                &rec.target,
                &rec.detail,
                &rec.outcome,
                &rec.prev_hash,
                &rec.hash,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn audit(
        &self,
        since_ms: i64,
        limit: u32,
        actor: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM audit
             WHERE at >= $1 AND ($3::TEXT IS NULL OR actor = $3)
             ORDER BY seq DESC LIMIT $2) newest ORDER BY seq"
        );
        let c = self.client().await?;
        records(c.query(&sql, &[&since_ms, &big(limit), &actor]).await?)
    }

    async fn audit_page(&self, f: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let before = f.before_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {COLUMNS} FROM audit
             WHERE at >= $1 AND ($2::BIGINT IS NULL OR at < $2)
               AND ($3::TEXT IS NULL OR actor = $3)
               AND ($4::TEXT IS NULL OR starts_with(action, $4))
               AND ($5::BIGINT IS NULL OR seq < $5)
             ORDER BY seq DESC LIMIT $6"
        );
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &f.since_ms,
            &f.until_ms,
            &f.actor,
            &f.action,
            &before,
            &big(f.limit),
        ];
        records(self.client().await?.query(&sql, &args).await?)
    }

    async fn verify_audit(&self) -> Result<Verification, StoreError> {
        verify_chain(|after| self.audit_chunk(after)).await
    }
}

impl PgStore {
    /// Up to `VERIFY_CHUNK` entries after seq `after`, each read or the reason it cannot be.
    async fn audit_chunk(&self, after: i64) -> Result<Vec<Read>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = self
            .client()
            .await?
            .query(&sql, &[&after, &(VERIFY_CHUNK as i64)])
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                read(r).map_err(|e| {
                    let seq: i64 = r.try_get(0).unwrap_or(0);
                    (
                        seq,
                        format!("the entry cannot be read ({e}): it was edited"),
                    )
                })
            })
            .collect())
    }
}
