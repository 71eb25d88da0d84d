//! The PostgreSQL backend, for scale-out: several controllers sharing one database. `PgStore`
//! implements every aggregate's trait (`store::Backend`) on tokio-postgres through a bounded
//! deadpool pool. Each call takes a connection from the pool (waiting at most
//! `PgOptions::wait`), and every statement runs under a server-side `statement_timeout`, so an
//! unreachable or stuck database is an error (`StoreError::Unreachable`), never a hang.
//!
//! The schema is its own (`migrations/`, `schema.rs`); events live in a table partitioned by
//! day (`partitions.rs`), stored exactly once per (agent, seq) through a small key table
//! (`events.rs`), and pruned by dropping whole days (`retention.rs`).

mod alerts;
mod audit;
mod collections;
mod commands;
mod copy;
mod events;
mod fetched;
mod fleet;
mod hunts;
mod ingest;
pub(in crate::store) mod partitions;
mod playbooks;
mod principals;
pub mod replica;
mod retention;
mod rules;
mod schema;
#[cfg(any(test, feature = "pg-testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

use super::StoreError;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use std::time::Duration;

/// How to reach the database and how much of it one controller may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// A `postgres://` URL (or key=value connection string).
    pub url: String,
    /// Most connections this controller holds open at once.
    pub pool_size: usize,
    /// Longest a statement may run on the server before it is cancelled.
    pub statement_timeout: Duration,
    /// Longest a call waits for a connection (from the pool, or a new one to the server).
    pub wait: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            wait: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL store: a pool and the days whose event partitions are known to exist.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The database's host and name, for errors (never the password).
    target: String,
    days: partitions::Known,
    /// Batches waiting to be stored (`ingest.rs`).
    queue: std::sync::Arc<ingest::Queue>,
    /// How to open a connection of its own (for LISTEN).
    config: std::sync::Arc<tokio_postgres::Config>,
    /// This controller's name in leases and run claims: unique per process.
    replica: std::sync::Arc<str>,
}

impl PgStore {
    /// Connects, migrates the schema and creates the coming days' event partitions. Fails
    /// with `StoreError::Unreachable` (after at most `o.wait`) when the server does not answer.
    pub async fn open(o: &PgOptions) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = o
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::PgUrl(e.to_string()))?;
        let timeout_ms = o.statement_timeout.as_millis();
        config.connect_timeout(o.wait).options(format!(
            "-c statement_timeout={timeout_ms} -c client_min_messages=warning"
        ));
        let target = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(o.pool_size.max(1))
            .wait_timeout(Some(o.wait))
            .create_timeout(Some(o.wait))
            .recycle_timeout(Some(o.wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::PgPool(e.to_string()))?;
        let store = Self {
            pool,
            target,
            days: partitions::Known::default(),
            queue: std::sync::Arc::default(),
            config: std::sync::Arc::new(config),
            replica: replica_name().into(),
        };
        schema::migrate(&mut *store.client().await?).await?;
        store.create_coming_partitions().await?;
        Ok(store)
    }

    /// A connection from the pool.
    pub(in crate::store) async fn client(&self) -> Result<Object, StoreError> {
        let target = self.target.clone();
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait) => StoreError::PoolBusy {
                target,
                waited_ms: self.pool.timeouts().wait.unwrap_or_default().as_millis(),
            },
            e => StoreError::Unreachable {
                target,
                reason: e.to_string(),
            },
        })
    }
}

/// A name for this controller process among its replicas: host, process id and a random
/// suffix (a restarted controller is a new replica).
fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let tag = hex::encode(rand::random::<[u8; 4]>());
    format!("{}:{}:{tag}", host.trim(), std::process::id())
}

/// "host/dbname" of a connection config, without credentials.
fn describe(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    format!("{host}/{}", c.get_dbname().unwrap_or("postgres"))
}

/// A count or limit as the database's BIGINT.
fn big(n: impl Into<u64>) -> i64 {
    i64::try_from(n.into()).unwrap_or(i64::MAX)
}

/// Every row read by a row mapper shared with the SQLite backend (`store/rows.rs`).
fn all<T>(
    rows: &[tokio_postgres::Row],
    map: impl Fn(&tokio_postgres::Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, StoreError> {
    Ok(rows.iter().map(map).collect::<Result<_, _>>()?)
}
