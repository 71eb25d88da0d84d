//! Collections (issue #15): what an analyst asks a host during an investigation (its
//! processes, sockets, logins, persistence, packages, files), answered as rows.
//!
//! A collector reads the host under a [`Host`] (the root of its file system and its procfs,
//! so tests point it at a fixture) and pushes one JSON object per finding into a [`Sink`],
//! which enforces the collection's [`Limits`]: past the time limit or the result-size limit
//! the collection ends as truncated, with what was gathered kept. A collector never fails on
//! one unreadable entry: it records why in the row, or in the outcome's `errors`, and goes
//! on. File names are kept losslessly ([`os_value`]). Blocking: run a collection on a
//! blocking task.

pub mod args;
pub mod command;
pub mod fetch;
pub mod file;
pub mod logins;
pub mod packages;
pub mod persistence;
pub mod processes;
pub mod sockets;
pub mod throttle;
pub mod users;
pub mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fs;

use serde_json::{Map, Value, json};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use args::{Args, ArgsError};

/// Where a collector looks: `/` and `/proc` on a host; a fixture's directories in tests.
#[derive(Debug, Clone)]
pub struct Host {
    pub root: PathBuf,
    pub proc: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
            proc: PathBuf::from("/proc"),
        }
    }
}

impl Host {
    /// `path` (absolute, as on the host) under this host's root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// `path` under the root as the host names it (the root prefix taken off).
    pub fn host_path<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, Path> {
        match path.strip_prefix(&self.root) {
            Ok(rest) => Path::new("/").join(rest).into(),
            Err(_) => path.into(),
        }
    }
}

/// How far a collection may go.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest it may run.
    pub time: Duration,
    /// Most bytes of rows (as JSON) it may return.
    pub bytes: usize,
    /// The agent's CPU use (in cores) above which the collection pauses (`throttle.rs`); 0
    /// for none.
    pub cpu: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(300),
            bytes: 64 << 20,
            cpu: 0.0,
        }
    }
}

/// Why a collection stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncated {
    /// Its time limit passed.
    Time,
    /// Its rows reached the result-size limit.
    Size,
    /// It found as many results as it was asked for.
    Results,
}

impl Truncated {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Time => "time limit",
            Self::Size => "size limit",
            Self::Results => "result limit",
        }
    }
}

/// What a collection gathered.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Vec<Value>,
    /// Set when a limit ended it early; the rows are what was gathered until then.
    pub truncated: Option<Truncated>,
    /// What could not be read (each once, with why), beside the rows.
    pub errors: Vec<String>,
}

/// The largest row kept: a message to the controller must hold it whole.
pub const MAX_ROW: usize = 3 << 20;

/// The most errors an outcome keeps (each is a line of text).
const MAX_ERRORS: usize = 100;

/// Where a collector puts its rows; it says when to stop.
pub struct Sink {
    outcome: Outcome,
    bytes: usize,
    limits: Limits,
    deadline: Instant,
    throttle: Option<throttle::Throttle>,
}

/// Whether a collector goes on.
pub type Flow = std::ops::ControlFlow<()>;

impl Sink {
    pub fn new(limits: Limits) -> Self {
        Self {
            outcome: Outcome::default(),
            bytes: 0,
            limits,
            deadline: Instant::now() + limits.time,
            throttle: throttle::Throttle::new(limits.cpu),
        }
    }

    /// Adds a row; `Break` once a limit is reached (the row that would pass the size limit
    /// is not kept).
    pub fn push(&mut self, row: Value) -> Flow {
        self.check()?;
        let size = row.to_string().len();
        if size > MAX_ROW {
            self.error(format!(
                "a row of {size} bytes is over the {MAX_ROW} bytes a row may have; left out"
            ));
            return Flow::Continue(());
        }
        if self.bytes + size > self.limits.bytes {
            return self.stop(Truncated::Size);
        }
        self.bytes += size;
        self.outcome.rows.push(row);
        Flow::Continue(())
    }

    /// `Break` once the time limit has passed: call it in every loop that may run long.
    /// While the agent is over its CPU budget, it first waits (never past the deadline).
    pub fn check(&mut self) -> Flow {
        if self.outcome.truncated.is_some() {
            return Flow::Break(());
        }
        if let Some(t) = &mut self.throttle {
            t.pause(self.deadline);
        }
        if Instant::now() >= self.deadline {
            return self.stop(Truncated::Time);
        }
        Flow::Continue(())
    }

    /// Ends the collection early, as truncated for `why`.
    pub fn stop(&mut self, why: Truncated) -> Flow {
        self.outcome.truncated = Some(why);
        Flow::Break(())
    }

    /// Records what could not be read.
    pub fn error(&mut self, what: impl Into<String>) {
        if self.outcome.errors.len() < MAX_ERRORS {
            self.outcome.errors.push(what.into());
        }
    }

    pub fn finish(self) -> Outcome {
        self.outcome
    }
}

/// A file name or other OS string as JSON, losslessly: a string when it is UTF-8 (newlines
/// and all, which JSON escapes), else `{"hex": "<its bytes>"}`.
pub fn os_value(s: &OsStr) -> Value {
    match s.to_str() {
        Some(s) => Value::String(s.to_string()),
        None => json!({ "hex": hex::encode(s.as_bytes()) }),
    }
}

/// A row from `fields`, leaving out those that are null.
pub fn row(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Value::Object(map)
}

/// The collectors, by the name a command gives.
pub use cordon_proto::names::COLLECTORS;

/// Why a collection did not run.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no collector is named {0:?}; the collectors are {list}", list = COLLECTORS.join(", "))]
    Unknown(String),
    #[error(transparent)]
    Args(#[from] ArgsError),
}

/// Runs collector `name` with `args` on this host, as a collection command does (its own
/// thread, nice 19, `limits`), and writes its rows to `out`, one JSON object per line; then
/// says on stderr how it ended. An error if the collector or its arguments are refused.
pub fn print(
    name: &str,
    args: Args,
    limits: Limits,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let done = throttle::run_low(name.to_string(), args, Host::default(), limits)
        .join()
        .map_err(|_| anyhow::anyhow!("the collection panicked"))??;
    for row in &done.rows {
        writeln!(out, "{row}")?;
    }
    for e in &done.errors {
        eprintln!("could not read: {e}");
    }
    let ended = done.truncated.map_or("complete", Truncated::as_str);
    eprintln!("{name}: {} rows ({ended})", done.rows.len());
    Ok(())
}

/// Runs collector `name` with `args` on `host` within `limits`.
pub fn run(name: &str, args: &Args, host: &Host, limits: Limits) -> Result<Outcome, CollectError> {
    let mut sink = Sink::new(limits);
    match name {
        "processes" => {
            processes::check(args)?;
            processes::collect(host, &mut sink)
        }
        "packages" => {
            packages::check(args)?;
            packages::collect(host, &mut sink)
        }
        "persistence" => persistence::collect(host, &persistence::Options::from(args)?, &mut sink),
        "files" => walk::files(host, &walk::Search::from(args)?, &mut sink),
        "logins" => {
            logins::check(args)?;
            logins::logins(host, &mut sink)
        }
        "sockets" => {
            sockets::check(args)?;
            sockets::sockets(host, &mut sink)
        }
        _ => return Err(CollectError::Unknown(name.to_string())),
    };
    Ok(sink.finish())
}
