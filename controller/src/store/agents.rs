//! Agent records: enrolment, presence (online, last seen), certificates and revocation.

use super::presence::Change;
use super::rows::Cols;
use super::tokens::consume;
use super::{CommandStatus, Store, StoreError, labels_from_json, labels_to_json};
use crate::policy::tokens::{EnrollRefusal, enrolled_labels};
use cordon_proto::time::now_ms;
use cordon_proto::{AgentMetrics, ContainmentState, HostFacts};
use prost::Message;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: String,
    pub host: HostFacts,
    pub labels: HashMap<String, String>,
    pub enrolled_at_ms: i64,
    pub last_seen_ms: i64,
    pub online: bool,
    pub cert_serial: String,
    pub cert_expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub process_sensor: String,
    pub isolation_desired: bool,
    /// What the agent last reported about containment in the kernel.
    pub containment: Option<ContainmentState>,
    pub metrics: Option<AgentMetrics>,
}

impl Agent {
    /// An enrolled, online agent with these labels, for tests and the fuzz targets.
    #[doc(hidden)]
    pub fn for_tests(id: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            id: id.into(),
            host: HostFacts {
                hostname: format!("host-{id}"),
                ..Default::default()
            },
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            enrolled_at_ms: 0,
            last_seen_ms: 0,
            online: true,
            cert_serial: String::new(),
            cert_expires_at_ms: 0,
            revoked_at_ms: None,
            process_sensor: String::new(),
            isolation_desired: false,
            containment: None,
            metrics: None,
        }
    }
}

/// What an accepted enrolment writes.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub token_hash: String,
    pub agent_id: String,
    pub host: HostFacts,
    pub labels: HashMap<String, String>,
    pub cert_serial: String,
    pub cert_expires_at_ms: i64,
    pub now_ms: i64,
}

pub(super) const COLUMNS: &str = "id, hostname, os_name, os_version, kernel_version, arch, agent_version, \
     labels, enrolled_at, last_seen, online, cert_serial, cert_expires_at, revoked_at, process_sensor, \
     isolation_desired, containment, metrics";

pub(super) fn from_row<R: Cols>(r: &R) -> Result<(Agent, String), R::Error> {
    Ok((
        Agent {
            id: r.col(0)?,
            host: HostFacts {
                hostname: r.col(1)?,
                os_name: r.col(2)?,
                os_version: r.col(3)?,
                kernel_version: r.col(4)?,
                arch: r.col(5)?,
                agent_version: r.col(6)?,
            },
            labels: HashMap::new(),
            enrolled_at_ms: r.col(8)?,
            last_seen_ms: r.col(9)?,
            online: r.col(10)?,
            cert_serial: r.col(11)?,
            cert_expires_at_ms: r.col(12)?,
            revoked_at_ms: r.col(13)?,
            process_sensor: r.col(14)?,
            isolation_desired: r.col(15)?,
            containment: r
                .col::<Option<Vec<u8>>>(16)?
                .and_then(|b| ContainmentState::decode(b.as_slice()).ok()),
            metrics: r
                .col::<Option<Vec<u8>>>(17)?
                .and_then(|b| AgentMetrics::decode(b.as_slice()).ok()),
        },
        r.col(7)?,
    ))
}

/// A heartbeat to store: whose, when it came and what it said.
#[derive(Debug, Clone)]
pub struct Beat {
    pub agent_id: String,
    pub now_ms: i64,
    pub heartbeat: cordon_proto::Heartbeat,
}

/// What a heartbeat stores: the process sensor's name (at most 32 bytes, cut at a character
/// boundary) and the encoded
/// containment state and metrics, if it reported them.
pub(super) type HeartbeatColumns = (String, Option<Vec<u8>>, Option<Vec<u8>>);

pub(super) fn heartbeat_columns(hb: cordon_proto::Heartbeat) -> HeartbeatColumns {
    let mut sensor = hb.process_sensor;
    let mut end = sensor.len().min(32);
    while !sensor.is_char_boundary(end) {
        end -= 1;
    }
    sensor.truncate(end);
    let containment = hb.containment.map(|c| c.encode_to_vec());
    let metrics = hb.metrics.map(|m| m.encode_to_vec());
    (sensor, containment, metrics)
}

/// Records whether the controller wants the agent isolated (also with a command: `commands`).
pub(super) fn set_isolation_desired(
    c: &rusqlite::Connection,
    id: &str,
    desired: bool,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE agents SET isolation_desired = ?2 WHERE id = ?1",
        params![id, desired],
    )?;
    Ok(())
}

pub(super) fn finish((mut agent, labels): (Agent, String)) -> Result<Agent, StoreError> {
    agent.labels = labels_from_json(&labels)?;
    Ok(agent)
}

/// The agents aggregate: enrolment (which takes a token's use in the same transaction),
/// presence, certificates and revocation. Every backend passes `conformance::agents_*`.
pub trait Agents: Send + Sync {
    /// Consumes one use of the token and records the agent, atomically. Token labels win over
    /// labels the agent asked for. Re-enrolling a known, unrevoked key updates its record.
    fn enroll(
        &self,
        e: Enrolment,
    ) -> impl Future<Output = Result<Result<Agent, EnrollRefusal>, StoreError>> + Send;

    fn agent(&self, id: String) -> impl Future<Output = Result<Option<Agent>, StoreError>> + Send;

    /// Finds agents whose id starts with `prefix` (at most two, enough to tell ambiguity).
    fn agents_by_prefix(
        &self,
        prefix: String,
    ) -> impl Future<Output = Result<Vec<Agent>, StoreError>> + Send;

    fn agents(&self) -> impl Future<Output = Result<Vec<Agent>, StoreError>> + Send;

    /// Ids of every revoked agent, for the TLS layer's refusal list.
    fn revoked_agent_ids(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Records a hello: the agent is online and its host facts are current.
    fn agent_connected(
        &self,
        id: String,
        host: HostFacts,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records heartbeats, several agents' at once (at most one per agent).
    fn agent_heartbeats(
        &self,
        beats: Vec<Beat>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records whether the controller wants the agent isolated.
    fn set_isolation_desired(
        &self,
        id: String,
        desired: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the agent's labels; false for an unknown id.
    fn set_agent_labels(
        &self,
        id: String,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn agent_offline(&self, id: String) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// At start-up no stream is open yet, so no agent is online.
    fn all_agents_offline(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn agent_renewed(
        &self,
        id: String,
        serial: String,
        expires_at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the agent revoked and offline, and fails its open commands. Returns the record,
    /// or None for an unknown id.
    fn revoke_agent(
        &self,
        id: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Agent>, StoreError>> + Send;
}

impl Agents for Store {
    async fn enroll(&self, e: Enrolment) -> Result<Result<Agent, EnrollRefusal>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let revoked: Option<Option<i64>> = tx
                .query_row("SELECT revoked_at FROM agents WHERE id = ?1", [&e.agent_id], |r| r.get(0))
                .optional()?;
            if let Some(Some(_)) = revoked {
                return Ok(Err(EnrollRefusal::AgentRevoked(e.agent_id)));
            }
            let token_labels = match consume(&tx, &e.token_hash, e.now_ms)? {
                Ok(l) => labels_from_json(&l)?,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let labels = enrolled_labels(&e.labels, token_labels);
            let h = &e.host;
            tx.execute(
                "INSERT INTO agents (id, hostname, os_name, os_version, kernel_version, arch,
                     agent_version, labels, enrolled_at, cert_serial, cert_expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET hostname = excluded.hostname,
                     os_name = excluded.os_name, os_version = excluded.os_version,
                     kernel_version = excluded.kernel_version, arch = excluded.arch,
                     agent_version = excluded.agent_version, labels = excluded.labels,
                     cert_serial = excluded.cert_serial, cert_expires_at = excluded.cert_expires_at",
                params![
                    e.agent_id, h.hostname, h.os_name, h.os_version, h.kernel_version, h.arch,
                    h.agent_version, labels_to_json(&labels), e.now_ms, e.cert_serial,
                    e.cert_expires_at_ms
                ],
            )?;
            let agent = get(&tx, &e.agent_id)?
                .ok_or_else(|| StoreError::Corrupt("agent vanished during enrolment".into()))?;
            tx.commit()?;
            Ok(Ok(agent))
        })
        .await
    }

    async fn agent(&self, id: String) -> Result<Option<Agent>, StoreError> {
        self.with(move |c| get(c, &id)).await
    }

    async fn agents_by_prefix(&self, prefix: String) -> Result<Vec<Agent>, StoreError> {
        self.with(move |c| {
            let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM agents WHERE id LIKE ?1 ORDER BY id LIMIT 2"
            ))?;
            let rows = stmt.query_map([pattern], |r| from_row(r))?;
            rows.map(|r| finish(r?)).collect()
        })
        .await
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM agents ORDER BY enrolled_at, id"
            ))?;
            let rows = stmt.query_map([], |r| from_row(r))?;
            rows.map(|r| finish(r?)).collect()
        })
        .await
    }

    async fn revoked_agent_ids(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id FROM agents WHERE revoked_at IS NOT NULL")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn agent_connected(
        &self,
        id: String,
        host: HostFacts,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.presence(id, now_ms, Change::Connected(host)).await
    }

    async fn agent_heartbeats(&self, beats: Vec<Beat>) -> Result<(), StoreError> {
        self.heartbeats(beats).await
    }

    async fn set_isolation_desired(&self, id: String, desired: bool) -> Result<(), StoreError> {
        self.with(move |c| set_isolation_desired(c, &id, desired))
            .await
    }

    async fn set_agent_labels(
        &self,
        id: String,
        labels: HashMap<String, String>,
    ) -> Result<bool, StoreError> {
        self.with(move |c| {
            let n = c.execute(
                "UPDATE agents SET labels = ?2 WHERE id = ?1",
                params![id, labels_to_json(&labels)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn agent_offline(&self, id: String) -> Result<(), StoreError> {
        self.presence(id, now_ms(), Change::Offline).await
    }

    async fn all_agents_offline(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("UPDATE agents SET online = 0", [])?;
            Ok(())
        })
        .await
    }

    async fn agent_renewed(
        &self,
        id: String,
        serial: String,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "UPDATE agents SET cert_serial = ?2, cert_expires_at = ?3 WHERE id = ?1",
                params![id, serial, expires_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn revoke_agent(&self, id: String, now_ms: i64) -> Result<Option<Agent>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE agents SET revoked_at = COALESCE(revoked_at, ?2), online = 0 WHERE id = ?1",
                params![id, now_ms],
            )?;
            tx.execute(
                "UPDATE commands SET status = ?3, completed_at = ?2, error = 'agent revoked'
                 WHERE agent_id = ?1 AND status IN (?4, ?5)",
                params![
                    id,
                    now_ms,
                    CommandStatus::Failed,
                    CommandStatus::Pending,
                    CommandStatus::Delivered
                ],
            )?;
            let agent = get(&tx, &id)?;
            tx.commit()?;
            Ok(agent)
        })
        .await
    }
}

fn get(c: &rusqlite::Connection, id: &str) -> Result<Option<Agent>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"),
        [id],
        |r| from_row(r),
    )
    .optional()?
    .map(finish)
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_sensor_name_is_cut_at_a_character_boundary() {
        let hb = |name: &str| cordon_proto::Heartbeat {
            process_sensor: name.into(),
            ..Default::default()
        };
        let (short, containment, metrics) = heartbeat_columns(hb("ebpf"));
        assert_eq!((short.as_str(), containment, metrics), ("ebpf", None, None));
        // 31 ASCII bytes, then a 2-byte character across byte 32.
        let (cut, ..) = heartbeat_columns(hb(&format!("{}é and more", "x".repeat(31))));
        assert_eq!(cut, "x".repeat(31));
    }
}
