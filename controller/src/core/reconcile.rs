//! Desired against observed isolation. The controller holds each host's desired isolation (set
//! when an isolate or release command is stored); each agent reports in its heartbeat whether
//! the isolation table is in its kernel. When a host connected to this replica has reported
//! the other state for `isolation_reconcile_secs` with no isolate or release command of it
//! open, the controller orders the desired state again: an isolation rolled back because the
//! link dropped while it was being checked, or an order that expired while the host was away,
//! does not leave a host open that someone ordered isolated (nor isolated once released).
//! Orders for one host back off (1, 2, 4 ... up to 16 times the delay) while they do not take,
//! so a host where isolation cannot hold is retried, not hammered. Each order is audited, by
//! the actor `controller`.

use super::Controller;
use crate::policy::audit::AuditEntry;
use crate::store::{Agent, Agents, CommandQueue};
use cordon_proto::{Command, SignedCommand, action};
use prost::Message;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the hosts are compared.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Longest wait between two orders for one host: this many times the configured delay.
const MAX_BACKOFF: u32 = 16;
/// The command kinds that change the desired isolation.
const ISOLATION_KINDS: [&str; 2] = ["isolate", "release"];

/// One host seen drifting: since when, and when it may be ordered next.
#[derive(Debug, Clone, Copy)]
struct Drift {
    since: Instant,
    next_order: Option<Instant>,
    orders: u32,
}

/// The hosts seen drifting, and when each may be ordered.
#[derive(Debug, Default)]
pub struct Reconciler {
    drifting: HashMap<String, Drift>,
}

impl Reconciler {
    /// Takes the hosts drifting now (`(agent, desired)`; a host with an isolation command
    /// open is not drifting) and returns those to order again at `now`, after `delay`.
    fn due(
        &mut self,
        drifted: Vec<(String, bool)>,
        now: Instant,
        delay: Duration,
    ) -> Vec<(String, bool)> {
        let still: HashMap<String, bool> = drifted.into_iter().collect();
        self.drifting.retain(|id, _| still.contains_key(id));
        let mut due = Vec::new();
        for (id, desired) in still {
            let d = self.drifting.entry(id.clone()).or_insert(Drift {
                since: now,
                next_order: None,
                orders: 0,
            });
            let ready = d.next_order.unwrap_or(d.since + delay);
            if now >= ready {
                d.orders += 1;
                let backoff = 2u32.saturating_pow(d.orders).min(MAX_BACKOFF);
                d.next_order = Some(now + delay * backoff);
                due.push((id, desired));
            }
        }
        due.sort();
        due
    }
}

/// The desired isolation of `a` when what it reports differs from it, if that can be told.
fn drift(a: &Agent) -> Option<bool> {
    let observed = a.containment.as_ref().filter(|c| c.error.is_empty())?;
    (a.revoked_at_ms.is_none() && observed.isolation_table_present != a.isolation_desired)
        .then_some(a.isolation_desired)
}

/// Compares the hosts every few seconds, for ever (the caller aborts it); off when the
/// configured delay is 0.
pub async fn reconcile_loop(ctl: Arc<Controller>) {
    let delay = Duration::from_secs(ctl.config.isolation_reconcile_secs);
    if delay.is_zero() {
        return;
    }
    let mut reconciler = Reconciler::default();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = ctl.reconcile_once(&mut reconciler, delay).await {
            tracing::warn!(error = %e, "comparing desired and observed isolation failed");
        }
    }
}

impl Controller {
    /// One comparison: orders the desired isolation of every host that is due.
    async fn reconcile_once(
        &self,
        r: &mut Reconciler,
        delay: Duration,
    ) -> Result<(), super::CoreError> {
        let mut drifted = Vec::new();
        for a in self.store.agents().await? {
            let Some(desired) = drift(&a) else { continue };
            if !self.sessions.is_online(&a.id) || self.isolation_open(&a.id).await? {
                continue;
            }
            drifted.push((a.id, desired));
        }
        for (agent, desired) in r.due(drifted, Instant::now(), delay) {
            self.order_isolation(agent, desired).await?;
        }
        Ok(())
    }

    /// Whether an isolate or release command of `agent` is still open.
    async fn isolation_open(&self, agent: &str) -> Result<bool, super::CoreError> {
        let open = self
            .store
            .open_commands(agent.to_string(), cordon_proto::time::now_ms())
            .await?;
        Ok(open
            .iter()
            .any(|c| ISOLATION_KINDS.contains(&c.kind.as_str())))
    }

    /// Orders `agent` isolated (with the allowances of its newest isolate command) or
    /// released again, and audits it.
    async fn order_isolation(&self, agent: String, desired: bool) -> Result<(), super::CoreError> {
        let action = match desired {
            true => action::Kind::Isolate(self.last_isolation(&agent).await?),
            false => action::Kind::Release(Default::default()),
        };
        let kind = if desired { "isolate" } else { "release" };
        let why = if desired {
            "desired isolated, the host reports it is not"
        } else {
            "desired released, the host reports it is isolated"
        };
        tracing::warn!(agent_id = %agent, why, "ordering the desired isolation again");
        let ttl = Duration::from_secs(self.config.command_ttl_secs);
        let entry = AuditEntry::new(
            "controller",
            format!("command.{kind}"),
            format!("agent:{agent}"),
        )
        .detail(json!({ "reason": format!("reconcile: {why}") }));
        let sent = self
            .submit_command(agent, action, ttl, "controller".into())
            .await;
        self.audited(entry, sent, |row, e| {
            e.detail["command_id"] = json!(row.id);
        })
        .await?;
        Ok(())
    }

    /// The isolation settings of `agent`'s newest isolate command (its allowlist, its
    /// reason), or the defaults if none is kept.
    async fn last_isolation(&self, agent: &str) -> Result<cordon_proto::Isolate, super::CoreError> {
        let rows = self.store.commands(Some(agent.to_string()), 100).await?;
        let newest = rows
            .iter()
            .filter(|c| c.kind == "isolate")
            .max_by_key(|c| c.created_at_ms)
            .and_then(|c| SignedCommand::decode(c.envelope.as_slice()).ok())
            .and_then(|s| Command::decode(s.command.as_slice()).ok())
            .and_then(|c| c.action.and_then(|a| a.kind));
        Ok(match newest {
            Some(action::Kind::Isolate(i)) => i,
            _ => Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_proto::ContainmentState;

    const DELAY: Duration = Duration::from_secs(30);

    fn agent(desired: bool, table: Option<bool>) -> Agent {
        Agent {
            isolation_desired: desired,
            containment: table.map(|present| ContainmentState {
                isolation_table_present: present,
                ..Default::default()
            }),
            ..Agent::for_tests("a1", &[])
        }
    }

    #[test]
    fn drift_is_a_reported_state_other_than_the_desired_one() {
        assert_eq!(drift(&agent(true, Some(false))), Some(true));
        assert_eq!(drift(&agent(false, Some(true))), Some(false));
        assert_eq!(drift(&agent(true, Some(true))), None);
        // No heartbeat yet, or one that could not read the kernel: nothing to go on.
        assert_eq!(drift(&agent(true, None)), None);
        let mut unread = agent(true, Some(false));
        unread.containment.as_mut().unwrap().error = "nft: not found".into();
        assert_eq!(drift(&unread), None);
        let mut revoked = agent(true, Some(false));
        revoked.revoked_at_ms = Some(1);
        assert_eq!(drift(&revoked), None);
    }

    #[test]
    fn a_host_is_ordered_once_its_drift_has_lasted_the_delay_then_with_backoff() {
        let mut r = Reconciler::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let drifting = || vec![("a1".to_string(), true)];
        assert!(r.due(drifting(), at(0), DELAY).is_empty());
        assert!(r.due(drifting(), at(29), DELAY).is_empty());
        assert_eq!(r.due(drifting(), at(30), DELAY), drifting());
        // Still drifting: the next order waits twice the delay, then four times.
        assert!(r.due(drifting(), at(89), DELAY).is_empty());
        assert_eq!(r.due(drifting(), at(90), DELAY), drifting());
        assert!(r.due(drifting(), at(209), DELAY).is_empty());
        assert_eq!(r.due(drifting(), at(210), DELAY), drifting());
    }

    #[test]
    fn drift_that_ends_starts_over() {
        let mut r = Reconciler::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(r.due(vec![("a1".into(), true)], at(0), DELAY).is_empty());
        // A command was open (or the host caught up): not drifting at 20 s.
        assert!(r.due(Vec::new(), at(20), DELAY).is_empty());
        assert!(r.due(vec![("a1".into(), true)], at(40), DELAY).is_empty());
        assert_eq!(
            r.due(vec![("a1".into(), true)], at(70), DELAY),
            vec![("a1".to_string(), true)]
        );
    }
}
