//! Names and times as cordonctl shows them, in text and in JSON alike: each protocol enum by
//! its lower-case name (the tables are `cordon_proto::names`; the numbers never reach the
//! user), and times are RFC 3339.

pub use cordon_proto::names::{COMMAND_OUTCOME, COMMAND_STATUS, name};

pub fn status_name(status: i32) -> &'static str {
    name(COMMAND_STATUS, status)
}

pub fn outcome_name(outcome: i32) -> &'static str {
    name(COMMAND_OUTCOME, outcome)
}

/// Unix milliseconds as RFC 3339 ("-" for none).
pub fn time(ms: i64) -> String {
    cordon_proto::time::rfc3339(ms)
}

/// The first 12 characters of an id or hash, for a table column.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(time(0), "-");
        assert_eq!(time(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }
}
