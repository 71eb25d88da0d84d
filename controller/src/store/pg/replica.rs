//! What several controllers sharing the database need from it: leases for the work one of
//! them does at a time, claims on playbook runs (a run whose controller died is taken over,
//! once), presence swept by last contact, and signals between controllers through
//! LISTEN/NOTIFY on one channel.

use super::PgStore;
use crate::store::{RunRow, RunStatus, StoreError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

/// The NOTIFY channel the controllers signal each other on.
pub const CHANNEL: &str = "cordon";
/// How long a claim on a run holds without renewal.
pub const RUN_LEASE: Duration = Duration::from_secs(15);

/// What a controller hears on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A payload another controller sent.
    Signal(String),
    /// The listening connection was re-established: signals sent meanwhile are lost, so the
    /// listener should resynchronise from the store.
    Reconnected,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// This controller's name in leases and run claims.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Takes or renews the lease on `name` for `ttl`; true while this controller holds it.
    pub async fn claim_lease(
        &self,
        name: &str,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3)
                   ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms
                   WHERE leases.holder = EXCLUDED.holder OR leases.until_ms < $4";
        let until = now_ms.saturating_add(ms(ttl));
        Ok(self
            .exec(sql, &[&name, &self.replica(), &until, &now_ms])
            .await?
            == 1)
    }

    /// Gives up the lease on `name` if this controller holds it.
    pub async fn release_lease(&self, name: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM leases WHERE name = $1 AND holder = $2";
        self.exec(sql, &[&name, &self.replica()]).await.map(drop)
    }

    /// Claims the unfinished runs that are this controller's or whose claim lapsed, oldest
    /// first; a run is claimed by one controller only (`FOR UPDATE SKIP LOCKED`).
    pub(super) async fn claim_runs(&self, now_ms: i64) -> Result<Vec<RunRow>, StoreError> {
        let cols = crate::store::playbooks::RUN_COLUMNS;
        let sql = format!(
            "UPDATE runs SET owner = $3, lease_until = $4 WHERE id IN (
                 SELECT id FROM runs WHERE status IN ($1, $2) AND (owner = $3 OR lease_until < $5)
                 FOR UPDATE SKIP LOCKED)
             RETURNING {cols}"
        );
        let open = (RunStatus::Running, RunStatus::WaitingApproval);
        let until = now_ms.saturating_add(ms(RUN_LEASE));
        let rows = self
            .client()
            .await?
            .query(&sql, &[&open.0, &open.1, &self.replica(), &until, &now_ms])
            .await?;
        let mut runs = super::all(&rows, super::playbooks::run_row)?;
        runs.sort_by(|a, b| (a.started_at_ms, &a.id).cmp(&(b.started_at_ms, &b.id)));
        Ok(runs)
    }

    /// Extends this controller's claims on its unfinished runs.
    pub async fn renew_runs(&self, now_ms: i64) -> Result<u64, StoreError> {
        let sql = "UPDATE runs SET lease_until = $2 WHERE owner = $1 AND status IN ($3, $4)";
        let until = now_ms.saturating_add(ms(RUN_LEASE));
        let open = (RunStatus::Running, RunStatus::WaitingApproval);
        self.exec(sql, &[&self.replica(), &until, &open.0, &open.1])
            .await
    }

    /// Marks offline every online agent not heard from since `before_ms` (its controller
    /// died without closing the stream); returns their ids.
    pub async fn offline_if_silent(&self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        let sql = "UPDATE agents SET online = FALSE WHERE online AND last_seen < $1 RETURNING id";
        let rows = self.client().await?.query(sql, &[&before_ms]).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// A trivial query, to tell whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Sends `payload` to every other controller listening; it goes out tagged with this
    /// controller's name, so its own listener drops it (the sender has already acted).
    pub async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        let sql = "SELECT pg_notify($1, $2)";
        let tagged = format!("{} {payload}", self.replica());
        self.client()
            .await?
            .execute(sql, &[&CHANNEL, &tagged])
            .await?;
        Ok(())
    }

    /// Listens on the channel on a connection of its own, outside the pool, for what other
    /// controllers publish; whenever the connection is lost it connects again and, once it
    /// listens again, says so (`Heard::Reconnected`), until the receiver is dropped.
    pub fn listen(&self) -> mpsc::Receiver<Heard> {
        let (tx, rx) = mpsc::channel(1024);
        let (config, target) = (self.config.clone(), self.target.clone());
        let own = format!("{} ", self.replica());
        tokio::spawn(async move {
            let mut listened_before = false;
            while !tx.is_closed() {
                let heard = Listening {
                    tx: &tx,
                    own: &own,
                    announce: listened_before,
                };
                match heard.run(&config).await {
                    Ok(()) => listened_before = true,
                    Err((listened, e)) => {
                        listened_before |= listened;
                        tracing::warn!(target = %target, error = %e, "listening for other controllers failed; retrying");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        rx
    }
}

/// One listening connection's forwarding.
struct Listening<'a> {
    tx: &'a mpsc::Sender<Heard>,
    /// This controller's tag (name and a space): its own signals are dropped.
    own: &'a str,
    /// Send `Heard::Reconnected` once listening (an earlier connection was lost).
    announce: bool,
}

impl Listening<'_> {
    /// LISTEN, then forward other controllers' notifications until the connection fails
    /// or closes; a failure says whether LISTEN had succeeded first.
    async fn run(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<(), (bool, tokio_postgres::Error)> {
        let (client, mut conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| (false, e))?;
        let (heard_tx, mut heard_rx) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                let done = m.is_err();
                match m {
                    Ok(AsyncMessage::Notification(n)) => {
                        drop(heard_tx.send(Ok(n.payload().to_string())))
                    }
                    Ok(_) => {}
                    Err(e) => drop(heard_tx.send(Err(e))),
                }
                if done {
                    return;
                }
            }
        });
        let result = self.forward(&client, &mut heard_rx).await;
        driver.abort();
        result
    }

    async fn forward(
        &self,
        client: &tokio_postgres::Client,
        heard: &mut mpsc::UnboundedReceiver<Result<String, tokio_postgres::Error>>,
    ) -> Result<(), (bool, tokio_postgres::Error)> {
        let listen = format!("LISTEN {CHANNEL}");
        client
            .batch_execute(&listen)
            .await
            .map_err(|e| (false, e))?;
        if self.announce && self.tx.send(Heard::Reconnected).await.is_err() {
            return Ok(());
        }
        while let Some(m) = heard.recv().await {
            let payload = m.map_err(|e| (true, e))?;
            if payload.starts_with(self.own) {
                continue;
            }
            let signal = payload.split_once(' ').map_or(payload.as_str(), |(_, s)| s);
            if self
                .tx
                .send(Heard::Signal(signal.to_string()))
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }
}
