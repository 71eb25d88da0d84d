//! Each protocol enum's values and their lower-case names, as people and scripts see them
//! (cordonctl's text and `--json`, the console's JSON downloads): the numbers never reach the
//! user.

use crate::{
    CommandOutcome, CommandStatus, file_event, network_event, prevention_event, process_event,
    stdio,
};

/// One protocol enum's values and their names.
pub type Names = [(i32, &'static str)];

pub const COMMAND_STATUS: &Names = &[
    (CommandStatus::Unspecified as i32, "unknown"),
    (CommandStatus::Pending as i32, "pending"),
    (CommandStatus::Delivered as i32, "delivered"),
    (CommandStatus::Succeeded as i32, "succeeded"),
    (CommandStatus::Failed as i32, "failed"),
    (CommandStatus::Expired as i32, "expired"),
];

pub const COMMAND_OUTCOME: &Names = &[
    (CommandOutcome::Unspecified as i32, "unknown"),
    (CommandOutcome::Succeeded as i32, "succeeded"),
    (CommandOutcome::Failed as i32, "failed"),
    (CommandOutcome::Refused as i32, "refused"),
];

pub const PROCESS_KIND: &Names = &[
    (process_event::Kind::Unspecified as i32, "unknown"),
    (process_event::Kind::Exec as i32, "exec"),
    (process_event::Kind::Exit as i32, "exit"),
];

pub const STDIO_KIND: &Names = &[
    (stdio::Kind::Unspecified as i32, "unknown"),
    (stdio::Kind::None as i32, "none"),
    (stdio::Kind::File as i32, "file"),
    (stdio::Kind::Pipe as i32, "pipe"),
    (stdio::Kind::Tty as i32, "tty"),
    (stdio::Kind::Socket as i32, "socket"),
    (stdio::Kind::Other as i32, "other"),
];

pub const FILE_KIND: &Names = &[
    (file_event::Kind::Unspecified as i32, "unknown"),
    (file_event::Kind::Create as i32, "create"),
    (file_event::Kind::Modify as i32, "modify"),
    (file_event::Kind::Delete as i32, "delete"),
    (file_event::Kind::Rename as i32, "rename"),
    (file_event::Kind::Attrib as i32, "attrib"),
];

pub const NETWORK_KIND: &Names = &[
    (network_event::Kind::Unspecified as i32, "unknown"),
    (network_event::Kind::Connect as i32, "connect"),
    (network_event::Kind::Accept as i32, "accept"),
    (network_event::Kind::Listen as i32, "listen"),
    (network_event::Kind::Close as i32, "close"),
];

pub const PREVENTION_KIND: &Names = &[
    (prevention_event::Kind::Unspecified as i32, "unknown"),
    (prevention_event::Kind::ExecDenied as i32, "exec_denied"),
    (prevention_event::Kind::TamperDenied as i32, "tamper_denied"),
];

/// The name of `value` in `names` ("unknown" for a number this cordonctl does not know).
pub fn name(names: &Names, value: i32) -> &'static str {
    names
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("unknown", |(_, n)| n)
}

/// The value called `name` in `names`.
pub fn value(names: &Names, name: &str) -> Option<i32> {
    names.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
}

/// The collectors an agent runs, by the name a collection or hunt gives.
pub const COLLECTORS: [&str; 6] = [
    "processes",
    "sockets",
    "logins",
    "persistence",
    "packages",
    "files",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_maps_back_to_its_value() {
        for names in [
            COMMAND_STATUS,
            COMMAND_OUTCOME,
            PROCESS_KIND,
            FILE_KIND,
            NETWORK_KIND,
            PREVENTION_KIND,
            STDIO_KIND,
        ] {
            for (v, n) in names {
                assert_eq!(value(names, n), Some(*v));
                assert_eq!(name(names, *v), *n);
            }
        }
        assert_eq!(name(PROCESS_KIND, 99), "unknown");
        assert_eq!(
            name(COMMAND_STATUS, CommandStatus::Succeeded as i32),
            "succeeded"
        );
    }
}
