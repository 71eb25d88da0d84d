//! The Cordon wire protocol (`cordon.v1`): generated prost messages and tonic services, the
//! message size limits every endpoint enforces, the admin credential file, and small helpers
//! shared by both ends.
#![forbid(unsafe_code)]

/// Generated code for package `cordon.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("cordon.v1");
}

pub mod admin;
pub mod channel;
pub mod config;
pub mod edge;
pub mod files;
pub mod identity;
pub mod json;
pub mod limits;
pub mod names;
pub mod pin;
pub mod process;
pub mod report;
pub mod secrets;
pub mod status;
pub mod streams;
pub mod time;
pub mod tree;

pub use v1::*;

impl From<action::Kind> for Action {
    fn from(kind: action::Kind) -> Self {
        Action { kind: Some(kind) }
    }
}
