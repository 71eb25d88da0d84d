//! The audit log on disk: appended through [`Store::append_audit`], walked by
//! [`Store::verify_audit`]. Entries and their hash chain are the policy's
//! (`policy::audit`, which gives the exact encoding); this file reads and writes them.
//!
//! Triggers (migration 0006) refuse UPDATE and DELETE on the table. They are a guard, not the
//! proof: someone who drops them, or edits the database file directly, is still caught by
//! [`Store::verify_audit`], which walks the chain with [`ChainCheck`]. What a chain cannot
//! show on its own is the removal of the newest entries: the verification reports the last
//! seq and hash so that they can be compared with a copy kept elsewhere.

use super::{Store, StoreError};
use crate::policy::audit::{AuditEntry, AuditRecord, ChainCheck, GENESIS_HASH, Verification};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

/// Entries read per transaction while verifying, so a long chain never holds the store.
pub(super) const VERIFY_CHUNK: usize = 1000;

pub(super) const COLUMNS: &str = "seq, at, actor, action, target, detail, outcome, prev_hash, hash";

fn read(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let seq: i64 = r.get(0)?;
    Ok(AuditRecord {
        seq: u64::try_from(seq).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, e.into())
        })?,
        time_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
        outcome: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

/// Which audit entries to list, a page at a time: every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Recorded at or after this time.
    pub since_ms: i64,
    /// Recorded before this time.
    pub until_ms: Option<i64>,
    /// By exactly this actor.
    pub actor: Option<String>,
    /// Whose action starts with this (`rule.` for every rule action).
    pub action: Option<String>,
    /// With a seq below this one (the next page of older entries).
    pub before_seq: Option<u64>,
    pub limit: u32,
}

/// A row read while verifying: an entry, or the seq of one that cannot be read and why.
pub(super) type Read = Result<AuditRecord, (i64, String)>;

/// The audit log aggregate: an append-only hash chain (`policy::audit`). Every backend
/// passes `conformance::audit_log`.
pub trait AuditLog: Send + Sync {
    /// Appends an entry at `now_ms` as the next link of the chain and returns it as stored.
    /// Concurrent appends are serialised: seqs never repeat or skip.
    fn append_audit(
        &self,
        entry: AuditEntry,
        now_ms: i64,
    ) -> impl Future<Output = Result<AuditRecord, StoreError>> + Send;

    /// The newest `limit` entries at or after `since_ms` (by `actor` only, if given), oldest
    /// first.
    fn audit(
        &self,
        since_ms: i64,
        limit: u32,
        actor: Option<String>,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// The newest `f.limit` entries that pass `f`, newest first.
    fn audit_page(
        &self,
        f: AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// Walks the whole chain and reports the first bad entry.
    fn verify_audit(&self) -> impl Future<Output = Result<Verification, StoreError>> + Send;
}

impl AuditLog for Store {
    /// Reading the last hash and inserting happen in one immediate transaction.
    async fn append_audit(
        &self,
        entry: AuditEntry,
        now_ms: i64,
    ) -> Result<AuditRecord, StoreError> {
        let detail = detail_json(&entry)?;
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: Option<(i64, String)> = tx
                .query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let rec = next_record(entry, detail, now_ms, last);
            tx.execute(
                &format!(
                    "INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    rec.seq as i64,
                    rec.time_ms,
                    rec.actor,
                    rec.action,
                    rec.target,
                    rec.detail,
                    rec.outcome,
                    rec.prev_hash,
                    rec.hash
                ],
            )?;
            tx.commit()?;
            Ok(rec)
        })
        .await
    }

    async fn audit(
        &self,
        since_ms: i64,
        limit: u32,
        actor: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM audit
                 WHERE at >= ?1 AND (?3 IS NULL OR actor = ?3)
                 ORDER BY seq DESC LIMIT ?2) ORDER BY seq"
            ))?;
            let rows = stmt.query_map(params![since_ms, limit, actor], read)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn audit_page(&self, f: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let before = f.before_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit
                 WHERE at >= ?1 AND (?2 IS NULL OR at < ?2) AND (?3 IS NULL OR actor = ?3)
                   AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4)
                   AND (?5 IS NULL OR seq < ?5)
                 ORDER BY seq DESC LIMIT ?6"
            ))?;
            let rows = stmt.query_map(
                params![f.since_ms, f.until_ms, f.actor, f.action, before, f.limit],
                read,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// In seq order, a chunk per transaction, so a long chain never holds the store.
    async fn verify_audit(&self) -> Result<Verification, StoreError> {
        verify_chain(|after| self.audit_chunk(after, VERIFY_CHUNK)).await
    }
}

/// An entry's detail as the JSON stored.
pub(super) fn detail_json(entry: &AuditEntry) -> Result<String, StoreError> {
    serde_json::to_string(&entry.detail)
        .map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))
}

/// The entry that follows `last` (its seq and hash; none for the first), hashed.
pub(super) fn next_record(
    entry: AuditEntry,
    detail: String,
    now_ms: i64,
    last: Option<(i64, String)>,
) -> AuditRecord {
    let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.into()));
    let mut rec = AuditRecord {
        seq: u64::try_from(last_seq).unwrap_or(0) + 1,
        time_ms: now_ms,
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        detail,
        outcome: entry.outcome,
        prev_hash,
        hash: String::new(),
    };
    rec.hash = rec.compute_hash();
    rec
}

/// Checks the chain read in chunks by `chunk(after)` (the entries after seq `after`, in
/// order): the verification any backend's `verify_audit` returns.
pub(super) async fn verify_chain<F, Fut>(mut chunk: F) -> Result<Verification, StoreError>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<Vec<Read>, StoreError>>,
{
    let mut check = ChainCheck::default();
    let mut after = i64::MIN;
    loop {
        let chunk = chunk(after).await?;
        let Some(last) = chunk.last() else {
            return Ok(check.into_verification(None));
        };
        after = match last {
            Ok(r) => r.seq as i64,
            Err((seq, _)) => *seq,
        };
        for row in chunk {
            let bad = match row {
                Ok(r) => check.next(&r).err().map(|why| (r.seq, why)),
                Err((seq, why)) => {
                    check.unreadable();
                    Some((u64::try_from(seq).unwrap_or(0), why))
                }
            };
            if let Some(bad) = bad {
                return Ok(check.into_verification(Some(bad)));
            }
        }
    }
}

impl Store {
    async fn audit_chunk(&self, after: i64, limit: usize) -> Result<Vec<Read>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let mut rows = stmt.query(params![after, limit as i64])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(read(row).map_err(|e| {
                    let seq: i64 = row.get(0).unwrap_or(0);
                    (
                        seq,
                        format!("the entry cannot be read ({e}): it was edited"),
                    )
                }));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A store with entries 1..=n.
    async fn chain(n: u64) -> Store {
        let s = Store::memory().unwrap();
        for i in 1..=n {
            let e = AuditEntry::new("admin", "command.ping", format!("agent:a{i}"))
                .detail(json!({ "command_id": format!("cmd-{i}") }));
            s.append_audit(e, 1000 + i as i64).await.unwrap();
        }
        s
    }

    /// Runs SQL around the triggers, as someone editing the file would.
    async fn tamper(s: &Store, sql: &'static str) {
        s.with(move |c| {
            c.execute_batch(&format!(
                "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}"
            ))?;
            Ok(())
        })
        .await
        .unwrap();
    }

    fn bad(v: &Verification) -> (u64, &str) {
        let (seq, why) = v.first_bad.as_ref().expect("a bad entry");
        (*seq, why.as_str())
    }

    #[tokio::test]
    async fn entries_chain_and_verify() {
        let s = chain(5).await;
        let all = s.audit(0, 100, None).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        for w in all.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
        }
        assert_eq!(all[2].target, "agent:a3");
        assert_eq!(all[2].detail, r#"{"command_id":"cmd-3"}"#);
        assert_eq!(all[2].outcome, "ok");
        let v = s.verify_audit().await.unwrap();
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.entries_checked, 5);
        assert_eq!(
            (v.last_seq, v.last_hash.as_str()),
            (5, all[4].hash.as_str())
        );

        let empty = Store::memory().unwrap().verify_audit().await.unwrap();
        assert!(empty.ok());
        assert_eq!((empty.entries_checked, empty.last_seq), (0, 0));
    }

    #[tokio::test]
    async fn listing_takes_the_newest_since_a_time_oldest_first() {
        let s = chain(6).await;
        let seqs = |v: Vec<AuditRecord>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(s.audit(1003, 100, None).await.unwrap()), [3, 4, 5, 6]);
        assert_eq!(seqs(s.audit(0, 2, None).await.unwrap()), [5, 6]);
    }

    #[tokio::test]
    async fn a_page_is_filtered_by_actor_action_time_and_seq_newest_first() {
        let s = chain(6).await;
        let other = AuditEntry::new("bob", "rule.disable", "rule:r1");
        s.append_audit(other, 1007).await.unwrap();
        let seqs = |v: Vec<AuditRecord>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        let page = |f: AuditFilter| async { seqs(s.audit_page(f).await.unwrap()) };
        let all = AuditFilter {
            limit: 100,
            ..Default::default()
        };
        assert_eq!(page(all.clone()).await, [7, 6, 5, 4, 3, 2, 1]);
        let bob = AuditFilter {
            actor: Some("bob".into()),
            ..all.clone()
        };
        assert_eq!(page(bob).await, [7]);
        let rules = AuditFilter {
            action: Some("rule.".into()),
            ..all.clone()
        };
        assert_eq!(page(rules).await, [7]);
        let window = AuditFilter {
            since_ms: 1002,
            until_ms: Some(1005),
            ..all.clone()
        };
        assert_eq!(page(window).await, [4, 3, 2]);
        let older = AuditFilter {
            before_seq: Some(4),
            limit: 2,
            ..all
        };
        assert_eq!(page(older).await, [3, 2]);
    }

    #[test]
    fn the_hash_covers_every_field_and_length_prefixes_them() {
        let base = AuditRecord {
            seq: 7,
            time_ms: 1,
            actor: "admin".into(),
            action: "agent.revoke".into(),
            target: "agent:x".into(),
            detail: "{}".into(),
            outcome: "ok".into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        let h = base.compute_hash();
        assert_eq!(h.len(), 64);
        let variants: [fn(&mut AuditRecord); 8] = [
            |r| r.seq = 8,
            |r| r.time_ms = 2,
            |r| r.actor = "root".into(),
            |r| r.action = "agent.revokE".into(),
            |r| r.target = "agent:y".into(),
            |r| r.detail = "{ }".into(),
            |r| r.outcome = "refused".into(),
            |r| r.prev_hash = "1".repeat(64),
        ];
        for change in variants {
            let mut r = base.clone();
            change(&mut r);
            assert_ne!(r.compute_hash(), h, "{r:?}");
        }
        // Moving a byte from one field to the next changes the hash.
        let mut shifted = base.clone();
        shifted.actor = "admi".into();
        shifted.action = "nagent.revoke".into();
        assert_ne!(shifted.compute_hash(), h);
    }

    #[tokio::test]
    async fn triggers_refuse_update_and_delete() {
        let s = chain(2).await;
        for sql in [
            "UPDATE audit SET detail = '{}' WHERE seq = 1",
            "DELETE FROM audit WHERE seq = 2",
        ] {
            let err = s
                .with(move |c| Ok(c.execute(sql, [])?))
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("append-only"), "{err}");
        }
        assert!(s.verify_audit().await.unwrap().ok());
        assert_eq!(s.audit(0, 10, None).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_edited_detail_is_caught_at_its_entry() {
        let s = chain(5).await;
        tamper(
            &s,
            r#"UPDATE audit SET detail = '{"command_id":"cmd-x"}' WHERE seq = 3"#,
        )
        .await;
        let v = s.verify_audit().await.unwrap();
        assert!(!v.ok());
        assert_eq!(
            bad(&v),
            (
                3,
                "its hash does not match its content (the entry was edited)"
            )
        );
        assert_eq!(v.entries_checked, 3);
    }

    #[tokio::test]
    async fn an_edited_and_rehashed_entry_is_caught_at_the_next() {
        let s = chain(4).await;
        let mut rec = s.audit(0, 10, None).await.unwrap().remove(1);
        rec.outcome = "refused: nothing happened".into();
        rec.hash = rec.compute_hash();
        s.with(move |c| {
            c.execute_batch("DROP TRIGGER audit_no_update")?;
            c.execute(
                "UPDATE audit SET outcome = ?1, hash = ?2 WHERE seq = 2",
                params![rec.outcome, rec.hash],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let v = s.verify_audit().await.unwrap();
        let (seq, why) = bad(&v);
        assert_eq!(seq, 3);
        assert!(why.contains("does not match the hash of entry 2"), "{why}");
    }

    #[tokio::test]
    async fn a_deleted_entry_is_caught() {
        let s = chain(5).await;
        tamper(&s, "DELETE FROM audit WHERE seq = 2").await;
        let v = s.verify_audit().await.unwrap();
        assert_eq!(bad(&v), (3, "entry 2 before it is missing (deleted)"));

        let s = chain(5).await;
        tamper(&s, "DELETE FROM audit WHERE seq IN (1, 2)").await;
        let v = s.verify_audit().await.unwrap();
        let (seq, why) = bad(&v);
        assert_eq!(
            (seq, why),
            (3, "entries 1 to 2 before it are missing (deleted)")
        );
    }

    #[tokio::test]
    async fn an_inserted_entry_is_caught() {
        let s = chain(3).await;
        // Renumber 3 to 4 and put a forged entry 3 (correctly hashed over a made-up
        // prev_hash) in its place.
        tamper(&s, "UPDATE audit SET seq = 4 WHERE seq = 3").await;
        let mut forged = s.audit(0, 10, None).await.unwrap().remove(1);
        forged.seq = 3;
        forged.prev_hash = "f".repeat(64);
        forged.hash = forged.compute_hash();
        s.with(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    3,
                    forged.time_ms,
                    forged.actor,
                    forged.action,
                    forged.target,
                    forged.detail,
                    forged.outcome,
                    forged.prev_hash,
                    forged.hash
                ],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let v = s.verify_audit().await.unwrap();
        let (seq, why) = bad(&v);
        assert_eq!(seq, 3);
        assert!(
            why.contains("prev_hash does not match the hash of entry 2"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn an_unreadable_entry_is_caught() {
        let s = chain(3).await;
        tamper(&s, "UPDATE audit SET actor = x'00ff' WHERE seq = 2").await;
        let v = s.verify_audit().await.unwrap();
        let (seq, why) = bad(&v);
        assert_eq!(seq, 2);
        assert!(why.contains("cannot be read"), "{why}");
    }

    #[tokio::test]
    async fn appends_continue_the_chain_after_a_reopen_and_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            for i in 0..(VERIFY_CHUNK as i64 + 5) {
                s.append_audit(AuditEntry::new("playbook:test", "command.kill", ""), i)
                    .await
                    .unwrap();
            }
        }
        let s = Store::open(dir.path()).unwrap();
        let rec = s
            .append_audit(AuditEntry::new("admin", "agent.revoke", "agent:a"), 5000)
            .await
            .unwrap();
        assert_eq!(rec.seq, VERIFY_CHUNK as u64 + 6);
        let v = s.verify_audit().await.unwrap();
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.entries_checked, rec.seq);
        assert_eq!(v.last_hash, rec.hash);
    }
}
