//! The fleet as people look at it: an agent's state (online, offline, revoked), whether its
//! sensors are degraded, isolation desired against observed (drift), filters over the agent
//! list, and changing an agent's labels (audited).

use super::agents::Presence;
use super::{Admin, Controller, CoreError};
use crate::store::{Agents, CommandRow, CommandStatus};
use cordon_proto::limits::check_labels;
use cordon_proto::{CommandResult, command_result};
use prost::Message;
use serde_json::json;
use std::collections::HashMap;

/// The process sensor mode that sees every exec; any other is degraded.
const FULL_PROCESS_SENSOR: &str = "ebpf";

impl Presence {
    /// "revoked", "online" or "offline".
    pub fn state(&self) -> &'static str {
        match (self.agent.revoked_at_ms.is_some(), self.online) {
            (true, _) => "revoked",
            (false, true) => "online",
            (false, false) => "offline",
        }
    }

    /// Why the agent's sensors are degraded, as it reported them; empty when they are not
    /// (or it has not reported yet).
    pub fn degraded(&self) -> Vec<String> {
        let a = &self.agent;
        let mut why = Vec::new();
        let mode = a.process_sensor.as_str();
        if !mode.is_empty() && mode != FULL_PROCESS_SENSOR {
            why.push(format!("process sensor in {mode} mode"));
        }
        if let Some(m) = &a.metrics {
            why.extend(
                m.sensors
                    .iter()
                    .filter(|s| s.contains("unavailable"))
                    .cloned(),
            );
        }
        why
    }
}

/// What the agents list is filtered by (empty: everything).
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    /// `key=value`, or `key` alone for any value.
    pub label: String,
    /// online, offline, revoked or isolated (isolation desired, not revoked).
    pub state: String,
    /// The process sensor's mode, as the agent reports it.
    pub sensor: String,
}

/// The states the filter knows.
pub const AGENT_STATES: [&str; 4] = ["online", "offline", "revoked", "isolated"];

impl AgentFilter {
    pub fn matches(&self, p: &Presence) -> bool {
        let a = &p.agent;
        let label = match self.label.split_once('=') {
            _ if self.label.is_empty() => true,
            Some((k, v)) => a.labels.get(k.trim()).is_some_and(|have| have == v.trim()),
            None => a.labels.contains_key(self.label.trim()),
        };
        let state = match self.state.as_str() {
            "" => true,
            "isolated" => a.isolation_desired && a.revoked_at_ms.is_none(),
            s => p.state() == s,
        };
        let sensor = self.sensor.is_empty() || a.process_sensor == self.sensor;
        label && state && sensor
    }
}

/// Isolation as the controller wants it and as the agent last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    pub desired: bool,
    /// None until the agent has reported.
    pub observed: Option<bool>,
    /// When the report was made.
    pub observed_at_ms: i64,
    /// What the agent said went wrong, if anything.
    pub error: String,
}

impl Isolation {
    /// The host's report says other than what the controller wants.
    pub fn drift(&self) -> bool {
        self.observed.is_some_and(|o| o != self.desired)
    }

    /// From the agent's last heartbeat and its newest finished isolate or release command
    /// (`commands`, any order), whichever is newer.
    pub fn of(p: &Presence, commands: &[CommandRow]) -> Self {
        let a = &p.agent;
        let mut seen = Self {
            desired: a.isolation_desired,
            observed: None,
            observed_at_ms: 0,
            error: String::new(),
        };
        if let Some(c) = &a.containment {
            seen.observed = Some(c.isolation_table_present);
            seen.observed_at_ms = a.last_seen_ms;
            seen.error = c.error.clone();
        }
        let newest = commands
            .iter()
            .filter(|c| c.status == CommandStatus::Succeeded)
            .filter_map(|c| Some((c.completed_at_ms?, result_of(c)?)))
            .filter_map(|(at, r)| match r.output {
                Some(command_result::Output::Isolation(i)) => Some((at, i.isolated)),
                _ => None,
            })
            .max_by_key(|(at, _)| *at);
        if let Some((at, isolated)) = newest
            && at > seen.observed_at_ms
        {
            seen.observed = Some(isolated);
            seen.observed_at_ms = at;
            seen.error.clear();
        }
        seen
    }
}

/// The agent's result of a command, if it sent one.
pub fn result_of(c: &CommandRow) -> Option<CommandResult> {
    CommandResult::decode(c.result.as_deref()?).ok()
}

impl Controller {
    /// Replaces an agent's labels, for the reason given; audited as `agent.labels` with the
    /// labels before and after.
    pub async fn set_agent_labels(
        &self,
        admin: &Admin,
        asked: &str,
        labels: HashMap<String, String>,
        reason: &str,
    ) -> Result<Presence, CoreError> {
        let entry = admin
            .entry("agent.labels", format!("agent:{asked}"))
            .detail(json!({ "labels": labels, "reason": reason }));
        let result = async {
            check_labels(&labels).map_err(CoreError::BadLabels)?;
            let before = self.resolve(asked).await?;
            if !self
                .store
                .set_agent_labels(before.id.clone(), labels)
                .await?
            {
                return Err(CoreError::NoAgent(before.id));
            }
            let after = self.agent(&before.id).await?;
            // Which edge policies apply to a host depends on its labels.
            self.edge.wake_all();
            Ok((before.labels, after))
        }
        .await;
        self.audited(entry, result, |(before, after), e| {
            e.target = format!("agent:{}", after.agent.id);
            e.detail["before"] = json!(before);
        })
        .await
        .map(|(_, after)| after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Agent;
    use cordon_proto::{AgentMetrics, ContainmentState, IsolationResult};

    fn presence(online: bool) -> Presence {
        let agent = Agent {
            id: "a1".into(),
            host: Default::default(),
            labels: [("env".to_string(), "prod".to_string())].into(),
            enrolled_at_ms: 0,
            last_seen_ms: 1_000,
            online,
            cert_serial: String::new(),
            cert_expires_at_ms: 0,
            revoked_at_ms: None,
            process_sensor: "ebpf".into(),
            isolation_desired: false,
            containment: None,
            metrics: None,
        };
        Presence { agent, online }
    }

    fn isolate_result(isolated: bool, at: i64) -> CommandRow {
        let r = CommandResult {
            output: Some(command_result::Output::Isolation(IsolationResult {
                isolated,
                ..Default::default()
            })),
            ..Default::default()
        };
        CommandRow {
            id: "cmd".into(),
            agent_id: "a1".into(),
            kind: "isolate".into(),
            envelope: Vec::new(),
            created_at_ms: at,
            expires_at_ms: at,
            status: CommandStatus::Succeeded,
            delivered_at_ms: None,
            completed_at_ms: Some(at),
            error: String::new(),
            result: Some(r.encode_to_vec()),
            created_by: "alice".into(),
        }
    }

    #[test]
    fn filters_match_label_state_and_sensor() {
        let mut p = presence(true);
        let f = |label: &str, state: &str, sensor: &str| AgentFilter {
            label: label.into(),
            state: state.into(),
            sensor: sensor.into(),
        };
        assert!(f("env=prod", "online", "ebpf").matches(&p));
        assert!(f("env", "", "").matches(&p));
        assert!(!f("env=dev", "", "").matches(&p));
        assert!(!f("", "offline", "").matches(&p));
        assert!(!f("", "isolated", "").matches(&p));
        assert!(!f("", "", "poll").matches(&p));
        p.agent.isolation_desired = true;
        assert!(f("", "isolated", "").matches(&p));
        p.agent.revoked_at_ms = Some(5);
        assert!(f("", "revoked", "").matches(&p) && !f("", "isolated", "").matches(&p));
    }

    #[test]
    fn degraded_sensors_are_named() {
        let mut p = presence(true);
        assert!(p.degraded().is_empty());
        p.agent.process_sensor = "poll".into();
        p.agent.metrics = Some(AgentMetrics {
            sensors: vec![
                "file: unavailable (no inotify)".into(),
                "process: poll".into(),
            ],
            ..Default::default()
        });
        assert_eq!(
            p.degraded(),
            [
                "process sensor in poll mode",
                "file: unavailable (no inotify)"
            ]
        );
    }

    #[test]
    fn observed_isolation_is_the_newest_report_and_drift_shows() {
        let mut p = presence(true);
        p.agent.isolation_desired = true;
        let none = Isolation::of(&p, &[]);
        assert_eq!((none.observed, none.drift()), (None, false));
        p.agent.containment = Some(ContainmentState {
            isolation_table_present: false,
            ..Default::default()
        });
        assert!(Isolation::of(&p, &[]).drift());
        let done = Isolation::of(&p, &[isolate_result(true, 2_000)]);
        assert_eq!((done.observed, done.drift()), (Some(true), false));
        let stale = Isolation::of(&p, &[isolate_result(true, 500)]);
        assert_eq!(stale.observed, Some(false), "the heartbeat is newer");
    }
}
