//! The one place where the controller's errors become gRPC statuses. Internal failures are
//! logged here with their detail and reach the caller as a plain "internal error".

use crate::core::CoreError;
use crate::core::sessions::StreamEnd;
use tonic::{Code, Status};

/// The status code a caller gets for each failure.
fn code(e: &CoreError) -> Code {
    use CoreError::*;
    match e {
        NoAgent(_)
        | NoCommand(_)
        | NoHunt(_)
        | NoFetchedFile(_)
        | NoRule(_)
        | NoAlert(_)
        | NoIncident(_)
        | NoPlaybook(_)
        | NoApproval(_)
        | NoUser(_)
        | NoProcess { .. }
        | NoEvent { .. }
        | NoHostMatches(_) => Code::NotFound,
        CommandForRevoked(_) | ApprovalDecided { .. } | UserChange(_) => Code::FailedPrecondition,
        NameTaken(_) => Code::AlreadyExists,
        Inactive(..) | Invite(_) | SignInRefused(_) => Code::Unauthenticated,
        SignInThrottled | TooManyStreams { .. } => Code::ResourceExhausted,
        PermissionDenied { .. } | ServiceCannotApprove(_) | OwnRequest(_) => Code::PermissionDenied,
        AwaitsSecondPerson(_) | DryRunNotSet(_) | ServiceInvite(_) => Code::FailedPrecondition,
        FanOutTooLarge { .. } | FanOutProtected { .. } => Code::FailedPrecondition,
        NotEnrolled(_) | Revoked(_) | RenewalRefused(_) | RenewalKeyMismatch => {
            Code::PermissionDenied
        }
        Enrol(crate::policy::tokens::EnrollRefusal::AgentRevoked(_)) => Code::PermissionDenied,
        Enrol(_) | TokenMissing => Code::Unauthenticated,
        Ca(ca) if ca.is_csr_problem() => Code::InvalidArgument,
        Store(e) if e.is_unavailable() => Code::Unavailable,
        Store(_) | Ca(_) | CorruptCommand { .. } | Plan(_) | Hashing(_) | CorruptApproval(_) => {
            Code::Internal
        }
        AgentIdRequired
        | AmbiguousAgent(_)
        | ActionRequired
        | EmptySelector
        | HuntSelector
        | UnknownCollector(_)
        | HuntTooLong
        | LimitTooHigh(_)
        | QueryTooLong(_)
        | BadLabels(_)
        | TokenTtlTooLong
        | TokenUsesTooMany
        | BadHost(_)
        | BatchTooLarge(_)
        | TooManySensors
        | TooManyRuleFiles(_)
        | RuleTooLarge { .. }
        | UnknownIocKind(_)
        | BadIocList
        | BlockNeedsSha256(_)
        | TooManyIocs(_)
        | BadIoc { .. }
        | UnknownLevel(_)
        | UnknownIncidentStatus(_)
        | BadNote
        | PlaybookTooLarge { .. }
        | BadPlaybook(_)
        | BadUserName(_)
        | ExpiryInThePast
        | BadRole(_)
        | BadKind(_)
        | BadPassword
        | BadRule(_)
        | BadTestEvent(_)
        | TestEventTooLarge(_)
        | NotAProcessEvent { .. } => Code::InvalidArgument,
    }
}

impl From<CoreError> for Status {
    fn from(e: CoreError) -> Self {
        if e.is_internal() {
            tracing::error!(error = %e, "internal failure");
        }
        Status::new(code(&e), e.public_message())
    }
}

impl From<StreamEnd> for Status {
    fn from(end: StreamEnd) -> Self {
        match end {
            StreamEnd::Superseded => Status::aborted("superseded by a newer stream"),
            StreamEnd::Revoked => Status::permission_denied("this agent has been revoked"),
            StreamEnd::ShuttingDown => Status::unavailable("the controller is shutting down"),
        }
    }
}
