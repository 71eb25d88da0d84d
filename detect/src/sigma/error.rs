//! Why a rule was not loaded. Every message names the rule (where it came from, and its title
//! and id once known) and the exact construct.

use std::fmt;

/// Which rule an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleName {
    /// A file path, or "inline".
    pub origin: String,
    pub title: Option<String>,
    pub id: Option<String>,
}

impl fmt::Display for RuleName {
    /// `rules/x.yml (Foo, 1234-...)`, `rules/x.yml (Foo)` or `rules/x.yml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        match (&self.title, &self.id) {
            (Some(t), Some(i)) => write!(f, " ({t}, {i})"),
            (Some(t), None) => write!(f, " ({t})"),
            (None, Some(i)) => write!(f, " ({i})"),
            (None, None) => Ok(()),
        }
    }
}

/// A rule that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule uses a construct this engine does not implement.
    #[error("{rule}: unsupported {construct}")]
    Unsupported { rule: RuleName, construct: String },
    /// The rule is for a log source Cordon does not produce.
    #[error("{rule}: skipped: {reason}")]
    Skipped { rule: RuleName, reason: String },
    /// The rule is malformed: YAML, a missing or wrong field, a bad condition or value.
    #[error("{rule}: {message}")]
    Invalid { rule: RuleName, message: String },
}

/// The three kinds of [`RuleError`], for callers that sort them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Unsupported,
    Skipped,
    Invalid,
}

impl RuleError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuleError::Unsupported { .. } => ErrorKind::Unsupported,
            RuleError::Skipped { .. } => ErrorKind::Skipped,
            RuleError::Invalid { .. } => ErrorKind::Invalid,
        }
    }

    pub fn is_skipped(&self) -> bool {
        self.kind() == ErrorKind::Skipped
    }

    pub fn rule(&self) -> &RuleName {
        match self {
            RuleError::Unsupported { rule, .. }
            | RuleError::Skipped { rule, .. }
            | RuleError::Invalid { rule, .. } => rule,
        }
    }

    /// The message without the rule's name: the construct, reason or problem.
    pub fn detail(&self) -> &str {
        match self {
            RuleError::Unsupported { construct, .. } => construct,
            RuleError::Skipped { reason, .. } => reason,
            RuleError::Invalid { message, .. } => message,
        }
    }
}

/// A problem found while compiling, before the rule's name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    Unsupported(String),
    Skipped(String),
    Invalid(String),
}

impl Problem {
    pub(crate) fn into_error(self, rule: RuleName) -> RuleError {
        match self {
            Problem::Unsupported(construct) => RuleError::Unsupported { rule, construct },
            Problem::Skipped(reason) => RuleError::Skipped { rule, reason },
            Problem::Invalid(message) => RuleError::Invalid { rule, message },
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Problem {
    Problem::Invalid(message.into())
}

pub(crate) fn unsupported(construct: impl Into<String>) -> Problem {
    Problem::Unsupported(construct.into())
}
