//! Visible test skips. A test that cannot run on this machine (no root, no community rules,
//! no CA store) returns early and so counts as passed: cargo shows a passing test's stderr to
//! nobody. [`skip`] says why on stderr and, when the environment variable [`SKIPS_FILE`]
//! names a file (`scripts/test.sh` sets it), appends one line `TEST<TAB>REASON` to it, so the
//! run ends with every skip counted and named.
//!
//! Whether a skip is allowed at all (under `CI=true` most are failures) stays with the caller.

#![forbid(unsafe_code)]

use std::io::Write;

/// The environment variable naming the file that skips are appended to.
pub const SKIPS_FILE: &str = "CORDON_SKIPS_FILE";

/// Records that `test` did not run, and why. Panics if the skips file is named but cannot
/// be written: a skip nobody can see is what this crate exists to prevent.
pub fn skip(test: &str, reason: &str) {
    eprintln!("\n*** SKIPPED {test}: {reason} ***\n");
    let Some(path) = std::env::var_os(SKIPS_FILE) else {
        return;
    };
    let line = format!("{}\t{}\n", one_line(test), one_line(reason));
    // One write of one short line to a file opened for appending: lines from tests running
    // in parallel (threads or processes) do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "{test} skipped ({reason}), and recording that in {} failed: {e}",
            std::path::Path::new(&path).display()
        );
    }
}

/// Whether this is a CI run (`CI=true`), where a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn one_line(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_keeps_the_record_format() {
        assert_eq!(one_line("a\tb\nc\rd"), "a b c d");
    }
}
