//! Cordon's detection engine: Sigma rules compiled once and evaluated on every event the
//! controller ingests.
//!
//! - [`sigma`] parses a rule's YAML, decides whether Cordon produces its log source, and
//!   compiles its detection (or refuses it, naming the rule and the construct);
//! - [`fields`] and [`fields_net`] map Cordon's events onto Sigma's field names;
//! - [`ruleset`] holds the compiled rules, indexed so that an event is scanned once per field
//!   (Aho-Corasick over every rule's literals) and only rules that can match are evaluated.
//! - [`iocs`] says what an indicator (hash, address, domain) is and normalises it;
//! - [`samples`] lists commands that must fire some community rules and near misses that must
//!   not, for the tests here and the end-to-end tests that run them on a real host.
#![forbid(unsafe_code)]

pub mod fields;
pub mod fields_net;
pub mod iocs;
pub mod ruleset;
pub mod samples;
pub mod sigma;
pub mod yaml;

pub use ruleset::{LoadReport, RuleIdentity, RuleSet, load_dir, yaml_files};
pub use sigma::{LogSource, Rule, RuleError, parse_rule};
