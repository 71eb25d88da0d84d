//! The one error type of cordonctl's library: each variant is one way an invocation fails,
//! with what the user needs to act on it. `main` prints it and exits non-zero.

use crate::client::ClientError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "no credential: run `cordonctl login`, or pass --admin FILE (DATA_DIR/admin.toml for the first admin) or set CORDON_ADMIN"
    )]
    NoCredential,
    #[error(transparent)]
    Connect(#[from] ClientError),
    /// The controller answered a request with an error status.
    #[error("the controller refused: {message} ({code:?})")]
    Refused { message: String, code: tonic::Code },
    #[error("the event stream ended: {0}")]
    StreamEnded(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An argument or input file that is wrong, found before anything was sent.
    #[error("{0}")]
    Input(String),
    /// A host command that failed, expired or has no result yet.
    #[error("{0}")]
    Command(String),
    #[error(
        "the audit log FAILED verification at entry {seq}: {problem} ({checked} entries checked)"
    )]
    AuditBroken {
        seq: u64,
        problem: String,
        checked: u64,
    },
    /// A failure part-way through an import, saying how much went in before it.
    #[error("{source} ({done} of the file's entries were imported before this)")]
    Partial {
        done: u32,
        #[source]
        source: Box<CtlError>,
    },
}

impl CtlError {
    /// A file that could not be read.
    pub fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Read { path, source }
    }
}
