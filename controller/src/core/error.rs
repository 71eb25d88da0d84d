//! The domain's one error type: a variant per way a core operation fails, with what the
//! caller needs to know. The transports turn it into their own answers (`api/error.rs` into
//! gRPC statuses); the audit log records its [`CoreError::outcome`].

use super::users::{MAX_PASSWORD, MIN_PASSWORD};
use crate::ca::CaError;
use crate::playbook::engine::EngineError;
use crate::playbook::spec::SpecError;
use crate::policy::grouping::LEVELS;
use crate::policy::people::{Inactive, InviteRefusal};
use crate::policy::roles::{Permission, Role, UnknownRole};
use crate::policy::tokens::EnrollRefusal;
use crate::store::{ChangeRefusal, IncidentStatus, StoreError};
use cordon_proto::limits::{
    MAX_BATCH_EVENTS, MAX_IOCS, MAX_LIST, MAX_PLAYBOOK_BYTES, MAX_QUERY_TEXT, MAX_RULE_BYTES,
    MAX_RULE_FILES, MAX_TOKEN_USES,
};

/// Longest token lifetime an administrator may ask for.
pub const MAX_TOKEN_TTL: u64 = 30 * 24 * 3600;

/// Longest outcome text kept in the audit log (a refusal's message).
const MAX_OUTCOME: usize = 1024;

/// What the caller is told about a failure inside the controller; the detail is logged.
pub const INTERNAL: &str = "internal error (see the controller log)";
/// What a caller is told while the controller cannot reach its store.
pub const STORE_UNAVAILABLE: &str =
    "the controller's store is unavailable (database down or overloaded); retry shortly";

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("an agent id is required")]
    AgentIdRequired,
    #[error("no agent {0:?}")]
    NoAgent(String),
    #[error("agent id prefix {0:?} is ambiguous")]
    AmbiguousAgent(String),
    /// A command for a revoked agent.
    #[error("agent {0} is revoked")]
    CommandForRevoked(String),
    /// A stream opened with the certificate of an agent the store does not know.
    #[error("agent {0} is not enrolled")]
    NotEnrolled(String),
    /// A stream opened with the certificate of a revoked agent.
    #[error("agent {0} is revoked")]
    Revoked(String),
    #[error("agent {0} is revoked or unknown")]
    RenewalRefused(String),
    #[error("the CSR's key is not the key of the presented certificate")]
    RenewalKeyMismatch,
    #[error("a command action is required")]
    ActionRequired,
    /// A fan-out without a label to select hosts by.
    #[error("a fan-out needs at least one label key=value to select hosts")]
    EmptySelector,
    #[error("no enrolled, unrevoked agent carries the labels {0}")]
    NoHostMatches(String),
    /// More hosts would be isolated than the person said (or than the configured cap).
    #[error(
        "{count} hosts match, more than the maximum of {max}: check the labels, and state the count with --max {count} to go ahead"
    )]
    FanOutTooLarge { count: usize, max: u32 },
    /// A fan-out never isolates a host that carries a protected label.
    #[error(
        "{count} matching hosts carry a protected label (such as {example}): a fan-out never isolates them; isolate those one by one, or leave them out with --skip-protected"
    )]
    FanOutProtected { count: usize, example: String },
    #[error("no command {0:?}")]
    NoCommand(String),
    #[error("no hunt {0:?}")]
    NoHunt(String),
    #[error("a hunt chooses its agents one way: by ids, by labels, or all")]
    HuntSelector,
    #[error("no collector is named {0:?}; the collectors are {list}", list = cordon_proto::names::COLLECTORS.join(", "))]
    UnknownCollector(String),
    #[error("a hunt lasts at most {max} hours", max = super::hunts::MAX_EXPIRY.as_secs() / 3600)]
    HuntTooLong,
    #[error("no fetched file {0:?}")]
    NoFetchedFile(String),
    #[error("stored command {id} is corrupt: {source}")]
    CorruptCommand {
        id: String,
        source: prost::DecodeError,
    },
    #[error("limit {0} is over the most one listing returns ({MAX_LIST})")]
    LimitTooHigh(u32),
    #[error("the text to search for is {0} bytes, over the limit of {MAX_QUERY_TEXT}")]
    QueryTooLong(usize),
    #[error("{0}")]
    BadLabels(String),
    #[error("token ttl is over {MAX_TOKEN_TTL} seconds")]
    TokenTtlTooLong,
    #[error("token uses is over {MAX_TOKEN_USES}")]
    TokenUsesTooMany,
    #[error("a valid enrolment token is required")]
    TokenMissing,
    #[error("{0}")]
    BadHost(String),
    #[error(transparent)]
    Enrol(#[from] EnrollRefusal),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("telemetry batch of {0} events is over the limit of {MAX_BATCH_EVENTS}")]
    BatchTooLarge(usize),
    #[error("too many sensor entries in a heartbeat")]
    TooManySensors,
    #[error("{0} rule files in one import; at most {MAX_RULE_FILES}")]
    TooManyRuleFiles(usize),
    #[error("{origin}: rule file of {size} bytes is over the limit of {MAX_RULE_BYTES}")]
    RuleTooLarge { origin: String, size: usize },
    #[error("no rule {0:?}")]
    NoRule(String),
    #[error("the rule does not load: {0}")]
    BadRule(#[source] cordon_detect::RuleError),
    #[error("the event is not valid: {0}")]
    BadTestEvent(String),
    #[error("the event is {0} bytes, over the limit of {max}", max = super::ruletest::MAX_TEST_EVENT)]
    TestEventTooLarge(usize),
    #[error("unknown indicator kind {0:?}: sha256, ip or domain")]
    UnknownIocKind(String),
    #[error("an indicator list needs a name of 1 to 128 characters")]
    BadIocList,
    #[error("only sha256 lists can be block lists (files denied at exec), not {0:?} lists")]
    BlockNeedsSha256(String),
    #[error("{0} indicators in one import; at most {MAX_IOCS}")]
    TooManyIocs(usize),
    #[error("entry {entry}: {why}")]
    BadIoc { entry: usize, why: String },
    #[error("unknown level {0:?}: one of {levels}", levels = LEVELS.join(", "))]
    UnknownLevel(String),
    #[error("no alert {0:?} (or the prefix is ambiguous)")]
    NoAlert(String),
    #[error("unknown incident status {0:?}: one of {all}", all = IncidentStatus::NAMES.join(", "))]
    UnknownIncidentStatus(String),
    #[error("no incident {0:?} (or the prefix is ambiguous)")]
    NoIncident(String),
    #[error("a note is 1 to 4096 characters of text")]
    BadNote,
    #[error("no event {agent}:{seq} is stored (never sent, or past retention)")]
    NoEvent { agent: String, seq: u64 },
    #[error(
        "event {agent}:{seq} is a {kind} event, not a process event: only a process event has a process tree"
    )]
    NotAProcessEvent {
        agent: String,
        seq: u64,
        kind: String,
    },
    #[error("no process {pid} in agent {agent}'s stored events")]
    NoProcess { agent: String, pid: u32 },
    #[error("{origin}: playbook of {size} bytes is over the limit of {MAX_PLAYBOOK_BYTES}")]
    PlaybookTooLarge { origin: String, size: usize },
    #[error(transparent)]
    BadPlaybook(#[from] SpecError),
    #[error("no playbook {0:?}")]
    NoPlaybook(String),
    #[error("playbook {0}: its dry_run setting could not be changed in its YAML")]
    DryRunNotSet(String),
    #[error("no approval {0:?}")]
    NoApproval(String),
    #[error("approval {id} is already {status}")]
    ApprovalDecided { id: String, status: String },
    #[error("planning the playbook: {0}")]
    Plan(#[source] EngineError),
    /// A principal whose certificate verified, but who may not act now.
    #[error("{0} is {1}")]
    Inactive(String, Inactive),
    #[error("permission {needed} is required; role {role} does not hold it")]
    PermissionDenied { needed: Permission, role: Role },
    #[error(transparent)]
    Invite(#[from] InviteRefusal),
    #[error("name {0:?}: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")]
    BadUserName(String),
    #[error("the expiry is in the past")]
    ExpiryInThePast,
    #[error("{0:?} is already taken (names are unique across people and service accounts)")]
    NameTaken(String),
    #[error("no principal {0:?}")]
    NoUser(String),
    #[error(transparent)]
    UserChange(#[from] ChangeRefusal),
    #[error(transparent)]
    BadRole(#[from] UnknownRole),
    #[error("unknown principal kind {0:?}: user or service")]
    BadKind(String),
    #[error("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
    BadPassword,
    #[error("{0} is a service account: its invite is taken up with cordonctl login")]
    ServiceInvite(String),
    #[error("{0} is a service account: only a person decides an approval")]
    ServiceCannotApprove(String),
    /// Four eyes: the request waits for another person (not an error of the caller's).
    #[error(
        "four eyes: this waits for a second person: approval {0}, to be decided by someone else with the approve permission"
    )]
    AwaitsSecondPerson(String),
    #[error(
        "{name} already has {max} streams open (events tail, downloads; listener.max_streams_per_admin): close one first"
    )]
    TooManyStreams { name: String, max: usize },
    #[error("approval {0} is your own request: another person decides it")]
    OwnRequest(String),
    #[error("approval {0} holds an unreadable command")]
    CorruptApproval(String),
    /// The person is told no more than this; the audit log records why.
    #[error("sign-in refused: wrong name, password or code, or this person may not sign in")]
    SignInRefused(super::signin::SignInRefusal),
    #[error("too many sign-in attempts; retry later")]
    SignInThrottled,
    #[error("hashing the password: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    /// A failure inside the controller (not the caller's doing).
    pub fn is_internal(&self) -> bool {
        match self {
            Self::Store(_) | Self::CorruptCommand { .. } | Self::Plan(_) | Self::Hashing(_) => true,
            Self::Ca(e) => !e.is_csr_problem(),
            _ => false,
        }
    }

    /// What the caller is told: the error itself, except for internal failures whose
    /// detail stays in the controller's log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(e) if e.is_unavailable() => STORE_UNAVAILABLE.into(),
            Self::Store(_) | Self::Hashing(_) => INTERNAL.into(),
            Self::Ca(e) if !e.is_csr_problem() => INTERNAL.into(),
            other => other.to_string(),
        }
    }

    /// The outcome an audit entry records for an action that failed this way:
    /// `error: ...` or `refused: ...`, at most [`MAX_OUTCOME`] bytes.
    pub fn outcome(&self) -> String {
        let kind = if self.is_internal() {
            "error"
        } else if matches!(self, Self::AwaitsSecondPerson(_)) {
            "pending"
        } else {
            "refused"
        };
        let mut text = format!("{kind}: {}", self.public_message());
        if text.len() > MAX_OUTCOME {
            let mut cut = MAX_OUTCOME;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_their_kind_and_stay_bounded() {
        assert_eq!(
            CoreError::NoAgent("x".into()).outcome(),
            "refused: no agent \"x\""
        );
        let disk = CoreError::Store(StoreError::Task("disk".into()));
        assert_eq!(disk.outcome(), format!("error: {INTERNAL}"));
        let long = CoreError::BadLabels("é".repeat(2000)).outcome();
        assert!(long.len() <= MAX_OUTCOME && long.starts_with("refused: é"));
    }
}
