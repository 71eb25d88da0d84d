//! Cordon controller: the CA and enrolment, the agent and admin gRPC services, the web
//! console, the store.
//! (`cordonctl`, the admin client, is a crate of its own that talks to the admin service.)
#![forbid(unsafe_code)]

pub mod api;
pub mod ca;
pub mod cli;
pub mod config;
pub mod console;
pub mod core;
pub mod detect;
pub mod healthz;
pub mod http2;
pub mod init;
pub mod notify;
pub mod playbook;
pub mod policy;
pub mod recover;
pub mod reload;
pub mod server;
pub mod store;
