//! What a playbook's trigger and `if:` conditions see: the alert, its event (by Sigma field
//! name), the host, and the outcomes of earlier steps.

use super::spec::{Cond, Op, Playbook};
use crate::policy::grouping::level_rank;
use crate::store::{Agent, AlertRow};
use cordon_detect::fields::{Fields, view};
use cordon_proto::Event;
use prost::Message;
use std::collections::HashMap;

pub struct RunContext {
    pub alert: AlertRow,
    pub event: Option<Event>,
    pub agent: Option<Agent>,
    /// Step name -> outcome ("succeeded", "failed", "skipped", "dry_run", "denied", ...).
    pub outcomes: HashMap<String, String>,
}

impl RunContext {
    pub fn new(alert: AlertRow, agent: Option<Agent>) -> Self {
        let event = alert
            .event
            .as_ref()
            .and_then(|e| Event::decode(e.body.as_slice()).ok());
        Self {
            alert,
            event,
            agent,
            outcomes: HashMap::new(),
        }
    }

    /// The values a path names (several for tags).
    pub fn values(&self, path: &str) -> Vec<String> {
        let (root, rest) = path.split_once('.').unwrap_or((path, ""));
        let a = &self.alert;
        match (root, rest) {
            ("alert", "rule_id") => vec![a.rule.rule_id.clone()],
            ("alert", "title") => vec![a.rule.title.clone()],
            ("alert", "level") => vec![a.rule.level.clone()],
            ("alert", "source") => vec![a.source.clone()],
            ("alert", "author") => vec![a.rule.author.clone()],
            ("alert", "tags") => a.rule.tags.clone(),
            ("event", field) => self
                .event
                .as_ref()
                .and_then(view)
                .and_then(|(_, fields)| fields.get(field).map(|v| v.to_text().into_owned()))
                .into_iter()
                .collect(),
            ("host", field) => host_values(self.agent.as_ref(), field),
            ("steps", name) => self.outcomes.get(name).cloned().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    pub fn holds(&self, c: &Cond) -> bool {
        compare(c, &self.values(&c.path))
    }

    pub fn all_hold(&self, conds: &[Cond]) -> bool {
        conds.iter().all(|c| self.holds(c))
    }

    /// Whether a new alert starts this playbook.
    pub fn triggers(&self, pb: &Playbook) -> bool {
        let t = &pb.trigger;
        let a = &self.alert;
        let by_rule = t.rules.contains(&a.rule.rule_id);
        let by_tag = t
            .tags
            .iter()
            .any(|g| a.rule.tags.iter().any(|x| x.eq_ignore_ascii_case(g)));
        let by_level = t
            .min_level
            .as_deref()
            .is_some_and(|m| level_rank(&a.rule.level) >= level_rank(m));
        let labels = t.host_labels.iter().all(|(k, v)| {
            self.agent
                .as_ref()
                .and_then(|g| g.labels.get(k))
                .is_some_and(|have| have == v)
        });
        (by_rule || by_tag || by_level) && labels && self.all_hold(&t.conditions)
    }
}

/// `host.hostname` and `host.labels.<key>` of `agent`.
pub fn host_values(agent: Option<&Agent>, field: &str) -> Vec<String> {
    let Some(g) = agent else {
        return Vec::new();
    };
    match field {
        "hostname" => vec![g.host.hostname.clone()],
        _ => field
            .strip_prefix("labels.")
            .and_then(|k| g.labels.get(k).cloned())
            .into_iter()
            .collect(),
    }
}

/// Whether some value in `have` passes the condition, without regard to case.
pub fn compare(c: &Cond, have: &[String]) -> bool {
    have.iter().any(|h| {
        let h = h.to_lowercase();
        c.values.iter().any(|v| {
            let v = v.to_lowercase();
            match c.op {
                Op::Equals => h == v,
                Op::Contains => h.contains(&v),
                Op::StartsWith => h.starts_with(&v),
                Op::EndsWith => h.ends_with(&v),
            }
        })
    })
}
