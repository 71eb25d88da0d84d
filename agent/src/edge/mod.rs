//! Edge policies: what the controller compiled from playbook steps marked `at: edge` (and the
//! block list of files denied at exec), signed and versioned, enforced here on every event
//! before it is spooled, so the host acts within milliseconds, with or without a controller.
//!
//! - [`policy`] checks a policy (signature, address) and compiles its Sigma rules;
//! - [`act`] runs a step on the host behind the usual guards, with a rate limit;
//! - [`store`] keeps the accepted policies in the state directory across restarts.
//!
//! What a policy did travels with the event ([`cordon_proto::EdgeAction`]), so the controller
//! learns of it, after a reconnect too, the way it learns of the event.

pub mod act;
pub mod policy;
pub mod store;
#[cfg(test)]
mod tests;

use act::{Actor, Ended, RateLimit, Target, record};
use cordon_proto::{EdgeAction, EdgePolicies, EdgePolicyState, SignedEdgePolicy, event};
use policy::{Compiled, Refusal};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use cordon_proto::edge::BLOCKLIST;

/// Where a block list goes when it changes (the exec prevention).
pub type BlockListSink = Box<dyn Fn(Vec<[u8; 32]>) + Send + Sync>;

/// One policy id as held: its version (kept when withdrawn) and, while active, the compiled
/// policy.
struct Held {
    version: u64,
    active: Option<Arc<Compiled>>,
    block: Vec<[u8; 32]>,
}

/// What became of one policy the controller sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Now in force (or withdrawn, when it says so) at this version.
    Installed { id: String, version: u64 },
    /// The version already held: nothing to do.
    Unchanged,
}

pub struct Edge {
    agent_id: String,
    key: Vec<u8>,
    dir: store::PolicyDir,
    held: RwLock<BTreeMap<String, Held>>,
    actor: Arc<dyn Actor>,
    limit: RateLimit,
    sink: Mutex<Option<BlockListSink>>,
}

impl Edge {
    /// The policies stored in `dir` are checked again and put in force at once, so a host
    /// that restarts without its controller is still protected.
    pub fn open(
        agent_id: String,
        key: Vec<u8>,
        dir: std::path::PathBuf,
        actor: Arc<dyn Actor>,
        max_actions_per_minute: u32,
    ) -> Self {
        let edge = Self {
            agent_id,
            key,
            dir: store::PolicyDir::new(dir),
            held: RwLock::default(),
            actor,
            limit: RateLimit::new(max_actions_per_minute),
            sink: Mutex::default(),
        };
        edge.load();
        edge
    }

    fn load(&self) {
        let (stored, unreadable) = match self.dir.load() {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the stored edge policies");
                return;
            }
        };
        for path in unreadable {
            tracing::error!(path = %path.display(), "a stored edge policy does not decode; ignored");
        }
        for signed in stored {
            match self.check(&signed, false) {
                Ok(Some((policy, compiled))) => self.install(policy, compiled),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "a stored edge policy is refused"),
            }
        }
    }

    /// Verifies and, unless it is a version already held, compiles a policy. `newer_only`
    /// refuses versions below the one held.
    fn check(
        &self,
        signed: &SignedEdgePolicy,
        newer_only: bool,
    ) -> Result<Option<(cordon_proto::EdgePolicy, Option<Compiled>)>, Refusal> {
        let policy = policy::verify(signed, &self.key, &self.agent_id)?;
        let held = self.version_of(&policy.id);
        if newer_only && policy.version < held {
            return Err(Refusal::Older {
                id: policy.id,
                got: policy.version,
                held,
            });
        }
        if policy.version == held {
            return Ok(None);
        }
        let compiled = match policy.active {
            true => Some(Compiled::new(policy.clone())?),
            false => None,
        };
        Ok(Some((policy, compiled)))
    }

    fn version_of(&self, id: &str) -> u64 {
        self.read().get(id).map_or(0, |h| h.version)
    }

    fn install(&self, policy: cordon_proto::EdgePolicy, compiled: Option<Compiled>) {
        let block: Vec<[u8; 32]> = match policy.active {
            true => policy
                .block_sha256
                .iter()
                .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
                .collect(),
            false => Vec::new(),
        };
        if policy.id == BLOCKLIST {
            self.send_blocklist(block.clone());
        }
        tracing::info!(id = %policy.id, version = policy.version, active = policy.active,
            dry_run = policy.dry_run, rules = policy.rules.len(), "edge policy in force");
        let held = Held {
            version: policy.version,
            active: compiled.map(Arc::new),
            block,
        };
        self.held
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(policy.id, held);
    }

    /// Takes what the controller sent: each policy is checked, stored and put in force on its
    /// own; a refused one leaves what was held before.
    pub fn accept(&self, sent: &EdgePolicies) -> Vec<Result<Accepted, String>> {
        sent.policies
            .iter()
            .map(|signed| {
                let Some((policy, compiled)) =
                    self.check(signed, true).map_err(|e| e.to_string())?
                else {
                    return Ok(Accepted::Unchanged);
                };
                self.dir
                    .save(&policy.id, signed)
                    .map_err(|e| e.to_string())?;
                let (id, version) = (policy.id.clone(), policy.version);
                self.install(policy, compiled);
                Ok(Accepted::Installed { id, version })
            })
            .collect()
    }

    /// Where block lists go; the one held now is sent at once.
    pub fn set_blocklist_sink(&self, sink: BlockListSink) {
        let current = self.read().get(BLOCKLIST).map(|h| h.block.clone());
        if let Some(list) = current {
            sink(list);
        }
        *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    fn send_blocklist(&self, list: Vec<[u8; 32]>) {
        if let Some(sink) = self.sink.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            sink(list);
        }
    }

    /// The policies in force, for heartbeats.
    pub fn states(&self) -> Vec<EdgePolicyState> {
        self.read()
            .iter()
            .filter_map(|(id, h)| {
                let p = &h.active.as_ref()?.policy;
                Some(EdgePolicyState {
                    id: id.clone(),
                    version: h.version,
                    dry_run: p.dry_run,
                    rules: p.rules.len() as u32,
                    steps: p.steps.len() as u32,
                    block_sha256: h.block.len() as u32,
                })
            })
            .collect()
    }

    /// Runs every policy over an event about to be spooled; what they did goes with it. Runs
    /// under the read lock (every event passes here: no copy of the policies is made; a new
    /// policy waits for an action under way, a few milliseconds at most).
    pub fn evaluate(&self, body: &event::Body) -> Vec<EdgeAction> {
        let held = self.read();
        let active = held
            .values()
            .filter_map(|h| h.active.as_deref())
            .filter(|c| !c.policy.steps.is_empty());
        let mut out = Vec::new();
        for compiled in active {
            let Some(rule_id) = compiled.matches(body) else {
                continue;
            };
            for step in compiled.steps(body) {
                let mut action = self.step(compiled, step, body);
                action.policy_id = compiled.policy.id.clone();
                action.version = compiled.policy.version;
                action.rule_id = rule_id.clone();
                out.push(action);
            }
        }
        out
    }

    fn step(&self, c: &Compiled, step: &cordon_proto::EdgeStep, body: &event::Body) -> EdgeAction {
        let (name, target) = match Target::of(step, body) {
            Ok(t) => t,
            Err(why) => return record(step, "", "failed", why),
        };
        let what = target.describe();
        if c.policy.dry_run {
            return record(step, name, "dry_run", format!("would {what}"));
        }
        if !self.limit.take(Instant::now()) {
            let per = self.limit.per_minute();
            tracing::warn!(policy = %c.policy.id, step = %step.name, "edge action rate limit hit: alert only");
            return record(
                step,
                name,
                "rate_limited",
                format!(
                    "not done ({what}): this host's edge actions are limited to {per} a minute; alert only"
                ),
            );
        }
        let (outcome, detail) = match target.run(self.actor.as_ref()) {
            Ended::Done(d) => ("done", d),
            Ended::Refused(d) => ("refused", d),
            Ended::Failed(d) => ("failed", format!("{what}: {d}")),
        };
        tracing::warn!(policy = %c.policy.id, step = %step.name, outcome, detail = %detail, "edge policy acted");
        record(step, name, outcome, detail)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Held>> {
        self.held.read().unwrap_or_else(|p| p.into_inner())
    }
}
