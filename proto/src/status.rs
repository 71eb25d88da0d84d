//! Readable descriptions of gRPC failures: the status message plus the chain of causes that
//! tonic keeps behind a bare "transport error".

use std::error::Error;

/// `message: cause: cause ...`, for logs and command-line errors.
pub fn describe(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = status.source();
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}
