//! Several controllers on one shared store. Each tells the others, through the store's
//! channel, what they must act on at once: a command queued for an agent whose stream is
//! open elsewhere, a command finished, an approval decided, an agent revoked, a person's
//! standing changed, rules, indicators or playbooks changed. And each runs the background work of a replica: listening, sweeping
//! the presence of agents whose controller died, and claiming the runs it left.

use super::Controller;
use crate::core::sessions::StreamEnd;
use crate::store::pg::replica::Heard;
use crate::store::{Agents, CommandQueue, CommandStatus, Principals};
use cordon_proto::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// Something another controller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A command was queued for `agent`: the controller holding its stream sends it.
    Command { agent: String, id: String },
    /// A command reached a final state: waiters anywhere see it.
    Finished(String),
    /// An approval was decided: runs waiting on it anywhere go on.
    Decided(String),
    /// An agent was revoked: its stream is closed wherever it is open.
    Revoked(String),
    /// A person's or service account's standing changed.
    Principal(String),
    /// Rules or indicators changed: detection reloads them from the store.
    Detection,
    /// Playbooks changed: they are installed again from the store.
    Playbooks,
}

impl Signal {
    pub fn encode(&self) -> String {
        match self {
            Self::Command { agent, id } => format!("command {agent} {id}"),
            Self::Finished(id) => format!("finished {id}"),
            Self::Decided(id) => format!("decided {id}"),
            Self::Revoked(id) => format!("revoked {id}"),
            Self::Principal(name) => format!("principal {name}"),
            Self::Detection => "detection".into(),
            Self::Playbooks => "playbooks".into(),
        }
    }

    pub fn decode(payload: &str) -> Option<Self> {
        match payload {
            "detection" => return Some(Self::Detection),
            "playbooks" => return Some(Self::Playbooks),
            _ => {}
        }
        let (kind, rest) = payload.split_once(' ')?;
        let one = || (!rest.is_empty() && !rest.contains(' ')).then(|| rest.to_string());
        match kind {
            "command" => {
                let (agent, id) = rest.split_once(' ')?;
                Some(Self::Command {
                    agent: agent.into(),
                    id: id.into(),
                })
            }
            "finished" => one().map(Self::Finished),
            "decided" => one().map(Self::Decided),
            "revoked" => one().map(Self::Revoked),
            "principal" => one().map(Self::Principal),
            _ => None,
        }
    }
}

impl Controller {
    /// Tells the other controllers on a shared store; a lost signal is logged (each is
    /// also recovered from the store: see `resync`).
    pub(crate) async fn signal(&self, s: Signal) {
        // Rules, indicators and playbooks are what edge policies are compiled from.
        if matches!(s, Signal::Detection | Signal::Playbooks) {
            self.edge_changed().await;
        }
        if !self.store.shared() {
            return;
        }
        if let Err(e) = self.store.publish(&s.encode()).await {
            tracing::warn!(signal = %s.encode(), error = %e, "telling the other controllers failed");
        }
    }

    /// Records a principal's new standing here and on every other controller.
    pub(crate) async fn standing_changed(&self, p: &crate::store::PrincipalRow) {
        self.roster.put(p);
        self.signal(Signal::Principal(p.name.clone())).await;
    }

    /// Acts on a signal another controller sent.
    async fn heard(&self, s: Signal) -> Result<(), crate::store::StoreError> {
        match s {
            Signal::Command { agent, id } if self.sessions.is_online(&agent) => {
                if let Some(row) = self.store.command(id).await?
                    && row.status == CommandStatus::Pending
                    && let Err(e) = self.push(&row).await
                {
                    tracing::error!(command_id = %row.id, error = %e, "sending a command failed");
                }
            }
            Signal::Command { .. } => {}
            Signal::Finished(id) => drop(self.finished.send(id)),
            Signal::Decided(id) => drop(self.playbooks.decided.send(id)),
            Signal::Revoked(id) => {
                if let Ok(mut set) = self.revoked.write() {
                    set.insert(id.clone());
                }
                self.sessions.close(&id, StreamEnd::Revoked);
            }
            Signal::Principal(name) => {
                if let Some(p) = self.store.principal(name).await? {
                    self.roster.put(&p);
                }
            }
            Signal::Detection => {
                self.detector.load(&self.store, None).await?;
                self.refresh_edge().await?;
            }
            Signal::Playbooks => {
                self.install_stored_playbooks().await?;
                self.refresh_edge().await?;
            }
        }
        Ok(())
    }

    /// After the channel was lost: revocations, standings and queued commands are read
    /// again from the store.
    async fn resync(&self) -> Result<(), crate::store::StoreError> {
        let revoked = self.store.revoked_agent_ids().await?;
        for id in &revoked {
            self.sessions.close(id, StreamEnd::Revoked);
        }
        if let Ok(mut set) = self.revoked.write() {
            set.extend(revoked);
        }
        self.roster.load(&self.store).await?;
        self.detector.load(&self.store, None).await?;
        self.install_stored_playbooks().await?;
        for agent in self.sessions.agent_ids() {
            if let Err(e) = self.deliver_open(&agent).await {
                tracing::error!(agent_id = %agent, error = %e, "sending queued commands failed");
            }
        }
        Ok(())
    }
}

/// How often a replica sweeps presence and claims runs.
const EVERY: Duration = Duration::from_secs(5);
/// How long the presence sweep's lease holds without renewal.
const PRESENCE_LEASE: Duration = Duration::from_secs(15);

/// Starts a replica's background work when the store is shared; the tasks end with the
/// returned handles (abort them on shutdown).
pub fn start(ctl: &Arc<Controller>) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(mut heard) = ctl.store.listen() else {
        return Vec::new();
    };
    let listener = ctl.clone();
    let listening = tokio::spawn(async move {
        while let Some(h) = heard.recv().await {
            let done = match h {
                Heard::Signal(p) => match Signal::decode(&p) {
                    Some(s) => listener.heard(s).await,
                    None => {
                        tracing::warn!(payload = %p, "unknown signal from another controller");
                        Ok(())
                    }
                },
                Heard::Reconnected => listener.resync().await,
            };
            if let Err(e) = done {
                tracing::error!(error = %e, "acting on another controller's signal failed");
            }
        }
    });
    vec![listening, tokio::spawn(upkeep(ctl.clone()))]
}

/// Every few seconds: renew and claim playbook runs, and (one replica at a time) mark
/// offline the agents whose controller died.
async fn upkeep(ctl: Arc<Controller>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = ctl.store.renew_runs(now_ms()).await {
            tracing::error!(error = %e, "renewing playbook run claims failed");
        }
        match crate::playbook::engine::resume(&ctl.engine).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                runs = n,
                "took over playbook runs of a controller that stopped"
            ),
            Err(e) => tracing::error!(error = %e, "claiming playbook runs failed"),
        }
        if let Err(e) = sweep_presence(&ctl).await {
            tracing::error!(error = %e, "sweeping agent presence failed");
        }
    }
}

/// Marks offline the agents silent for longer than the idle timeout, if this replica holds
/// the presence lease.
async fn sweep_presence(ctl: &Controller) -> Result<(), crate::store::StoreError> {
    let now = now_ms();
    if !ctl
        .store
        .claim_lease("presence", PRESENCE_LEASE, now)
        .await?
    {
        return Ok(());
    }
    let idle = Duration::from_secs(ctl.config.agent_idle_timeout_secs);
    let before = now - i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    for id in ctl.store.offline_if_silent(before).await? {
        tracing::warn!(agent_id = %id, "agent offline: silent past the idle timeout (its controller stopped?)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_read_back_as_sent_and_garbage_is_refused() {
        let all = [
            Signal::Command {
                agent: "a1".into(),
                id: "c1".into(),
            },
            Signal::Finished("c2".into()),
            Signal::Decided("ap1".into()),
            Signal::Revoked("a2".into()),
            Signal::Principal("alice".into()),
            Signal::Detection,
            Signal::Playbooks,
        ];
        for s in all {
            assert_eq!(Signal::decode(&s.encode()), Some(s));
        }
        for bad in [
            "",
            "finished",
            "finished ",
            "finished a b",
            "nope x",
            "command a",
        ] {
            assert_eq!(Signal::decode(bad), None, "{bad:?}");
        }
    }
}
