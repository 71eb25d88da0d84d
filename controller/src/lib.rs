//! Cordon controller: the CA and enrolment, the agent and admin gRPC services, the store,
//! and the `cordonctl` admin client.
#![forbid(unsafe_code)]

pub mod api;
pub mod ca;
pub mod client;
pub mod config;
pub mod core;
pub mod ctl;
pub mod detect;
pub mod init;
pub mod notify;
pub mod playbook;
pub mod policy;
pub mod store;
