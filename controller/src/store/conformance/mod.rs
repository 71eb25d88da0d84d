//! The store's contract, checked the same way for every backend: each function takes a fresh,
//! empty store of any type that implements an aggregate's trait and asserts what that trait
//! promises, as a user of it would see it. SQLite runs them below; a second backend runs the
//! same functions against itself. Every aggregate is covered: the audit log, tokens, agents
//! and the command queue (`fleet`); events, their queries and retention (`events`); alerts
//! and incidents (`alerts`); rules and indicators (`rules`); playbooks, runs and approvals
//! (`playbooks`); people and service accounts and their invites (`principals`); the rows
//! collections return (`collections`), hunts (`hunts`), and fetched files and their
//! chunks (`fetched`).

mod alerts;
mod collections;
mod events;
mod fetched;
mod fleet;
mod hunts;
mod playbooks;
mod principals;
mod rules;

pub use alerts::{
    alert_grouping, alert_queries, finding, incident_listing, incident_notes, incident_status,
};
pub use collections::collection_rows;
pub use events::{
    concurrent_batches, event, event_by_key, event_pages, event_queries, events_stored_once, exec,
    ingest_records_findings_once, process_queries, retention,
};
pub use fetched::fetched_files;
pub use fleet::{
    agents_enrolment, agents_presence, agents_revocation, audit_log, command_queue,
    commands_with_isolation, tokens,
};
pub use hunts::hunts;
pub use playbooks::{approval_decisions, approval_requests, edge_versions, playbooks, runs, steps};
pub use principals::{changes, invites, sign_in_secrets};
pub use rules::{block_lists, iocs, rules};

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

/// The tests of one backend, in the module that invokes it with `$fresh`: an async fn from
/// a test's name to a fresh, empty store (None: the test skips). Each test runs its line's
/// contract functions, each on a store of its own; together they call every one.
#[cfg(test)]
macro_rules! contract_tests {
    ($fresh:path) => {
        contract_tests! { @each $fresh;
            keeps_the_agents_contract: agents_enrolment, agents_presence, agents_revocation;
            keeps_the_token_contract: tokens;
            keeps_the_event_query_contract: event_queries, event_pages;
            finds_process_events_by_pid: process_queries;
            finds_one_event_by_its_key: event_by_key;
            records_findings_once: ingest_records_findings_once;
            keeps_the_retention_contract: retention;
            stores_each_event_once: events_stored_once;
            keeps_the_alerts_contract: alert_grouping, alert_queries;
            keeps_the_incidents_contract: incident_status, incident_notes, incident_listing;
            keeps_the_rules_contract: rules, iocs, block_lists;
            keeps_the_playbooks_contract: playbooks, runs, steps;
            versions_edge_policies: edge_versions;
            keeps_the_approvals_contract: approval_requests, approval_decisions;
            keeps_the_principals_contract: invites, changes, sign_in_secrets;
            stores_collection_rows_once: collection_rows;
            keeps_the_hunts_contract: hunts;
            stores_fetched_files_once: fetched_files;
        }

        #[tokio::test]
        async fn keeps_the_audit_log_contract() {
            if let Some(s) = $fresh("keeps_the_audit_log_contract").await {
                super::audit_log(std::sync::Arc::new(s)).await;
            }
        }

        #[tokio::test]
        async fn keeps_the_command_queue_contract() {
            if let Some(s) = $fresh("keeps_the_command_queue_contract").await {
                super::enrolled(&s, "a1").await;
                super::command_queue(&s, "a1").await;
            }
        }

        #[tokio::test]
        async fn stores_commands_with_the_desired_isolation() {
            if let Some(s) = $fresh("stores_commands_with_the_desired_isolation").await {
                super::enrolled(&s, "a1").await;
                super::enrolled(&s, "a2").await;
                super::commands_with_isolation(&s, ["a1", "a2"]).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn stores_concurrent_batches_once() {
            if let Some(s) = $fresh("stores_concurrent_batches_once").await {
                super::concurrent_batches(std::sync::Arc::new(s)).await;
            }
        }
    };
    (@each $fresh:path; $($test:ident: $($contract:ident),+;)+) => {$(
        #[tokio::test]
        async fn $test() {
            $(if let Some(s) = $fresh(stringify!($test)).await {
                super::$contract(&s).await;
            })+
        }
    )+};
}

/// The contracts on SQLite, each on a fresh in-memory store.
#[cfg(test)]
mod sqlite {
    use crate::store::Store;

    async fn fresh(_test: &str) -> Option<Store> {
        Some(Store::memory().expect("store"))
    }

    contract_tests!(fresh);

    /// On disk the ingest path also wakes the checkpointer.
    #[tokio::test]
    async fn stores_each_event_once_on_disk() {
        let dir = tempfile::tempdir().expect("dir");
        super::events_stored_once(&Store::open(dir.path()).expect("store")).await;
    }

    /// `Store` is a whole backend.
    #[test]
    fn is_a_backend() {
        fn backend<B: crate::store::Backend>() {}
        backend::<Store>();
    }
}

/// The same contracts on PostgreSQL: each test on a fresh database of this binary's private
/// cluster (`store/pg/testing.rs`); skipped visibly without PostgreSQL, except under CI.
#[cfg(test)]
mod pg {
    use crate::store::pg::{PgStore, testing};

    /// A fresh store, or None when the test skips.
    async fn fresh(test: &str) -> Option<PgStore> {
        let options = testing::database(&format!("pg::{test}")).await?;
        Some(PgStore::open(&options).await.expect("opening the store"))
    }

    contract_tests!(fresh);

    /// `PgStore` is a whole backend.
    #[test]
    fn is_a_backend() {
        fn backend<B: crate::store::Backend>() {}
        backend::<PgStore>();
    }
}
