//! What `cordonctl` writes to standard output, made safe for a terminal and a pipe.
//!
//! Much of what it shows was written by hosts (hostnames, paths, command lines) or by rule
//! and playbook authors, so a text may hold terminal escape sequences that would retitle the
//! window, clear the screen or hide lines. [`outln!`] escapes every control character but the
//! newline in what it prints, and [`clean`] escapes newlines too, for one field of a table
//! row. JSON output is printed as it is (the encoder escapes controls itself).
//!
//! A reader that goes away (`cordonctl events query | head -1`) is not an error: on a broken
//! pipe the process exits quietly with status 0 instead of panicking as `println!` does.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

/// Prints a formatted line with control characters (other than the newline) escaped.
macro_rules! outln {
    () => {
        $crate::term::emit("\n", true)
    };
    ($($arg:tt)*) => {
        $crate::term::emit(&format!("{}\n", format_args!($($arg)*)), true)
    };
}
pub(crate) use outln;

/// Writes `text` to stdout, escaping controls when `escape`; exits quietly if the reader has
/// gone away.
pub fn emit(text: &str, escape: bool) {
    let text = if escape {
        escape_controls(text, true)
    } else {
        Cow::Borrowed(text)
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Anything else (a full disk behind a redirect) is worth saying, once.
        eprintln!("cordonctl: writing output: {e}");
        std::process::exit(1);
    }
}

/// One field of a table row, with newlines escaped too.
pub fn clean(field: &str) -> Cow<'_, str> {
    escape_controls(field, false)
}

/// Whether `c` changes what a terminal shows rather than showing a glyph: C0 and C1
/// controls, DEL, and the bidirectional overrides that reorder a line.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escapes controls as `\n`, `\r`, `\t` or `\u{..}`, keeping newlines when `keep_newline`.
fn escape_controls(text: &str, keep_newline: bool) -> Cow<'_, str> {
    let needs = |c: char| is_control(c) && !(keep_newline && c == '\n');
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !needs(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_made_visible() {
        let host = "web-1\u{1b}]0;owned\u{7}\u{1b}[2J";
        assert_eq!(
            escape_controls(host, true),
            "web-1\\u{1b}]0;owned\\u{7}\\u{1b}[2J"
        );
        assert_eq!(clean("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape_controls("a\nb", true), "a\nb");
        assert_eq!(clean("x\u{9b}31m\u{202e}"), "x\\u{9b}31m\\u{202e}");
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(clean("/tmp/ü ok"), Cow::Borrowed(_)));
    }
}
