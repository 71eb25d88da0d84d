//! Commands that must fire particular community rules, and near misses that must not.
//!
//! Each [`Sample`] names a rule from SigmaHQ's Linux set (`../shared/sigma/linux/`), a shell
//! command that makes Cordon's sensors report something the rule fires on, and a similar
//! command that must not fire it. The commands are safe to run on a test host: no network,
//! no persistence, nothing outside `/tmp`, `/var/tmp` and `/dev/shm` is written (and what is
//! written there is removed). Some need root (`chown root`); the file samples need the file
//! sensor to watch `/tmp`.
//!
//! A command is run as `sh -c COMMAND` (`Command::new("sh").arg("-c").arg(command)`), so
//! the first exec is that shell: `/usr/bin/dash` with the command line `sh -c COMMAND`
//! (Debian's `sh`). [`Sample::observed`] lists every event the command makes as the sensors
//! would report it, as Sigma fields; the tests in this crate check each pair against the
//! engine with those, and the end-to-end tests run the commands on a real agent host.
//! Paths are Debian's (`/usr/bin/...`, `awk` is `mawk`).

use crate::fields::{FILE_EVENT, PROCESS_CREATION};

/// The shell that runs each command, as the sensor reports it.
pub const SHELL: &str = "/usr/bin/dash";

/// Something a command makes the sensors report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A program the `sh -c` runs (its parent is that shell).
    Exec {
        image: &'static str,
        command_line: &'static str,
    },
    /// A program started by another program the command runs.
    ExecBy {
        image: &'static str,
        command_line: &'static str,
        parent_image: &'static str,
        parent_command_line: &'static str,
    },
    /// A file the command creates or writes.
    File(&'static str),
}

/// One event as Sigma fields, with its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub category: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

impl Observation {
    /// The fields as the borrowed pairs [`crate::fields::Fields`] is implemented for.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// A rule, a command that fires it, and a near miss that must not.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub rule_id: &'static str,
    pub title: &'static str,
    pub command: &'static str,
    /// What `command` makes the sensors report, besides its `sh -c`.
    pub seen: &'static [Seen],
    pub near_miss: &'static str,
    pub near_miss_seen: &'static [Seen],
}

impl Sample {
    /// Every event running `command` makes, the `sh -c` first.
    pub fn observed(&self) -> Vec<Observation> {
        observe(self.command, self.seen)
    }

    pub fn near_miss_observed(&self) -> Vec<Observation> {
        observe(self.near_miss, self.near_miss_seen)
    }

    /// Whether this sample needs file events (the file sensor watching `/tmp`).
    pub fn needs_file_sensor(&self) -> bool {
        self.seen.iter().any(|s| matches!(s, Seen::File(_)))
    }
}

fn exec(image: &str, command_line: &str, parent: Option<(&str, &str)>) -> Observation {
    let mut fields = vec![
        ("Image", image.to_string()),
        ("CommandLine", command_line.to_string()),
    ];
    if let Some((pi, pc)) = parent {
        fields.push(("ParentImage", pi.to_string()));
        fields.push(("ParentCommandLine", pc.to_string()));
    }
    Observation {
        category: PROCESS_CREATION,
        fields,
    }
}

fn observe(command: &str, seen: &[Seen]) -> Vec<Observation> {
    let shell = format!("sh -c {command}");
    let mut out = vec![exec(SHELL, &shell, None)];
    for s in seen {
        out.push(match *s {
            Seen::Exec {
                image,
                command_line,
            } => exec(image, command_line, Some((SHELL, &shell))),
            Seen::ExecBy {
                image,
                command_line,
                parent_image,
                parent_command_line,
            } => exec(
                image,
                command_line,
                Some((parent_image, parent_command_line)),
            ),
            Seen::File(path) => Observation {
                category: FILE_EVENT,
                fields: vec![("TargetFilename", path.to_string())],
            },
        });
    }
    out
}

const fn run(image: &'static str, command_line: &'static str) -> Seen {
    Seen::Exec {
        image,
        command_line,
    }
}

mod table;
pub use table::SAMPLES;
