//! The store's contract, checked the same way for every backend: each function takes a fresh,
//! empty store of any type that implements an aggregate's trait and asserts what that trait
//! promises. SQLite runs them below; a second backend runs the same functions against itself.
//! So far: the audit log and tokens (the other aggregates still call `Store` directly).

use super::{AuditLog, Tokens};
use crate::policy::audit::{AuditEntry, GENESIS_HASH};
use crate::policy::tokens::EnrollRefusal;
use std::collections::HashMap;

/// Appends chain from the genesis value, one seq after another, concurrently too; listing
/// returns the newest entries oldest first; the chain verifies.
pub async fn audit_log<S: AuditLog + 'static>(s: std::sync::Arc<S>) {
    let empty = s.verify_audit().await.expect("verify");
    assert!(empty.ok());
    assert_eq!(
        (empty.last_seq, empty.last_hash.as_str()),
        (0, GENESIS_HASH)
    );

    let first = s
        .append_audit(AuditEntry::new("alice", "token.create", "token:ab"), 1_000)
        .await
        .expect("append");
    assert_eq!((first.seq, first.prev_hash.as_str()), (1, GENESIS_HASH));
    assert_eq!(first.hash, first.compute_hash());

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let entry = AuditEntry::new("bob", "agent.revoke", format!("agent:{i}"));
                s.append_audit(entry, 2_000 + i).await.expect("append")
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task").seq);
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (2..=9).collect::<Vec<_>>(),
        "no seq repeated or skipped"
    );

    let all = s.audit(0, 100).await.expect("list");
    assert_eq!(all.len(), 9);
    assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    let newest = s.audit(0, 3).await.expect("list");
    let newest: Vec<u64> = newest.iter().map(|r| r.seq).collect();
    assert_eq!(newest, [7, 8, 9]);
    assert!(s.audit(1_000_000, 10).await.expect("list").is_empty());

    let v = s.verify_audit().await.expect("verify");
    assert!(v.ok(), "{:?}", v.first_bad);
    assert_eq!((v.entries_checked, v.last_seq), (9, 9));
    assert_eq!(v.last_hash, all[8].hash);
}

/// A token is usable until its expiry, unknown hashes are refused, and checking takes no
/// use.
pub async fn tokens<S: Tokens>(s: &S) {
    let labels = HashMap::from([("env".to_string(), "prod".to_string())]);
    s.create_token("h1".into(), 1_000, 5_000, 1, labels, "alice".into())
        .await
        .expect("create");
    for _ in 0..3 {
        assert_eq!(
            s.check_token("h1".into(), 4_999).await.expect("check"),
            Ok(())
        );
    }
    let expired = s.check_token("h1".into(), 5_000).await.expect("check");
    assert_eq!(expired, Err(EnrollRefusal::ExpiredToken));
    let unknown = s.check_token("nope".into(), 1_000).await.expect("check");
    assert_eq!(unknown, Err(EnrollRefusal::UnknownToken));
}

#[cfg(test)]
mod sqlite {
    use crate::store::Store;
    use std::sync::Arc;

    #[tokio::test]
    async fn sqlite_keeps_the_audit_log_contract() {
        super::audit_log(Arc::new(Store::memory().expect("store"))).await;
    }

    #[tokio::test]
    async fn sqlite_keeps_the_token_contract() {
        super::tokens(&Store::memory().expect("store")).await;
    }
}
