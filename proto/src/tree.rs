//! A process tree as indented text, for people: what `cordonctl events tree` prints and what
//! the incident report shows. The ancestors lead down to the process the tree was asked for
//! (marked `▶`), under which its descendants branch. Each process shows its pid, when it
//! started, what it ran (its latest command line, then any earlier ones) and how it ended.

use crate::report::duration;
use crate::time::rfc3339;
use crate::{ProcessNode, ProcessTree};
use std::fmt::Write;

/// What marks the process the tree was asked for.
pub const MARK: &str = "▶ ";

/// A text on one line: host-written line breaks shown as escapes.
fn one_line(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r")
}

/// How a process ended: "exited 0 after 1.204 s", "killed by signal 9" (a lifetime of 0 is
/// unknown).
pub fn ending(code: i32, signal: u32, lifetime_ms: u64) -> String {
    let how = match signal {
        0 => format!("exited {code}"),
        sig => format!("killed by signal {sig}"),
    };
    match lifetime_ms {
        0 => how,
        ms => format!("{how} after {}", duration(ms.min(i64::MAX as u64) as i64)),
    }
}

/// One process on one line (without its place in the tree).
pub fn describe(p: &ProcessNode) -> String {
    let mut s = format!("pid {}", p.pid);
    match p.started_ms {
        0 => s.push_str("  start unknown"),
        ms => {
            let _ = write!(s, "  started {}", rfc3339(ms));
        }
    }
    let _ = write!(s, "  {}", one_line(&p.command));
    if let Some(e) = p.execs.last().filter(|e| !e.stdio.is_empty()) {
        let _ = write!(s, "  [{}]", e.stdio);
    }
    let earlier = p.execs.len().saturating_sub(1);
    for e in &p.execs[..earlier] {
        let _ = write!(s, "  (earlier: {})", one_line(&e.command));
    }
    if p.execs.is_empty() {
        s.push_str("  (known only from its child's event)");
    }
    if p.exited {
        let end = ending(p.exit_code, p.exit_signal, p.lifetime_ms);
        let _ = write!(s, "  [{end}]");
    }
    s
}

/// Where a line starts: what the levels above it drew, then its own branch.
#[derive(Clone, Copy)]
enum Branch {
    Root,
    Middle,
    Last,
}

fn line(out: &mut String, lead: &str, branch: Branch, p: &ProcessNode, marked: bool) {
    let branch = match branch {
        Branch::Root => "",
        Branch::Middle => "├─ ",
        Branch::Last => "└─ ",
    };
    let mark = if marked { MARK } else { "" };
    let _ = writeln!(out, "{lead}{branch}{mark}{}", describe(p));
}

/// What the lines below a node at `branch` start with.
fn lead_below(lead: &str, branch: Branch) -> String {
    match branch {
        Branch::Root => lead.to_string(),
        Branch::Middle => format!("{lead}│  "),
        Branch::Last => format!("{lead}   "),
    }
}

/// `n` and its descendants.
fn subtree(out: &mut String, lead: &str, branch: Branch, n: &ProcessNode, marked: bool) {
    line(out, lead, branch, n, marked);
    let below = lead_below(lead, branch);
    for (i, c) in n.children.iter().enumerate() {
        let last = i + 1 == n.children.len();
        let b = if last { Branch::Last } else { Branch::Middle };
        subtree(out, &below, b, c, false);
    }
}

/// The tree as text, one process per line.
pub fn text(t: &ProcessTree) -> String {
    let mut out = String::new();
    let mut lead = String::new();
    let mut branch = Branch::Root;
    for a in &t.ancestors {
        line(&mut out, &lead, branch, a, false);
        lead = lead_below(&lead, branch);
        branch = Branch::Last;
    }
    match &t.process {
        Some(p) => subtree(&mut out, &lead, branch, p, true),
        None => out.push_str("(no process)\n"),
    }
    if t.truncated {
        out.push_str("(some descendants are left out: the tree is too large to show whole)\n");
    }
    out
}

/// What the tree is of: "event AGENT:SEQ", or "agent AGENT".
pub fn title(t: &ProcessTree) -> String {
    match t.seq {
        0 => format!("agent {}", t.agent_id),
        seq => format!("event {}:{seq}", t.agent_id),
    }
}

#[cfg(test)]
mod tests;
