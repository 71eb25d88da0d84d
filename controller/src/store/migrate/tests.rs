//! migrate-store on the private test cluster (`store/pg/testing.rs`; skipped visibly without
//! PostgreSQL, failing under CI): a store with rows of every table comes over whole, as both
//! backends' traits show it, with its audit chain verified and the copy usable as a store; a
//! target with rows, a bad URL, a missing store and a broken source are refused clearly; and
//! a migration that fails part-way leaves nothing, so running it again succeeds.

use super::fixture::{contents, fill};
use super::tables::TABLES;
use super::{MigrateError, migrate_store};
use crate::policy::audit::AuditEntry;
use crate::store::conformance::{enrolled, event};
use crate::store::pg::{PgOptions, PgStore, testing};
use crate::store::{Agents, AuditLog, Events, StoreError};
use crate::store::{Store, conformance};
use std::path::Path;

/// A SQLite store on disk, as migrate-store finds it in a data directory.
fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path()).expect("store");
    (dir, store)
}

/// Runs raw SQL on the SQLite store (to damage it as only an edit of the file could).
async fn sql(s: &Store, batch: &'static str) {
    s.with(move |c| Ok(c.execute_batch(batch)?))
        .await
        .expect("sql");
}

async fn migrated(dir: &Path, o: &PgOptions) -> super::Summary {
    migrate_store(dir, o).await.expect("migrate")
}

#[tokio::test]
async fn a_populated_store_comes_over_whole_and_verifies() {
    let Some(o) = testing::database("migrate_whole").await else {
        return;
    };
    let (dir, s) = sqlite();
    let audited = fill(&s).await;
    let summary = migrated(dir.path(), &o).await;

    let pg = PgStore::open(&o).await.expect("open the copy");
    assert_eq!(contents(&pg).await, contents(&s).await);
    for (table, _) in TABLES {
        let rows = summary.tables.iter().find(|(t, _)| t == table);
        assert!(rows.is_some_and(|r| r.1 > 0), "{table}: {rows:?}");
    }
    let keys = summary.tables.iter().find(|(t, _)| t == "event_keys");
    assert_eq!(keys.map(|k| k.1), Some(4));
    assert!(summary.audit.ok(), "{:?}", summary.audit);
    assert_eq!(summary.audit.last_seq, audited);
    let printed = summary.to_string();
    assert!(
        printed.contains("audit chain verified: 3 entries"),
        "{printed}"
    );

    // The copy goes on as a store: the chain continues, a resent event is a repeat.
    let next = AuditEntry::new("admin", "store.migrate", "");
    pg.append_audit(next, 2_000).await.expect("append");
    let v = pg.verify_audit().await.expect("verify");
    assert!(v.ok() && v.last_seq == audited + 1, "{v:?}");
    let resent = pg.insert_events(vec![event("h1", 3, -86_400_001, "file", "x")]);
    assert!(resent.await.expect("resend").is_empty(), "stored once");
}

#[tokio::test]
async fn a_target_that_holds_rows_is_refused_and_left_alone() {
    let Some(o) = testing::database("migrate_not_empty").await else {
        return;
    };
    let (dir, s) = sqlite();
    enrolled(&s, "h1").await;
    let pg = PgStore::open(&o).await.expect("open");
    enrolled(&pg, "other").await;
    let refused = migrate_store(dir.path(), &o).await.expect_err("refused");
    match &refused {
        MigrateError::NotEmpty { tables } => assert_eq!(tables, &["agents", "tokens"]),
        other => panic!("{other}"),
    }
    assert!(
        refused.to_string().contains("nothing was written"),
        "{refused}"
    );
    let ids: Vec<String> = pg
        .agents()
        .await
        .expect("agents")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["other"]);
}

#[tokio::test]
async fn a_failed_migration_leaves_nothing_and_runs_again() {
    let Some(o) = testing::database("migrate_retry").await else {
        return;
    };
    let (dir, s) = sqlite();
    fill(&s).await;
    // A value SQLite's loose typing let in, in a table copied late: the copy fails there.
    sql(&s, "UPDATE playbooks SET updated_at = 'soon'").await;
    let failed = migrate_store(dir.path(), &o).await.expect_err("bad value");
    assert!(
        matches!(&failed, MigrateError::BadValue { table, column, .. }
            if table == "playbooks" && column == "updated_at"),
        "{failed}"
    );
    let pg = PgStore::open(&o).await.expect("open");
    assert!(pg.agents().await.expect("agents").is_empty(), "rolled back");
    assert_eq!(pg.verify_audit().await.expect("verify").entries_checked, 0);

    sql(&s, "UPDATE playbooks SET updated_at = 7").await;
    migrated(dir.path(), &o).await;
    assert_eq!(contents(&pg).await, contents(&s).await);
}

/// A row PostgreSQL refuses (here a command for an agent that does not exist, which SQLite
/// let in with its foreign keys off) stops the copy of its table: nothing is written.
#[tokio::test]
async fn a_row_postgresql_refuses_stops_the_copy_and_leaves_nothing() {
    let Some(o) = testing::database("migrate_refused_row").await else {
        return;
    };
    let (dir, s) = sqlite();
    fill(&s).await;
    sql(
        &s,
        "PRAGMA foreign_keys = OFF;
         INSERT INTO commands (id, agent_id, kind, envelope, created_at, expires_at, status,
                               created_by)
         VALUES ('cmd-ghost', 'ghost', 'kill', x'00', 1, 2, 'pending', 'admin');
         PRAGMA foreign_keys = ON;",
    )
    .await;
    let failed = migrate_store(dir.path(), &o)
        .await
        .expect_err("refused row");
    assert!(
        matches!(&failed, MigrateError::Copy { table, .. } if table == "commands"),
        "{failed}"
    );
    let pg = PgStore::open(&o).await.expect("open");
    assert!(pg.agents().await.expect("agents").is_empty(), "rolled back");
}

#[tokio::test]
async fn a_broken_audit_chain_is_copied_as_it_was_and_reported() {
    let Some(o) = testing::database("migrate_broken_chain").await else {
        return;
    };
    let (dir, s) = sqlite();
    fill(&s).await;
    sql(
        &s,
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 2",
    )
    .await;
    let reported = migrate_store(dir.path(), &o).await.expect_err("broken");
    assert!(
        matches!(reported, MigrateError::AuditBrokenInSource { seq: 2, .. }),
        "{reported}"
    );
    let pg = PgStore::open(&o).await.expect("open");
    assert_eq!(contents(&pg).await, contents(&s).await, "copied as it was");
}

#[tokio::test]
async fn a_bad_url_or_a_missing_store_is_a_clear_error() {
    let (dir, s) = sqlite();
    conformance::enrolled(&s, "h1").await;
    let bad = migrate_store(dir.path(), &PgOptions::new("postgres://[")).await;
    assert!(
        matches!(bad, Err(MigrateError::OpenTarget(StoreError::PgUrl(_)))),
        "{bad:?}"
    );
    let mut nobody = PgOptions::new(format!("host={} dbname=x", dir.path().display()));
    nobody.wait = std::time::Duration::from_secs(1);
    let down = migrate_store(dir.path(), &nobody)
        .await
        .expect_err("no server");
    assert!(
        matches!(
            down,
            MigrateError::OpenTarget(StoreError::Unreachable { .. })
        ),
        "{down}"
    );
    let empty = tempfile::tempdir().expect("dir");
    let missing = migrate_store(empty.path(), &PgOptions::new("host=/nowhere")).await;
    let missing = missing.expect_err("no store");
    assert!(
        missing.to_string().contains("cordon.db does not exist"),
        "{missing}"
    );
    assert!(!empty.path().join("cordon.db").exists(), "not created");
}

/// Migrates the store in `dir` into a fresh database and compares what both stores show;
/// None when the test skips.
async fn comes_over(test: &str, dir: &Path, s: &Store) -> Option<super::Summary> {
    let o = testing::database(test).await?;
    let summary = migrated(dir, &o).await;
    let pg = PgStore::open(&o).await.expect("open the copy");
    assert_eq!(contents(&pg).await, contents(s).await, "{test}");
    Some(summary)
}

/// The end state of each conformance contract (on a store of its own) comes over as it is:
/// whatever edge the contracts reach (a resent seq with other content, revoked people,
/// decided approvals, pruned events, ...) reads back the same through both backends.
#[tokio::test]
async fn every_contracts_end_state_comes_over() {
    macro_rules! after {
        ($($contract:ident),+) => {$(
            let (dir, s) = sqlite();
            conformance::$contract(&s).await;
            let test = concat!("migrate_after_", stringify!($contract));
            if comes_over(test, dir.path(), &s).await.is_none() {
                return;
            }
        )+};
    }
    after!(
        agents_enrolment,
        agents_presence,
        agents_revocation,
        tokens,
        events_stored_once,
        event_queries,
        event_pages,
        process_queries,
        ingest_records_findings_once,
        retention,
        alert_grouping,
        alert_queries,
        incident_status,
        incident_notes,
        incident_listing,
        rules,
        iocs,
        block_lists,
        playbooks,
        runs,
        steps,
        approval_requests,
        approval_decisions,
        edge_versions,
        invites,
        changes,
        sign_in_secrets
    );
    let (dir, s) = sqlite();
    enrolled(&s, "a1").await;
    conformance::command_queue(&s, "a1").await;
    comes_over("migrate_after_command_queue", dir.path(), &s).await;
    let (dir, s) = sqlite();
    conformance::audit_log(std::sync::Arc::new(s.clone())).await;
    let summary = comes_over("migrate_after_audit_log", dir.path(), &s).await;
    assert!(summary.is_none_or(|s| s.audit.ok() && s.audit.entries_checked > 0));
}
