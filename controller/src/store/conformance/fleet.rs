//! The contract of the fleet's aggregates: the audit log, enrolment tokens, agents and the
//! command queue.

use crate::policy::audit::{AuditEntry, GENESIS_HASH};
use crate::policy::tokens::EnrollRefusal;
use crate::store::{
    Agent, Agents, AuditLog, CommandQueue, CommandRow, CommandStatus, Completion, Enrolment, Tokens,
};
use cordon_proto::HostFacts;
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

    let all = s.audit(0, 100, None).await.expect("list");
    assert_eq!(all.len(), 9);
    assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    let newest = s.audit(0, 3, None).await.expect("list");
    let newest: Vec<u64> = newest.iter().map(|r| r.seq).collect();
    assert_eq!(newest, [7, 8, 9]);
    assert!(s.audit(1_000_000, 10, None).await.expect("list").is_empty());
    let alice = s.audit(0, 100, Some("alice".into())).await.expect("list");
    assert_eq!(alice.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
    let bobs = s.audit(0, 3, Some("bob".into())).await.expect("list");
    assert!(bobs.len() == 3 && bobs.iter().all(|r| r.actor == "bob"));

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

pub(super) fn command(id: &str, agent: &str, created_at_ms: i64, expires_at_ms: i64) -> CommandRow {
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

/// `s` holds enrolled agents `agents`. Commands stored together carry their agents' desired
/// isolation with them, all or nothing.
pub async fn commands_with_isolation<S: CommandQueue + Agents>(s: &S, agents: [&str; 2]) {
    let desired = |id: &'static str| async move {
        s.agent(id.into())
            .await
            .expect("get")
            .expect("enrolled")
            .isolation_desired
    };
    let rows = |ids: [&str; 2]| {
        let pairs = ids.into_iter().zip(agents);
        pairs.map(|(id, a)| command(id, a, 1, 100)).collect()
    };
    s.insert_commands(rows(["i1", "i2"]), Some(true))
        .await
        .expect("insert");
    assert_eq!((desired("a1").await, desired("a2").await), (true, true));
    for id in ["i1", "i2"] {
        let row = s.command(id.into()).await.expect("get").expect("stored");
        assert_eq!(row.status, CommandStatus::Pending);
    }
    // The second row repeats an id: nothing of the call is stored.
    let refused = s.insert_commands(rows(["r1", "i2"]), Some(false)).await;
    assert!(refused.is_err(), "a repeated id is refused");
    assert!(s.command("r1".into()).await.expect("get").is_none());
    assert_eq!((desired("a1").await, desired("a2").await), (true, true));
    s.insert_commands(rows(["r1", "r2"]), Some(false))
        .await
        .expect("insert");
    assert_eq!((desired("a1").await, desired("a2").await), (false, false));
    s.insert_commands(rows(["p1", "p2"]), None)
        .await
        .expect("insert");
    assert_eq!((desired("a1").await, desired("a2").await), (false, false));
}

fn enrolment(token: &str, agent: &str, labels: &[(&str, &str)]) -> Enrolment {
    Enrolment {
        token_hash: token.into(),
        agent_id: agent.into(),
        host: HostFacts {
            hostname: format!("host-{agent}"),
            ..Default::default()
        },
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cert_serial: "01".into(),
        cert_expires_at_ms: 10_000,
        now_ms: 1_000,
    }
}

/// Enrols aa11 and aa22 with the token "two" (two uses, team=red), each asking for
/// team=blue and env=prod.
async fn two_agents<S: Agents + Tokens>(s: &S) -> [Agent; 2] {
    let token = HashMap::from([("team".to_string(), "red".to_string())]);
    s.create_token("two".into(), 0, 100_000, 2, token, "alice".into())
        .await
        .expect("token");
    let mut out = Vec::new();
    for agent in ["aa11", "aa22"] {
        let asked = enrolment("two", agent, &[("team", "blue"), ("env", "prod")]);
        out.push(s.enroll(asked).await.expect("enrol").expect("a use left"));
    }
    out.try_into().expect("two agents")
}

/// Enrolment takes exactly one use of the token, its labels winning over the host's; a
/// refused one records nothing; agents are found by id or prefix.
pub async fn agents_enrolment<S: Agents + Tokens>(s: &S) {
    let [a, _] = two_agents(s).await;
    assert_eq!(a.labels.get("team").map(String::as_str), Some("red"));
    assert_eq!(a.labels.get("env").map(String::as_str), Some("prod"));
    let third = s
        .enroll(enrolment("two", "bb33", &[]))
        .await
        .expect("enrol");
    assert_eq!(third, Err(EnrollRefusal::UsedToken));
    assert!(s.agent("bb33".into()).await.expect("get").is_none());
    let unknown = s
        .enroll(enrolment("nope", "cc44", &[]))
        .await
        .expect("enrol");
    assert_eq!(unknown, Err(EnrollRefusal::UnknownToken));

    assert_eq!(s.agents().await.expect("list").len(), 2);
    let both = s.agents_by_prefix("aa".into()).await.expect("prefix");
    assert_eq!(both.len(), 2);
    let one = s.agents_by_prefix("aa2".into()).await.expect("prefix");
    let ids: Vec<&str> = one.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["aa22"]);
}

/// Presence and host facts follow the stream; the wanted isolation and the certificate
/// are recorded.
pub async fn agents_presence<S: Agents + Tokens>(s: &S) {
    two_agents(s).await;
    let get =
        |id: &'static str| async move { s.agent(id.into()).await.expect("get").expect("known") };
    let host = HostFacts {
        hostname: "renamed".into(),
        ..Default::default()
    };
    s.agent_connected("aa11".into(), host, 2_000)
        .await
        .expect("hello");
    let seen = get("aa11").await;
    assert!(seen.online);
    assert_eq!(
        (seen.host.hostname.as_str(), seen.last_seen_ms),
        ("renamed", 2_000)
    );
    s.agent_offline("aa11".into()).await.expect("offline");
    assert!(!get("aa11").await.online);
    s.agent_connected("aa22".into(), HostFacts::default(), 2_000)
        .await
        .expect("hello");
    s.all_agents_offline().await.expect("offline");
    assert!(s.agents().await.expect("list").iter().all(|a| !a.online));

    s.set_isolation_desired("aa22".into(), true)
        .await
        .expect("isolate");
    s.agent_renewed("aa22".into(), "02".into(), 20_000)
        .await
        .expect("renew");
    let labels: HashMap<String, String> = [("env".to_string(), "prod".to_string())].into();
    assert!(
        s.set_agent_labels("aa22".into(), labels.clone())
            .await
            .expect("labels")
    );
    assert!(
        !s.set_agent_labels("zz".into(), labels.clone())
            .await
            .expect("labels")
    );
    let b = get("aa22").await;
    assert_eq!(b.labels, labels);
    assert!(b.isolation_desired);
    assert_eq!(
        (b.cert_serial.as_str(), b.cert_expires_at_ms),
        ("02", 20_000)
    );
}

/// Revocation fails the agent's open commands, lists it as revoked, and refuses its
/// enrolment again without taking the token's use.
pub async fn agents_revocation<S: Agents + Tokens + CommandQueue>(s: &S) {
    two_agents(s).await;
    s.insert_command(command("open", "aa11", 1, 100_000))
        .await
        .expect("insert");
    let revoked = s.revoke_agent("aa11".into(), 3_000).await.expect("revoke");
    assert_eq!(revoked.expect("known").revoked_at_ms, Some(3_000));
    let failed = s
        .command("open".into())
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(failed.status, CommandStatus::Failed);
    assert_eq!(s.revoked_agent_ids().await.expect("revoked"), ["aa11"]);
    assert!(
        s.revoke_agent("zz".into(), 3_000)
            .await
            .expect("revoke")
            .is_none()
    );

    s.create_token(
        "again".into(),
        0,
        100_000,
        1,
        HashMap::new(),
        "alice".into(),
    )
    .await
    .expect("token");
    let again = s
        .enroll(enrolment("again", "aa11", &[]))
        .await
        .expect("enrol");
    assert_eq!(again, Err(EnrollRefusal::AgentRevoked("aa11".into())));
    let token_kept = s.check_token("again".into(), 4_000).await.expect("check");
    assert_eq!(token_kept, Ok(()), "a refused enrolment takes no use");
}
