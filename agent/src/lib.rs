//! Cordon agent: watches the host, keeps one mutually authenticated stream to the controller,
//! and carries out the signed commands it receives.
#![deny(unsafe_code)]

pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod edge;
pub mod outbox;
pub mod prevent;
pub mod reload;
pub mod respond;
pub mod sensors;
pub mod spool;
pub mod state;
pub mod swap;
pub mod sys;
pub mod telemetry;
pub mod uplink;
