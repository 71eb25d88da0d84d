//! The controller's business rules as pure functions: no I/O, no store, no transport (the
//! audit chain's hashing and checking, alert and incident grouping, token use and the labels
//! an enrolment gives, roles and permissions, when a principal may act). The core decides
//! with them, and every store backend applies them inside its own transactions (where a
//! decision and its write must be atomic), so the rules are written once and a second backend
//! cannot drift from the first. This module is the bottom of the controller: it imports
//! nothing else of it.

pub mod audit;
pub mod grouping;
pub mod people;
pub mod roles;
pub mod tokens;
