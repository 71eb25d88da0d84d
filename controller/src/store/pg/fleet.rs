//! Agents and enrolment tokens on PostgreSQL.

use super::{PgStore, big};
use crate::policy::tokens::{EnrollRefusal, TokenState, enrolled_labels, usable};
use crate::store::agents::{COLUMNS, finish, from_row, heartbeat_columns};
use crate::store::{
    Agent, Agents, Beat, CommandStatus, Enrolment, StoreError, Tokens, labels_from_json,
    labels_to_json,
};
use cordon_proto::HostFacts;
use std::collections::HashMap;
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

/// Records whether the controller wants these agents ($1, an array) isolated ($2); also
/// with their commands (`commands.rs`).
pub(super) const SET_ISOLATION_DESIRED: &str =
    "UPDATE agents SET isolation_desired = $2 WHERE id = ANY($1)";

async fn get(c: &impl GenericClient, id: &str) -> Result<Option<Agent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM agents WHERE id = $1");
    c.query_opt(&sql, &[&id])
        .await?
        .map(|r| finish(from_row(&r)?))
        .transpose()
}

async fn agents_where(
    c: &impl GenericClient,
    clause: &str,
    arg: Option<&str>,
) -> Result<Vec<Agent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM agents {clause}");
    let rows = match arg {
        Some(a) => c.query(&sql, &[&a]).await?,
        None => c.query(&sql, &[]).await?,
    };
    rows.iter().map(|r| finish(from_row(r)?)).collect()
}

/// A token's state and labels, if it may enrol one more agent now.
async fn usable_token(
    c: &impl GenericClient,
    hash: &str,
    now_ms: i64,
) -> Result<Result<String, EnrollRefusal>, StoreError> {
    let row = c
        .query_opt(
            "SELECT expires_at, uses_left, labels FROM tokens WHERE hash = $1",
            &[&hash],
        )
        .await?;
    let (state, labels) = match row {
        Some(r) => {
            let state = TokenState {
                expires_at_ms: r.try_get(0)?,
                uses_left: r.try_get(1)?,
            };
            (Some(state), Some(r.try_get::<_, String>(2)?))
        }
        None => (None, None),
    };
    Ok(usable(state, now_ms).map(|()| labels.unwrap_or_default()))
}

impl Tokens for PgStore {
    async fn create_token(
        &self,
        hash: String,
        now_ms: i64,
        expires_at_ms: i64,
        uses: u32,
        labels: HashMap<String, String>,
        created_by: String,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO tokens (hash, created_at, expires_at, uses_left, labels, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &hash,
                    &now_ms,
                    &expires_at_ms,
                    &big(uses),
                    &labels_to_json(&labels),
                    &created_by,
                ],
            )
            .await?;
        Ok(())
    }

    async fn check_token(
        &self,
        hash: String,
        now_ms: i64,
    ) -> Result<Result<(), EnrollRefusal>, StoreError> {
        let c = self.client().await?;
        Ok(usable_token(&**c, &hash, now_ms).await?.map(|_| ()))
    }
}

/// A host's facts, in the order the agents table lists them.
fn host_args(h: &HostFacts) -> [&(dyn ToSql + Sync); 6] {
    [
        &h.hostname,
        &h.os_name,
        &h.os_version,
        &h.kernel_version,
        &h.arch,
        &h.agent_version,
    ]
}

const ENROL: &str = "INSERT INTO agents (id, hostname, os_name, os_version, kernel_version,
         arch, agent_version, labels, enrolled_at, cert_serial, cert_expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname,
         os_name = excluded.os_name, os_version = excluded.os_version,
         kernel_version = excluded.kernel_version, arch = excluded.arch,
         agent_version = excluded.agent_version, labels = excluded.labels,
         cert_serial = excluded.cert_serial, cert_expires_at = excluded.cert_expires_at";

impl PgStore {
    /// Executes one statement on a pooled connection; returns the rows it changed.
    pub(super) async fn exec(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        Ok(self.client().await?.execute(sql, args).await?)
    }
}

impl Agents for PgStore {
    async fn enroll(&self, e: Enrolment) -> Result<Result<Agent, EnrollRefusal>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let revoked = tx
            .query_opt(
                "SELECT revoked_at FROM agents WHERE id = $1 FOR UPDATE",
                &[&e.agent_id],
            )
            .await?;
        if let Some(r) = revoked
            && r.try_get::<_, Option<i64>>(0)?.is_some()
        {
            return Ok(Err(EnrollRefusal::AgentRevoked(e.agent_id)));
        }
        tx.query_opt(
            "SELECT 1 FROM tokens WHERE hash = $1 FOR UPDATE",
            &[&e.token_hash],
        )
        .await?;
        let token_labels = match usable_token(&*tx, &e.token_hash, e.now_ms).await? {
            Ok(l) => labels_from_json(&l)?,
            Err(refusal) => return Ok(Err(refusal)),
        };
        tx.execute(
            "UPDATE tokens SET uses_left = uses_left - 1 WHERE hash = $1",
            &[&e.token_hash],
        )
        .await?;
        let labels = labels_to_json(&enrolled_labels(&e.labels, token_labels));
        let h = &e.host;
        let id: [&(dyn ToSql + Sync); 1] = [&e.agent_id];
        let rest: [&(dyn ToSql + Sync); 4] =
            [&labels, &e.now_ms, &e.cert_serial, &e.cert_expires_at_ms];
        tx.execute(ENROL, &[&id[..], &host_args(h), &rest].concat())
            .await?;
        let agent = get(&*tx, &e.agent_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("agent vanished during enrolment".into()))?;
        tx.commit().await?;
        Ok(Ok(agent))
    }

    async fn agent(&self, id: String) -> Result<Option<Agent>, StoreError> {
        get(&**self.client().await?, &id).await
    }

    async fn agents_by_prefix(&self, prefix: String) -> Result<Vec<Agent>, StoreError> {
        let pattern = format!("{}%", prefix.replace(['%', '_', '\\'], ""));
        let c = self.client().await?;
        agents_where(&**c, "WHERE id LIKE $1 ORDER BY id LIMIT 2", Some(&pattern)).await
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let c = self.client().await?;
        agents_where(&**c, "ORDER BY enrolled_at, id", None).await
    }

    async fn revoked_agent_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT id FROM agents WHERE revoked_at IS NOT NULL", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    async fn agent_connected(
        &self,
        id: String,
        host: HostFacts,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let h = &host;
        self.exec(
            "UPDATE agents SET online = TRUE, last_seen = $2, hostname = $3, os_name = $4,
                 os_version = $5, kernel_version = $6, arch = $7, agent_version = $8
             WHERE id = $1",
            &[
                [&id as &(dyn ToSql + Sync), &now_ms].as_slice(),
                &host_args(h),
            ]
            .concat(),
        )
        .await?;
        Ok(())
    }

    async fn agent_heartbeats(&self, beats: Vec<Beat>) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(beats.len());
        let mut seen = Vec::with_capacity(beats.len());
        let (mut sensors, mut containment, mut metrics) = (Vec::new(), Vec::new(), Vec::new());
        for b in beats {
            let (sensor, c, m) = heartbeat_columns(b.heartbeat);
            ids.push(b.agent_id);
            seen.push(b.now_ms);
            sensors.push(sensor);
            containment.push(c);
            metrics.push(m);
        }
        self.exec(
            "UPDATE agents a SET last_seen = b.seen, process_sensor = b.sensor, online = TRUE,
                 containment = COALESCE(b.containment, a.containment),
                 metrics = COALESCE(b.metrics, a.metrics)
             FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[], $5::BYTEA[])
                 AS b(id, seen, sensor, containment, metrics)
             WHERE a.id = b.id",
            &[&ids, &seen, &sensors, &containment, &metrics],
        )
        .await?;
        Ok(())
    }

    async fn set_isolation_desired(&self, id: String, desired: bool) -> Result<(), StoreError> {
        self.exec(SET_ISOLATION_DESIRED, &[&vec![id], &desired])
            .await?;
        Ok(())
    }

    async fn set_agent_labels(
        &self,
        id: String,
        labels: HashMap<String, String>,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE agents SET labels = $2 WHERE id = $1";
        Ok(self.exec(sql, &[&id, &labels_to_json(&labels)]).await? == 1)
    }

    async fn agent_offline(&self, id: String) -> Result<(), StoreError> {
        self.exec("UPDATE agents SET online = FALSE WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn all_agents_offline(&self) -> Result<(), StoreError> {
        self.exec("UPDATE agents SET online = FALSE", &[]).await?;
        Ok(())
    }

    async fn agent_renewed(
        &self,
        id: String,
        serial: String,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE agents SET cert_serial = $2, cert_expires_at = $3 WHERE id = $1";
        self.exec(sql, &[&id, &serial, &expires_at_ms]).await?;
        Ok(())
    }

    async fn revoke_agent(&self, id: String, now_ms: i64) -> Result<Option<Agent>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE agents SET revoked_at = COALESCE(revoked_at, $2), online = FALSE
             WHERE id = $1",
            &[&id, &now_ms],
        )
        .await?;
        tx.execute(
            "UPDATE commands SET status = $3, completed_at = $2, error = 'agent revoked'
             WHERE agent_id = $1 AND status IN ($4, $5)",
            &[
                &id,
                &now_ms,
                &CommandStatus::Failed,
                &CommandStatus::Pending,
                &CommandStatus::Delivered,
            ],
        )
        .await?;
        let agent = get(&*tx, &id).await?;
        tx.commit().await?;
        Ok(agent)
    }
}
