//! Sigma rules: parsing a rule's YAML, checking its log source, and compiling its detection.
//!
//! [`parse_rule`] does all of it, so a rule that returns `Ok` will run; what it refuses comes
//! back as a [`RuleError`] that names the rule and the construct.

pub(crate) mod compiled;
mod condition;
mod detection;
mod error;
mod logsource;
pub(crate) mod value;

use std::sync::Arc;

pub use error::{ErrorKind, RuleError, RuleName};
pub use logsource::LogSource;

use crate::yaml::{self, Kind, Node};
use error::{Problem, invalid, unsupported};

/// The severities Sigma defines, lowest first.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// A parsed and compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub status: String,
    /// One of [`LEVELS`]; `medium` when the rule gives none.
    pub level: String,
    pub author: String,
    pub description: String,
    pub tags: Vec<String>,
    pub logsource: LogSource,
    pub falsepositives: Vec<String>,
    pub references: Vec<String>,
    pub date: String,
    pub modified: String,
    /// A file path, or "inline".
    pub origin: String,
    /// The YAML text, so the rule can be stored and parsed again.
    pub source: String,
    pub(crate) detection: Arc<compiled::Detection>,
}

impl Rule {
    /// The Cordon category the rule runs on: `process_creation`, `file_event`, `network_connection` or `dns_query`.
    pub fn category(&self) -> &'static str {
        self.detection.category
    }

    /// The fields the rule tests that Cordon never reports for its category (`LogonId`, or
    /// `Image` on file events): tests of them see an absent field.
    pub fn unmapped_fields(&self) -> Vec<&str> {
        let known = crate::fields::known_fields(self.category());
        self.detection
            .fields
            .iter()
            .map(String::as_str)
            .filter(|f| !known.contains(f))
            .collect()
    }

    /// The rule's name as errors show it.
    pub fn name(&self) -> RuleName {
        RuleName {
            origin: self.origin.clone(),
            title: Some(self.title.clone()),
            id: Some(self.id.clone()),
        }
    }
}

/// Parses and compiles one rule. `origin` (a path or "inline") is kept on the rule and named
/// in errors.
pub fn parse_rule(yaml_text: &str, origin: &str) -> Result<Rule, RuleError> {
    let mut name = RuleName {
        origin: origin.to_string(),
        ..RuleName::default()
    };
    let docs = yaml::parse(yaml_text).map_err(|e| RuleError::Invalid {
        rule: name.clone(),
        message: format!("YAML: {e}"),
    })?;
    let root = match docs.as_slice() {
        [one] => one,
        [] => return Err(invalid("empty document").into_error(name)),
        [first, ..] => {
            // Name the rule if the first document does.
            name.title = text(first, "title").ok().flatten();
            name.id = text(first, "id").ok().flatten();
            return Err(
                unsupported("multi-document YAML (rule collections and `action: global`)")
                    .into_error(name),
            );
        }
    };
    name.title = text(root, "title").ok().flatten();
    name.id = text(root, "id").ok().flatten();
    build(root, yaml_text, origin).map_err(|p| p.into_error(name))
}

fn build(root: &Node, source: &str, origin: &str) -> Result<Rule, Problem> {
    if root.as_map().is_none() {
        return Err(invalid(format!(
            "a rule must be a mapping, not {}",
            root.describe()
        )));
    }
    if root.get("correlation").is_some() {
        return Err(unsupported("correlation rule"));
    }
    let title = text(root, "title")?.ok_or_else(|| invalid("no `title`"))?;
    let id = text(root, "id")?.ok_or_else(|| invalid("no `id` (rules are identified by id)"))?;
    let level = match text(root, "level")? {
        None => "medium".to_string(),
        Some(l) if LEVELS.contains(&l.as_str()) => l,
        Some(l) => {
            return Err(invalid(format!(
                "level `{l}`: must be one of {}",
                LEVELS.join(", ")
            )));
        }
    };
    let ls = root
        .get("logsource")
        .ok_or_else(|| invalid("no `logsource`"))?;
    if ls.as_map().is_none() {
        return Err(invalid("logsource: must be a mapping"));
    }
    let logsource = LogSource {
        category: text(ls, "category")?,
        product: text(ls, "product")?,
        service: text(ls, "service")?,
    };
    let category = logsource.cordon_category()?;
    let det = root
        .get("detection")
        .ok_or_else(|| invalid("no `detection`"))?;
    let detection = detection::compile(det, category)?;
    Ok(Rule {
        id,
        title,
        status: text(root, "status")?.unwrap_or_default(),
        level,
        author: text(root, "author")?.unwrap_or_default(),
        description: text(root, "description")?.unwrap_or_default(),
        tags: list(root, "tags")?,
        logsource,
        falsepositives: list(root, "falsepositives")?,
        references: list(root, "references")?,
        date: text(root, "date")?.unwrap_or_default(),
        modified: text(root, "modified")?.unwrap_or_default(),
        origin: origin.to_string(),
        source: source.to_string(),
        detection: Arc::new(detection),
    })
}

/// A string field of a mapping; `None` when absent or null.
fn text(map: &Node, key: &str) -> Result<Option<String>, Problem> {
    match map.get(key) {
        None => Ok(None),
        Some(n) if n.is_null() => Ok(None),
        Some(n) => match n.as_str() {
            Some(s) => Ok(Some(s.to_string())),
            None => Err(invalid(format!(
                "`{key}` ({}): must be a string, not {}",
                n.pos,
                n.describe()
            ))),
        },
    }
}

/// A list of strings (a single string counts as a list of one).
fn list(map: &Node, key: &str) -> Result<Vec<String>, Problem> {
    match map.get(key) {
        None => Ok(Vec::new()),
        Some(n) if n.is_null() => Ok(Vec::new()),
        Some(n) => match &n.kind {
            Kind::Scalar { text, .. } => Ok(vec![text.clone()]),
            Kind::Seq(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        invalid(format!("`{key}` ({}): must hold only strings", i.pos))
                    })
                })
                .collect(),
            Kind::Map(_) => Err(invalid(format!(
                "`{key}` ({}): must be a list of strings",
                n.pos
            ))),
        },
    }
}

#[cfg(test)]
mod tests;
