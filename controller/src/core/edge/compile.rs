//! From playbooks to edge policies, as pure functions: a playbook with steps marked `at: edge`
//! becomes a template (its rules picked from the rule set by the trigger, its event
//! conditions, its edge steps), and a template becomes one agent's policy once the host's
//! labels and the protection of the host are weighed. The block list is one more template.

use crate::playbook::context::{compare, host_values};
use crate::playbook::edge_policy_id;
use crate::playbook::spec::{Action, Cond, FileTarget, Op, Playbook, Step};
use crate::policy::grouping::level_rank;
use crate::store::{Agent, RuleRow};
use cordon_proto::{
    EdgeBlockIp, EdgeCondition, EdgeKill, EdgePolicy, EdgeQuarantine, EdgeRule, EdgeStep, edge_step,
};
use std::collections::BTreeMap;

pub use cordon_proto::edge::BLOCKLIST;

/// What every agent's copy of one policy is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub enabled: bool,
    /// Hosts it applies to: these labels, and these `host.*` conditions.
    host_labels: BTreeMap<String, String>,
    host_conds: Vec<Cond>,
    /// Containment steps: kept from protected hosts.
    contains: bool,
    /// Each step's `host.*` conditions, by step name.
    step_hosts: Vec<(String, Vec<Cond>)>,
    /// The policy without its agent, version and time.
    body: EdgePolicy,
}

impl Template {
    /// A playbook's template, if it has any step at the edge.
    pub fn of_playbook(pb: &Playbook, enabled: bool, rules: &[RuleRow]) -> Option<Self> {
        let edge: Vec<&Step> = pb.steps.iter().filter(|s| s.at_edge).collect();
        if edge.is_empty() {
            return None;
        }
        let (host_conds, rest): (Vec<Cond>, Vec<Cond>) = pb
            .trigger
            .conditions
            .iter()
            .cloned()
            .partition(|c| c.path.starts_with("host."));
        let (alert_conds, event_conds): (Vec<Cond>, Vec<Cond>) =
            rest.into_iter().partition(|c| c.path.starts_with("alert."));
        let body = EdgePolicy {
            id: edge_policy_id(&pb.name),
            active: true,
            dry_run: pb.dry_run,
            rules: picked_rules(pb, &alert_conds, rules),
            conditions: edge_conds(&event_conds),
            steps: edge.iter().filter_map(|s| edge_step(s)).collect(),
            ..Default::default()
        };
        Some(Self {
            id: body.id.clone(),
            enabled,
            host_labels: pb.trigger.host_labels.clone(),
            host_conds,
            contains: edge.iter().any(|s| s.action.contains_host()),
            step_hosts: edge
                .iter()
                .map(|s| (s.name.clone(), host_only(&s.when)))
                .collect(),
            body,
        })
    }

    /// The block list: every SHA-256 on a list marked block, for every host.
    pub fn blocklist(hashes: &[String]) -> Self {
        let block_sha256 = hashes
            .iter()
            .filter_map(|h| hex::decode(h).ok().filter(|b| b.len() == 32))
            .collect();
        Self {
            id: BLOCKLIST.into(),
            enabled: !hashes.is_empty(),
            host_labels: BTreeMap::new(),
            host_conds: Vec::new(),
            contains: false,
            step_hosts: Vec::new(),
            body: EdgePolicy {
                id: BLOCKLIST.into(),
                active: true,
                block_sha256,
                ..Default::default()
            },
        }
    }

    /// This policy as `agent` must enforce it (inactive where it does not apply), and why
    /// not when it does not.
    pub fn for_agent(&self, agent: &Agent, protected: bool) -> EdgePolicy {
        let applies = self.enabled
            && self
                .host_labels
                .iter()
                .all(|(k, v)| agent.labels.get(k) == Some(v))
            && self.host_conds.iter().all(|c| holds_on(c, agent))
            && !(protected && self.contains);
        if !applies {
            return EdgePolicy {
                id: self.id.clone(),
                agent_id: agent.id.clone(),
                active: false,
                ..Default::default()
            };
        }
        let mut p = self.body.clone();
        p.agent_id = agent.id.clone();
        p.steps.retain(|s| {
            self.step_hosts
                .iter()
                .find(|(name, _)| *name == s.name)
                .is_none_or(|(_, conds)| conds.iter().all(|c| holds_on(c, agent)))
        });
        p
    }
}

fn holds_on(c: &Cond, agent: &Agent) -> bool {
    let field = c.path.strip_prefix("host.").unwrap_or_default();
    compare(c, &host_values(Some(agent), field))
}

/// The enabled rules the trigger names (by id, tag or level) whose alert would pass the
/// trigger's `alert.*` conditions.
fn picked_rules(pb: &Playbook, alert_conds: &[Cond], rules: &[RuleRow]) -> Vec<EdgeRule> {
    let t = &pb.trigger;
    rules
        .iter()
        .filter(|r| r.enabled)
        .filter(|r| {
            t.rules.contains(&r.id)
                || t.tags
                    .iter()
                    .any(|g| r.tags.iter().any(|x| x.eq_ignore_ascii_case(g)))
                || t.min_level
                    .as_deref()
                    .is_some_and(|m| level_rank(&r.level) >= level_rank(m))
        })
        .filter(|r| {
            alert_conds
                .iter()
                .all(|c| compare(c, &alert_values(r, &c.path)))
        })
        .map(|r| EdgeRule {
            id: r.id.clone(),
            title: r.title.clone(),
            level: r.level.clone(),
            yaml: r.source.clone(),
        })
        .collect()
}

/// What an alert of rule `r` would show at `alert.<field>`.
fn alert_values(r: &RuleRow, path: &str) -> Vec<String> {
    match path.strip_prefix("alert.").unwrap_or_default() {
        "rule_id" => vec![r.id.clone()],
        "title" => vec![r.title.clone()],
        "level" => vec![r.level.clone()],
        "author" => vec![r.author.clone()],
        "source" => vec!["sigma".into()],
        "tags" => r.tags.clone(),
        _ => Vec::new(),
    }
}

fn host_only(conds: &[Cond]) -> Vec<Cond> {
    conds
        .iter()
        .filter(|c| c.path.starts_with("host."))
        .cloned()
        .collect()
}

/// `event.<field>` conditions, as the agent tests them.
fn edge_conds(conds: &[Cond]) -> Vec<EdgeCondition> {
    conds
        .iter()
        .filter_map(|c| {
            let field = c.path.strip_prefix("event.")?;
            let op = match c.op {
                Op::Equals => "equals",
                Op::Contains => "contains",
                Op::StartsWith => "startswith",
                Op::EndsWith => "endswith",
            };
            Some(EdgeCondition {
                field: field.into(),
                op: op.into(),
                values: c.values.clone(),
            })
        })
        .collect()
}

/// The step as the agent runs it; None for an action that cannot run at the edge (the spec
/// refuses those).
fn edge_step(s: &Step) -> Option<EdgeStep> {
    let action = match &s.action {
        Action::KillProcess { tree } => edge_step::Action::Kill(EdgeKill { tree: *tree }),
        Action::QuarantineFile { target } => edge_step::Action::Quarantine(EdgeQuarantine {
            exe: *target == FileTarget::Exe,
        }),
        Action::BlockIp { cidr, ttl_secs } => edge_step::Action::BlockIp(EdgeBlockIp {
            cidr: cidr.clone(),
            ttl_secs: *ttl_secs,
        }),
        _ => return None,
    };
    Some(EdgeStep {
        name: s.name.clone(),
        when: edge_conds(&s.when),
        action: Some(action),
    })
}
