//! The set of rules the controller runs on each event: rules are added, removed, enabled and
//! disabled here; [`RuleSet::evaluate`] returns every enabled rule that matches.
//!
//! Evaluation goes through an index (`index.rs`) built lazily after a change: per category,
//! one Aho-Corasick automaton per field over every literal of every enabled rule, and for
//! each literal the rules that cannot match unless it occurs. An event scans each field once,
//! and only the rules one of whose trigger literals occurred (plus the few that have no such
//! literal) are evaluated in full (`eval.rs`).

mod eval;
mod index;
mod load;

use std::sync::OnceLock;

use cordon_proto::Event;

use crate::fields::{self, Fields};
use crate::sigma::{Rule, RuleError};
pub use load::{LoadReport, load_dir, yaml_files};

/// Who a rule is: what a match, a finding and an alert carry about it (the Sigma licence
/// requires the author on every match). Declared once, here, and used by all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleIdentity {
    pub rule_id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
    pub author: String,
}

impl RuleIdentity {
    pub fn of(rule: &Rule) -> Self {
        Self {
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            level: rule.level.clone(),
            tags: rule.tags.clone(),
            author: rule.author.clone(),
        }
    }
}

/// Compiled rules, each enabled or not, in the order they were first inserted.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<(Rule, bool)>,
    index: OnceLock<index::Index>,
}

impl RuleSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule, enabled, replacing one with the same id (which keeps its place and its
    /// enabled state). Rules from [`crate::parse_rule`] are already compiled, so this only
    /// fails for a rule whose detection cannot be indexed (none today).
    pub fn insert(&mut self, rule: Rule) -> Result<(), RuleError> {
        match self.rules.iter_mut().find(|(r, _)| r.id == rule.id) {
            Some(slot) => slot.0 = rule,
            None => self.rules.push((rule, true)),
        }
        self.index = OnceLock::new();
        Ok(())
    }

    /// Removes a rule; false if there was none with that id.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(r, _)| r.id != id);
        let removed = self.rules.len() != before;
        if removed {
            self.index = OnceLock::new();
        }
        removed
    }

    /// Enables or disables a rule; false if there is none with that id.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> bool {
        let Some(slot) = self.rules.iter_mut().find(|(r, _)| r.id == id) else {
            return false;
        };
        if slot.1 != enabled {
            slot.1 = enabled;
            self.index = OnceLock::new();
        }
        true
    }

    pub fn get(&self, id: &str) -> Option<(&Rule, bool)> {
        self.rules
            .iter()
            .find(|(r, _)| r.id == id)
            .map(|(r, e)| (r, *e))
    }

    pub fn rules(&self) -> impl Iterator<Item = (&Rule, bool)> {
        self.rules.iter().map(|(r, e)| (r, *e))
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every enabled rule that matches the event, in rule order. Events no rule category
    /// covers (exits, deletions, notices) match nothing.
    pub fn evaluate(&self, event: &Event) -> Vec<RuleIdentity> {
        match fields::view(event) {
            Some((category, f)) => self.evaluate_fields(category, &f),
            None => Vec::new(),
        }
    }

    /// The same over any field source, for a category named by the caller
    /// (`process_creation`, `file_event`, `network_connection` or `dns_query`).
    pub fn evaluate_fields(&self, category: &str, fields: &dyn Fields) -> Vec<RuleIdentity> {
        let index = self.index.get_or_init(|| index::Index::build(&self.rules));
        index
            .matching(category, fields)
            .into_iter()
            .map(|i| RuleIdentity::of(&self.rules[i].0))
            .collect()
    }

    /// Builds the index now rather than on the first event after a change.
    pub fn prepare(&self) {
        self.index.get_or_init(|| index::Index::build(&self.rules));
    }
}

#[cfg(test)]
mod tests;
