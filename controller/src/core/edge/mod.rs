//! Edge policies on the controller: playbook steps marked `at: edge` and the block list,
//! compiled ([`compile`]) into one policy per agent, versioned in the store (a new version
//! whenever what the agent must enforce changes), signed with the command-signing key and
//! pushed on the agent's stream: all of them when it connects, the changed ones after that.
//! What the agents did with them comes back with their events and heartbeats.

pub mod compile;
#[cfg(test)]
mod tests;

use super::Controller;
use super::sessions::Outbound;
use crate::store::{Agents, PlaybookStore, Rules, StoreError};
use compile::Template;
use cordon_proto::time::now_ms;
use cordon_proto::{ControllerMessage, EdgePolicies, EdgePolicy, controller_message};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the templates are rebuilt from the store even if nothing here changed them
/// (another replica's change, a host's new labels).
const REFRESH: Duration = Duration::from_secs(30);

/// The templates in force, watched by every agent's stream.
pub struct EdgeHub {
    templates: watch::Sender<Arc<Vec<Template>>>,
}

impl Default for EdgeHub {
    fn default() -> Self {
        Self {
            templates: watch::channel(Arc::new(Vec::new())).0,
        }
    }
}

impl EdgeHub {
    /// Has every stream check its agent's policies again (a host's labels changed).
    pub fn wake_all(&self) {
        self.templates.send_modify(|_| {});
    }
}

impl Controller {
    /// Rebuilds the templates from the playbooks, the rules and the block lists; the agents'
    /// streams are woken only if they changed.
    pub async fn refresh_edge(&self) -> Result<(), StoreError> {
        let rules = self.store.rules().await?;
        let blocked = self.store.blocked_sha256().await?;
        let mut templates: Vec<Template> = self
            .playbooks
            .all()
            .iter()
            .filter_map(|(pb, enabled)| Template::of_playbook(pb, *enabled, &rules))
            .collect();
        templates.push(Template::blocklist(&blocked));
        self.edge.templates.send_if_modified(|current| {
            let changed = **current != templates;
            if changed {
                *current = Arc::new(templates);
            }
            changed
        });
        Ok(())
    }

    /// Refreshes after an admin change, logging (not failing the change) if it cannot.
    pub async fn edge_changed(&self) {
        if let Err(e) = self.refresh_edge().await {
            tracing::error!(error = %e, "rebuilding the edge policies failed");
        }
    }

    /// What `agent_id` must enforce now that differs from what this stream sent it (all of
    /// it on the first call), versioned and signed.
    async fn edge_for(
        &self,
        agent_id: &str,
        sent: &mut HashMap<String, Vec<u8>>,
    ) -> Result<Vec<EdgePolicy>, StoreError> {
        let Some(agent) = self.store.agent(agent_id.to_string()).await? else {
            return Ok(Vec::new());
        };
        let protected = self.playbooks.is_protected(&agent.labels);
        let known: HashMap<String, (String, u64)> = self
            .store
            .edge_versions(agent_id.to_string())
            .await?
            .into_iter()
            .map(|(id, digest, v)| (id, (digest, v)))
            .collect();
        let templates = self.edge.templates.borrow().clone();
        let mut wanted: Vec<EdgePolicy> = templates
            .iter()
            .map(|t| t.for_agent(&agent, protected))
            .collect();
        // A policy this agent was given whose playbook no longer has edge steps: withdrawn.
        for id in known.keys() {
            if !wanted.iter().any(|p| &p.id == id) {
                wanted.push(withdrawn(id, agent_id));
            }
        }
        let mut out = Vec::new();
        for mut p in wanted {
            if !p.active && !known.contains_key(&p.id) {
                continue;
            }
            let digest = ring::digest::digest(&ring::digest::SHA256, &p.encode_to_vec());
            if sent.get(&p.id).is_some_and(|d| d == digest.as_ref()) {
                continue;
            }
            let hex = hex::encode(digest.as_ref());
            p.version = match known.get(&p.id) {
                Some((d, v)) if *d == hex => *v,
                _ => {
                    let (agent, id) = (agent_id.to_string(), p.id.clone());
                    self.store.edge_version(agent, id, hex).await?
                }
            };
            sent.insert(p.id.clone(), digest.as_ref().to_vec());
            out.push(p);
        }
        Ok(out)
    }
}

fn withdrawn(id: &str, agent_id: &str) -> EdgePolicy {
    EdgePolicy {
        id: id.into(),
        agent_id: agent_id.into(),
        active: false,
        ..Default::default()
    }
}

/// Keeps one agent's stream supplied with its edge policies until the stream closes.
pub async fn keep_in_sync(
    ctl: Arc<Controller>,
    agent_id: String,
    tx: Outbound,
    close: CancellationToken,
) {
    let mut changes = ctl.edge.templates.subscribe();
    let mut sent = HashMap::new();
    loop {
        match ctl.edge_for(&agent_id, &mut sent).await {
            Ok(policies) if !policies.is_empty() => {
                let signed = policies
                    .into_iter()
                    .map(|mut p| {
                        p.issued_at_ms = now_ms();
                        tracing::info!(agent_id = %agent_id, id = %p.id, version = p.version,
                            active = p.active, "sending edge policy");
                        ctl.signer.sign_policy(&p)
                    })
                    .collect();
                let msg = ControllerMessage {
                    msg: Some(controller_message::Msg::Edge(EdgePolicies {
                        policies: signed,
                    })),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(agent_id = %agent_id, error = %e, "compiling edge policies failed")
            }
        }
        tokio::select! {
            _ = close.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
            // A host's labels may change without a template changing.
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}

/// Rebuilds the templates every [`REFRESH`] while the controller lives.
pub async fn refresh_loop(ctl: Weak<Controller>) {
    loop {
        let Some(c) = ctl.upgrade() else {
            return;
        };
        c.edge_changed().await;
        drop(c);
        tokio::time::sleep(REFRESH).await;
    }
}
