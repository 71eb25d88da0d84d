//! The store's contract, checked the same way for every backend: each function takes a fresh,
//! empty store of any type that implements an aggregate's trait and asserts what that trait
//! promises. SQLite runs them below; a second backend runs the same functions against itself.
//! So far: the audit log, tokens and the command queue (the other aggregates still call
//! `Store` directly).

use super::{AuditLog, CommandQueue, CommandRow, CommandStatus, Completion, Tokens};
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

fn command(id: &str, agent: &str, created_at_ms: i64, expires_at_ms: i64) -> CommandRow {
    CommandRow {
        id: id.into(),
        agent_id: agent.into(),
        kind: "ping".into(),
        envelope: vec![1],
        created_at_ms,
        expires_at_ms,
        status: CommandStatus::Pending,
        delivered_at_ms: None,
        completed_at_ms: None,
        error: String::new(),
        result: None,
        created_by: "admin".into(),
    }
}

/// `s` holds an enrolled agent `agent` (each backend enrols it its own way). Commands are
/// open until they end; a result is recorded once and only from the agent the command is
/// for; what expires is expired once and never open again.
pub async fn command_queue<S: CommandQueue>(s: &S, agent: &str) {
    let status = |id: &'static str| async move {
        s.command(id.into())
            .await
            .expect("get")
            .expect("stored")
            .status
    };
    s.insert_command(command("c1", agent, 1, 100))
        .await
        .expect("insert");
    s.insert_command(command("old", agent, 2, 10))
        .await
        .expect("insert");
    s.insert_command(command("new", agent, 3, 1_000))
        .await
        .expect("insert");
    let open = |now| async move {
        let rows = s.open_commands(agent.into(), now).await.expect("open");
        rows.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(open(5).await, ["c1", "old", "new"], "oldest first");

    s.mark_delivered("c1".into(), 4).await.expect("deliver");
    assert_eq!(status("c1").await, CommandStatus::Delivered);
    let done = |who: &str| {
        s.complete_command(
            "c1".into(),
            who.into(),
            CommandStatus::Succeeded,
            String::new(),
            vec![7],
            5,
        )
    };
    assert_eq!(
        done("someone-else").await.expect("complete"),
        Completion::WrongAgent
    );
    assert_eq!(status("c1").await, CommandStatus::Delivered);
    assert_eq!(done(agent).await.expect("complete"), Completion::Recorded);
    assert_eq!(
        done(agent).await.expect("complete"),
        Completion::AlreadyFinal
    );
    let c1 = s.command("c1".into()).await.expect("get").expect("stored");
    assert_eq!(
        (c1.status, c1.result, c1.completed_at_ms),
        (CommandStatus::Succeeded, Some(vec![7]), Some(5))
    );
    let unknown = s
        .complete_command(
            "nope".into(),
            agent.into(),
            CommandStatus::Failed,
            String::new(),
            vec![],
            5,
        )
        .await
        .expect("complete");
    assert_eq!(unknown, Completion::UnknownCommand);

    assert_eq!(s.expire_commands(50).await.expect("expire"), ["old"]);
    assert!(
        s.expire_commands(50).await.expect("expire").is_empty(),
        "once"
    );
    assert_eq!(status("old").await, CommandStatus::Expired);
    assert_eq!(open(50).await, ["new"]);

    let newest = s.commands(Some(agent.into()), 2).await.expect("list");
    let newest: Vec<&str> = newest.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(newest, ["new", "old"], "newest first");
    assert!(
        s.commands(Some("other".into()), 10)
            .await
            .expect("list")
            .is_empty()
    );
}

#[cfg(test)]
mod sqlite {
    use crate::store::{Enrolment, Store, Tokens};
    use std::sync::Arc;

    #[tokio::test]
    async fn sqlite_keeps_the_audit_log_contract() {
        super::audit_log(Arc::new(Store::memory().expect("store"))).await;
    }

    #[tokio::test]
    async fn sqlite_keeps_the_command_queue_contract() {
        let s = Store::memory().expect("store");
        s.create_token("h".into(), 0, i64::MAX, 1, Default::default(), "t".into())
            .await
            .expect("token");
        let agent = Enrolment {
            token_hash: "h".into(),
            agent_id: "a1".into(),
            host: Default::default(),
            labels: Default::default(),
            cert_serial: "01".into(),
            cert_expires_at_ms: 10,
            now_ms: 1,
        };
        s.enroll(agent).await.expect("store").expect("enrolled");
        super::command_queue(&s, "a1").await;
    }

    #[tokio::test]
    async fn sqlite_keeps_the_token_contract() {
        super::tokens(&Store::memory().expect("store")).await;
    }
}
