//! The one place where controller errors become gRPC statuses. Internal failures are logged
//! here with their detail and reach the caller as a plain "internal error".

use crate::store::{EnrollRefusal, StoreError};
use tonic::Status;

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Status::internal("internal error (see the controller log)")
    }
}

impl From<EnrollRefusal> for Status {
    fn from(r: EnrollRefusal) -> Self {
        match r {
            EnrollRefusal::AgentRevoked(_) => Status::permission_denied(r.to_string()),
            _ => Status::unauthenticated(r.to_string()),
        }
    }
}

impl From<crate::ca::CaError> for Status {
    fn from(e: crate::ca::CaError) -> Self {
        use crate::ca::CaError;
        match e {
            CaError::BadCsr(_) | CaError::CsrTooLarge(_) => Status::invalid_argument(e.to_string()),
            other => {
                tracing::error!(error = %other, "certificate failure");
                Status::internal("internal error (see the controller log)")
            }
        }
    }
}
