//! The store's contract, checked the same way for every backend: each function takes a fresh,
//! empty store of any type that implements an aggregate's trait and asserts what that trait
//! promises, as a user of it would see it. SQLite runs them below; a second backend runs the
//! same functions against itself. Every aggregate is covered: the audit log, tokens, agents
//! and the command queue (`fleet`); events, their queries and retention (`events`); alerts
//! and incidents (`alerts`); rules and indicators (`rules`); playbooks, runs and approvals
//! (`playbooks`); people and
//! service accounts and their invites (`principals`).

mod alerts;
mod events;
mod fleet;
mod playbooks;
mod principals;
mod rules;

pub use alerts::{
    alert_grouping, alert_queries, incident_listing, incident_notes, incident_status,
};
pub use events::{
    concurrent_batches, event, event_pages, event_queries, events_stored_once, exec,
    ingest_records_findings_once, process_queries, retention,
};
pub use fleet::{
    agents_enrolment, agents_presence, agents_revocation, audit_log, command_queue, tokens,
};
pub use playbooks::{approval_decisions, approval_requests, playbooks, runs, steps};
pub use principals::{changes, invites, sign_in_secrets};
pub use rules::{iocs, rules};

/// Enrols agent `id` (with a token of its own), for the contracts that need one.
pub async fn enrolled<S: crate::store::Agents + crate::store::Tokens>(s: &S, id: &str) {
    let token = format!("token-{id}");
    s.create_token(
        token.clone(),
        0,
        i64::MAX,
        1,
        Default::default(),
        "t".into(),
    )
    .await
    .expect("token");
    let agent = crate::store::Enrolment {
        token_hash: token,
        agent_id: id.into(),
        host: Default::default(),
        labels: Default::default(),
        cert_serial: "01".into(),
        cert_expires_at_ms: 10,
        now_ms: 1,
    };
    s.enroll(agent).await.expect("store").expect("enrolled");
}

#[cfg(test)]
mod sqlite {
    use crate::store::Store;
    use std::sync::Arc;

    fn memory() -> Store {
        Store::memory().expect("store")
    }

    #[tokio::test]
    async fn sqlite_keeps_the_audit_log_contract() {
        super::audit_log(Arc::new(memory())).await;
    }

    #[tokio::test]
    async fn sqlite_keeps_the_command_queue_contract() {
        let s = memory();
        super::enrolled(&s, "a1").await;
        super::command_queue(&s, "a1").await;
    }

    /// One test per line: each contract function run on a fresh in-memory store.
    macro_rules! sqlite_keeps {
        ($($test:ident: $($contract:ident),+;)+) => {$(
            #[tokio::test]
            async fn $test() {
                $(super::$contract(&memory()).await;)+
            }
        )+};
    }

    sqlite_keeps! {
        sqlite_keeps_the_agents_contract: agents_enrolment, agents_presence, agents_revocation;
        sqlite_keeps_the_token_contract: tokens;
        sqlite_keeps_the_event_query_contract: event_queries, event_pages;
        sqlite_finds_process_events_by_pid: process_queries;
        sqlite_records_findings_once: ingest_records_findings_once;
        sqlite_keeps_the_retention_contract: retention;
        sqlite_keeps_the_alerts_contract: alert_grouping, alert_queries;
        sqlite_keeps_the_incidents_contract: incident_status, incident_notes, incident_listing;
        sqlite_keeps_the_rules_contract: rules, iocs;
        sqlite_keeps_the_playbooks_contract: playbooks, runs, steps;
        sqlite_keeps_the_approvals_contract: approval_requests, approval_decisions;
        sqlite_keeps_the_principals_contract: invites, changes, sign_in_secrets;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_stores_concurrent_batches_once() {
        super::concurrent_batches(Arc::new(memory())).await;
    }

    #[tokio::test]
    async fn sqlite_stores_each_event_once() {
        super::events_stored_once(&memory()).await;
        // On disk the ingest path also wakes the checkpointer.
        let dir = tempfile::tempdir().expect("dir");
        super::events_stored_once(&Store::open(dir.path()).expect("store")).await;
    }

    /// `Store` is a whole backend.
    #[test]
    fn sqlite_is_a_backend() {
        fn backend<B: crate::store::Backend>() {}
        backend::<Store>();
    }
}

/// The same contracts on PostgreSQL: each test on a fresh database of this binary's private
/// cluster (`store/pg/testing.rs`); skipped visibly without PostgreSQL, except under CI.
#[cfg(test)]
mod pg {
    use crate::store::pg::{PgStore, testing};
    use std::sync::Arc;

    /// A fresh store, or None when the test skips.
    async fn fresh(test: &str) -> Option<PgStore> {
        let options = testing::database(test).await?;
        Some(PgStore::open(&options).await.expect("opening the store"))
    }

    #[tokio::test]
    async fn pg_keeps_the_audit_log_contract() {
        if let Some(s) = fresh("pg_keeps_the_audit_log_contract").await {
            super::audit_log(Arc::new(s)).await;
        }
    }

    #[tokio::test]
    async fn pg_keeps_the_command_queue_contract() {
        if let Some(s) = fresh("pg_keeps_the_command_queue_contract").await {
            super::enrolled(&s, "a1").await;
            super::command_queue(&s, "a1").await;
        }
    }

    /// One test per line: each contract function run on a fresh database.
    macro_rules! pg_keeps {
        ($($test:ident: $($contract:ident),+;)+) => {$(
            #[tokio::test]
            async fn $test() {
                $(if let Some(s) = fresh(stringify!($test)).await {
                    super::$contract(&s).await;
                })+
            }
        )+};
    }

    pg_keeps! {
        pg_keeps_the_agents_contract: agents_enrolment, agents_presence, agents_revocation;
        pg_keeps_the_token_contract: tokens;
        pg_keeps_the_event_query_contract: event_queries, event_pages;
        pg_finds_process_events_by_pid: process_queries;
        pg_records_findings_once: ingest_records_findings_once;
        pg_keeps_the_retention_contract: retention;
        pg_stores_each_event_once: events_stored_once;
        pg_keeps_the_alerts_contract: alert_grouping, alert_queries;
        pg_keeps_the_incidents_contract: incident_status, incident_notes, incident_listing;
        pg_keeps_the_rules_contract: rules, iocs;
        pg_keeps_the_playbooks_contract: playbooks, runs, steps;
        pg_keeps_the_approvals_contract: approval_requests, approval_decisions;
        pg_keeps_the_principals_contract: invites, changes, sign_in_secrets;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_stores_concurrent_batches_once() {
        if let Some(s) = fresh("pg_stores_concurrent_batches_once").await {
            super::concurrent_batches(Arc::new(s)).await;
        }
    }

    /// `PgStore` is a whole backend.
    #[test]
    fn pg_is_a_backend() {
        fn backend<B: crate::store::Backend>() {}
        backend::<PgStore>();
    }
}
