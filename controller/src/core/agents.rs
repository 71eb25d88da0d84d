//! Agents: finding them by id or prefix, listing them with their presence, revoking them,
//! and the life of an agent's stream (connect, heartbeat, renewal, offline). The agent's id
//! always comes from its certificate, which the transport has checked.

use super::replicas::Signal;
use super::sessions::StreamEnd;
use super::{Admin, Controller, CoreError};
use crate::ca::IssuedCert;
use crate::store::{Agent, Agents};
use cordon_proto::limits::{MAX_LIST, check_host};
use cordon_proto::time::now_ms;
use cordon_proto::{Heartbeat, HostFacts};
use serde_json::json;
use std::time::Duration;

/// Rows a listing returns when the caller does not say.
const DEFAULT_LIST: u32 = 100;
/// Most sensor entries one heartbeat may report.
const MAX_SENSORS: usize = 16;

/// A listing's row limit: 0 (unset) is the default; more than [`MAX_LIST`] is refused, not
/// quietly cut.
pub fn list_limit(limit: u32) -> Result<u32, CoreError> {
    match limit {
        0 => Ok(DEFAULT_LIST),
        n if n > MAX_LIST => Err(CoreError::LimitTooHigh(n)),
        n => Ok(n),
    }
}

/// An agent and whether its stream is open now.
#[derive(Debug, Clone)]
pub struct Presence {
    pub agent: Agent,
    pub online: bool,
}

impl Controller {
    /// Finds an agent by id or unambiguous id prefix.
    pub async fn resolve(&self, id: &str) -> Result<Agent, CoreError> {
        if id.is_empty() {
            return Err(CoreError::AgentIdRequired);
        }
        if let Some(a) = self.store.agent(id.to_string()).await? {
            return Ok(a);
        }
        let mut found = self.store.agents_by_prefix(id.to_string()).await?;
        match found.len() {
            0 => Err(CoreError::NoAgent(id.into())),
            1 => Ok(found.remove(0)),
            _ => Err(CoreError::AmbiguousAgent(id.into())),
        }
    }

    /// An empty id means "every agent"; otherwise as [`Self::resolve`].
    pub async fn resolve_optional(&self, id: &str) -> Result<Option<String>, CoreError> {
        if id.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.resolve(id).await?.id))
    }

    /// Online with a stream here; on a shared store, also with one on another controller
    /// (as the store records it: see `replicas` for the sweep of those that died).
    fn presence(&self, agent: Agent) -> Presence {
        let elsewhere = self.store.shared() && agent.online;
        let online = elsewhere || self.sessions.is_online(&agent.id);
        Presence { agent, online }
    }

    pub async fn agents(&self) -> Result<Vec<Presence>, CoreError> {
        let all = self.store.agents().await?;
        Ok(all.into_iter().map(|a| self.presence(a)).collect())
    }

    pub async fn agent(&self, id: &str) -> Result<Presence, CoreError> {
        let a = self.resolve(id).await?;
        Ok(self.presence(a))
    }

    /// Revokes an agent: its next handshake is refused and its open stream closed at once.
    pub async fn revoke(&self, admin: &Admin, asked: &str) -> Result<Presence, CoreError> {
        let entry = admin.entry("agent.revoke", format!("agent:{asked}"));
        let result = async {
            let id = self.resolve(asked).await?.id;
            // Refuse new handshakes first, then cut the open stream.
            if let Ok(mut set) = self.revoked.write() {
                set.insert(id.clone());
            }
            let agent = self
                .store
                .revoke_agent(id.clone(), now_ms())
                .await?
                .ok_or_else(|| CoreError::NoAgent(id.clone()))?;
            let was_online = self.sessions.close(&id, StreamEnd::Revoked);
            self.signal(Signal::Revoked(id.clone())).await;
            tracing::warn!(agent_id = %id, by = %admin.name, was_online, "agent revoked");
            Ok((agent, was_online))
        }
        .await;
        self.audited(entry, result, |(a, was_online), e| {
            e.target = format!("agent:{}", a.id);
            e.detail = json!({ "was_online": was_online });
        })
        .await
        .map(|(agent, _)| Presence {
            agent,
            online: false,
        })
    }

    /// An agent said hello on a new stream: it must be enrolled and not revoked.
    pub async fn agent_connected(&self, agent_id: &str, host: HostFacts) -> Result<(), CoreError> {
        check_host(&host).map_err(CoreError::BadHost)?;
        match self.store.agent(agent_id.to_string()).await? {
            None => return Err(CoreError::NotEnrolled(agent_id.into())),
            Some(a) if a.revoked_at_ms.is_some() => {
                return Err(CoreError::Revoked(agent_id.into()));
            }
            Some(_) => {}
        }
        self.store
            .agent_connected(agent_id.to_string(), host, now_ms())
            .await?;
        Ok(())
    }

    pub fn heartbeat(&self, agent_id: &str, hb: Heartbeat) -> Result<(), CoreError> {
        if hb
            .metrics
            .as_ref()
            .is_some_and(|m| m.sensors.len() > MAX_SENSORS)
        {
            return Err(CoreError::TooManySensors);
        }
        self.heartbeats.note(agent_id, now_ms(), hb);
        Ok(())
    }

    pub async fn agent_offline(&self, agent_id: &str) -> Result<(), CoreError> {
        Ok(self.heartbeats.offline(&self.store, agent_id).await?)
    }

    /// A fresh certificate for the same key, for an agent that is enrolled and not revoked.
    pub async fn renew(&self, agent_id: &str, csr_der: &[u8]) -> Result<IssuedCert, CoreError> {
        match self.store.agent(agent_id.to_string()).await? {
            Some(a) if a.revoked_at_ms.is_none() => {}
            _ => return Err(CoreError::RenewalRefused(agent_id.into())),
        }
        let ttl = Duration::from_secs(self.config.agent_cert_ttl_secs);
        let issued = self.ca.sign_agent(csr_der, ttl)?;
        if issued.agent_id != agent_id {
            tracing::warn!(agent_id = %agent_id, csr_key = %issued.agent_id, "renewal CSR is for another key");
            return Err(CoreError::RenewalKeyMismatch);
        }
        self.store
            .agent_renewed(
                agent_id.to_string(),
                issued.serial.clone(),
                issued.expires_at_ms,
            )
            .await?;
        tracing::info!(agent_id = %agent_id, serial = %issued.serial, "certificate renewed");
        Ok(issued)
    }
}
