//! The playbook file format (YAML), checked field by field: a bad file is refused with the
//! file, the line and the field named. See `playbooks/README.md` for the schema.

use cordon_detect::yaml::{self, Kind, Node, Pos};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub dry_run: bool,
    pub trigger: Trigger,
    pub steps: Vec<Step>,
}

/// Which alerts start a run: one of the rule ids, tags or the minimum level (any of those
/// given), on a host with all the labels, where every condition holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trigger {
    pub rules: Vec<String>,
    pub tags: Vec<String>,
    pub min_level: Option<String>,
    pub host_labels: BTreeMap<String, String>,
    pub conditions: Vec<Cond>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

/// `path|op: value` or `path|op: [values]` (any of them), compared without regard to case.
/// Paths: `alert.rule_id|title|level|tags|source`, `event.<Sigma field>`, `host.hostname`,
/// `host.labels.<key>`, `steps.<step name>` (the step's outcome).
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub path: String,
    pub op: Op,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Continue,
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTarget {
    /// The file of a file event.
    File,
    /// The executable of a process event.
    Exe,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    KillProcess {
        tree: bool,
    },
    IsolateHost {
        allow: Vec<String>,
    },
    ReleaseHost,
    QuarantineFile {
        target: FileTarget,
    },
    BlockIp {
        cidr: String,
        ttl_secs: u64,
    },
    CollectInventory,
    /// Runs a collector on the alert's host; its rows are kept with the step's command.
    Collect {
        collector: String,
        args: Vec<String>,
    },
    Notify {
        webhook: String,
        text: String,
    },
    WaitForApproval {
        proceed_on_timeout: bool,
    },
    SetIncident {
        status: Option<IncidentStatus>,
        severity: Option<String>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::KillProcess { .. } => "kill_process",
            Self::IsolateHost { .. } => "isolate_host",
            Self::ReleaseHost => "release_host",
            Self::QuarantineFile { .. } => "quarantine_file",
            Self::BlockIp { .. } => "block_ip",
            Self::CollectInventory => "collect_inventory",
            Self::Collect { .. } => "collect",
            Self::Notify { .. } => "notify",
            Self::WaitForApproval { .. } => "wait_for_approval",
            Self::SetIncident { .. } => "set_incident",
        }
    }

    /// Acts on the host's processes, files or network: guarded (dry run, protected hosts,
    /// the isolation budget).
    pub fn contains_host(&self) -> bool {
        matches!(
            self,
            Self::KillProcess { .. }
                | Self::IsolateHost { .. }
                | Self::QuarantineFile { .. }
                | Self::BlockIp { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub when: Vec<Cond>,
    pub timeout_secs: u64,
    pub on_failure: OnFailure,
    /// The agent runs it on its own, the moment the event happens (an edge policy).
    pub at_edge: bool,
}

/// A refused playbook file: where, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {pos}: {field}: {message}")]
pub struct SpecError {
    pub origin: String,
    pub pos: Pos,
    pub field: String,
    pub message: String,
}

use crate::policy::grouping::LEVELS;
use crate::store::IncidentStatus;
const DEFAULT_TIMEOUT: u64 = 60;
const MAX_TIMEOUT: u64 = 7 * 24 * 3600;
const MAX_STEPS: usize = 50;

struct Ctx<'a> {
    origin: &'a str,
}

impl Ctx<'_> {
    fn err(&self, node: &Node, field: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            origin: self.origin.into(),
            pos: node.pos,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The mapping's pairs, refusing keys not in `allowed`.
    fn map<'n>(
        &self,
        node: &'n Node,
        field: &str,
        allowed: &[&str],
    ) -> Result<&'n [(Node, Node)], SpecError> {
        let pairs = node.as_map().ok_or_else(|| {
            self.err(
                node,
                field,
                format!("must be a mapping, not {}", node.describe()),
            )
        })?;
        for (k, _) in pairs {
            let key = k.as_str().unwrap_or_default();
            if !allowed.contains(&key) {
                return Err(self.err(
                    k,
                    &join(field, key),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(pairs)
    }

    fn text(&self, node: &Node, field: &str) -> Result<String, SpecError> {
        match &node.kind {
            Kind::Scalar { text, .. } if !node.is_null() => Ok(text.clone()),
            _ => Err(self.err(
                node,
                field,
                format!("must be text, not {}", node.describe()),
            )),
        }
    }

    fn boolean(&self, node: &Node, field: &str) -> Result<bool, SpecError> {
        match node.as_str() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(self.err(node, field, "must be true or false")),
        }
    }

    fn number(&self, node: &Node, field: &str, max: u64) -> Result<u64, SpecError> {
        let n: u64 = node
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.err(node, field, "must be a whole number"))?;
        if n == 0 || n > max {
            return Err(self.err(node, field, format!("must be between 1 and {max}")));
        }
        Ok(n)
    }

    /// A text or a list of texts.
    fn texts(&self, node: &Node, field: &str) -> Result<Vec<String>, SpecError> {
        match &node.kind {
            Kind::Seq(items) => items.iter().map(|i| self.text(i, field)).collect(),
            _ => Ok(vec![self.text(node, field)?]),
        }
    }

    fn one_of(&self, node: &Node, field: &str, allowed: &[&str]) -> Result<String, SpecError> {
        let v = self.text(node, field)?;
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.err(
                node,
                field,
                format!("{v:?} is not one of {}", allowed.join(", ")),
            ))
        }
    }

    fn conds(&self, node: &Node, field: &str) -> Result<Vec<Cond>, SpecError> {
        let pairs = node
            .as_map()
            .ok_or_else(|| self.err(node, field, "must be a mapping of `path|op: value`"))?;
        pairs
            .iter()
            .map(|(k, v)| {
                let key = self.text(k, field)?;
                let here = join(field, &key);
                let (path, op) = match key.split_once('|') {
                    None => (key.as_str(), Op::Equals),
                    Some((p, "contains")) => (p, Op::Contains),
                    Some((p, "startswith")) => (p, Op::StartsWith),
                    Some((p, "endswith")) => (p, Op::EndsWith),
                    Some((_, other)) => {
                        return Err(self.err(
                            k,
                            &here,
                            format!("unknown operator {other:?} (contains, startswith, endswith)"),
                        ));
                    }
                };
                let root = path.split('.').next().unwrap_or_default();
                if !["alert", "event", "host", "steps"].contains(&root) || !path.contains('.') {
                    return Err(self.err(
                        k,
                        &here,
                        "a condition names alert.*, event.*, host.* or steps.*",
                    ));
                }
                Ok(Cond {
                    path: path.to_string(),
                    op,
                    values: self.texts(v, &here)?,
                })
            })
            .collect()
    }
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// Parses and checks a playbook file.
pub fn parse(text: &str, origin: &str) -> Result<Playbook, SpecError> {
    let cx = Ctx { origin };
    let docs = yaml::parse(text).map_err(|e| SpecError {
        origin: origin.into(),
        pos: e.pos,
        field: "(yaml)".into(),
        message: e.message,
    })?;
    let [doc] = docs.as_slice() else {
        return Err(SpecError {
            origin: origin.into(),
            pos: Pos { line: 1, col: 1 },
            field: "(file)".into(),
            message: format!("expected one YAML document, found {}", docs.len()),
        });
    };
    let pairs = cx.map(
        doc,
        "",
        &[
            "name",
            "description",
            "enabled",
            "dry_run",
            "trigger",
            "steps",
        ],
    )?;
    let mut pb = Playbook {
        name: String::new(),
        description: String::new(),
        enabled: true,
        dry_run: false,
        trigger: Trigger::default(),
        steps: Vec::new(),
    };
    let mut seen_trigger = false;
    for (k, v) in pairs {
        match k.as_str().unwrap_or_default() {
            "name" => {
                pb.name = cx.text(v, "name")?;
                let ok = !pb.name.is_empty()
                    && pb.name.len() <= 64
                    && pb
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !ok {
                    return Err(cx.err(v, "name", "1 to 64 letters, digits, '-', '_' or '.'"));
                }
            }
            "description" => pb.description = cx.text(v, "description")?,
            "enabled" => pb.enabled = cx.boolean(v, "enabled")?,
            "dry_run" => pb.dry_run = cx.boolean(v, "dry_run")?,
            "trigger" => {
                pb.trigger = trigger(&cx, v)?;
                seen_trigger = true;
            }
            "steps" => pb.steps = steps(&cx, v)?,
            _ => {}
        }
    }
    if pb.name.is_empty() {
        return Err(cx.err(doc, "name", "is required"));
    }
    if !seen_trigger {
        return Err(cx.err(doc, "trigger", "is required"));
    }
    if pb.steps.is_empty() {
        return Err(cx.err(doc, "steps", "at least one step is required"));
    }
    Ok(pb)
}

fn trigger(cx: &Ctx<'_>, node: &Node) -> Result<Trigger, SpecError> {
    let pairs = cx.map(
        node,
        "trigger",
        &["rules", "tags", "min_level", "host_labels", "conditions"],
    )?;
    let mut t = Trigger::default();
    for (k, v) in pairs {
        match k.as_str().unwrap_or_default() {
            "rules" => t.rules = cx.texts(v, "trigger.rules")?,
            "tags" => t.tags = cx.texts(v, "trigger.tags")?,
            "min_level" => t.min_level = Some(cx.one_of(v, "trigger.min_level", &LEVELS)?),
            "host_labels" => {
                let labels = v.as_map().ok_or_else(|| {
                    cx.err(v, "trigger.host_labels", "must be a mapping of labels")
                })?;
                for (lk, lv) in labels {
                    let key = cx.text(lk, "trigger.host_labels")?;
                    let value = cx.text(lv, &join("trigger.host_labels", &key))?;
                    t.host_labels.insert(key, value);
                }
            }
            "conditions" => t.conditions = cx.conds(v, "trigger.conditions")?,
            _ => {}
        }
    }
    if t.rules.is_empty() && t.tags.is_empty() && t.min_level.is_none() {
        return Err(cx.err(
            node,
            "trigger",
            "name at least one of rules, tags or min_level",
        ));
    }
    Ok(t)
}

fn steps(cx: &Ctx<'_>, node: &Node) -> Result<Vec<Step>, SpecError> {
    let Kind::Seq(items) = &node.kind else {
        return Err(cx.err(node, "steps", "must be a list of steps"));
    };
    if items.len() > MAX_STEPS {
        return Err(cx.err(node, "steps", format!("at most {MAX_STEPS} steps")));
    }
    let mut out: Vec<Step> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("steps[{i}]");
        let s = step(cx, item, &field)?;
        if out.iter().any(|o| o.name == s.name) {
            return Err(cx.err(
                item,
                &join(&field, "name"),
                format!("{:?} is used twice", s.name),
            ));
        }
        for c in &s.when {
            if let Some(name) = c.path.strip_prefix("steps.")
                && !out.iter().any(|o| o.name == name)
            {
                return Err(cx.err(
                    item,
                    &join(&field, "if"),
                    format!("refers to step {name:?}, which does not come before it"),
                ));
            }
        }
        out.push(s);
    }
    Ok(out)
}

mod step;
use step::step;

#[cfg(test)]
mod tests;
