//! A process tree as nested lists (`#process-tree`): each ancestor holds the next, down to
//! the process itself (marked `aria-current="true"` and the class `current`), which holds
//! its descendants. Each process shows its pid, its command line (every program it ran, if
//! it ran more than one), when it started and how it ended. Also the page of one tree
//! (`GET /agents/{id}/tree?pid=P`), which the events search and the incident page link to.

use super::guard::Caller;
use super::layout::{page, when};
use crate::core::process_tree::{Proc, ProcessTree, TreeNode};
use cordon_proto::tree::ending;
use maud::{Markup, html};

pub fn tree(t: &ProcessTree) -> Markup {
    html! {
        div #process-tree {
            ul.tree { (chain(&t.ancestors, &t.process)) }
            @if t.truncated { p { "Some descendants are left out: the tree is too large to show whole." } }
        }
    }
}

/// The first ancestor holding the rest of the chain, down to the process.
fn chain(ancestors: &[Proc], process: &TreeNode) -> Markup {
    match ancestors.split_first() {
        Some((a, rest)) => html! { li { (one(a)) ul { (chain(rest, process)) } } },
        None => node(process, true),
    }
}

fn node(n: &TreeNode, current: bool) -> Markup {
    html! {
        li.current[current] aria-current=[current.then_some("true")] {
            (one(&n.process))
            @if !n.children.is_empty() {
                ul { @for c in &n.children { (node(c, false)) } }
            }
        }
    }
}

/// One process: pid, command line(s), start, and how it ended if it has.
fn one(p: &Proc) -> Markup {
    let earlier = p.execs.len().saturating_sub(1);
    html! {
        span.process {
            span.pid { "pid " (p.pid) } " "
            code.command { (p.command()) }
            @if let Some(e) = p.execs.last().filter(|e| !e.stdio.is_empty()) { " " span.stdio { "[" (e.stdio) "]" } }
            @for e in &p.execs[..earlier] { " " span.earlier { "(earlier: " code { (e.command) } ")" } }
            @if p.started_ms > 0 { " started " (when(p.started_ms)) }
            @if p.execs.is_empty() { " (known only from its child's event)" }
            @if let Some(x) = p.exit { " (" (ending(x.code, x.signal, x.lifetime_ms)) ")" }
        }
    }
}

/// The page of one process tree.
pub fn tree_page(c: &Caller, t: &ProcessTree) -> Markup {
    let pid = t.process.process.pid;
    let body = html! {
        p {
            "On agent " a href={ "/agents/" (t.agent_id) } { code { (t.agent_id) } }
            ". " a href={ "/events?agent=" (t.agent_id) "&kind=process" } { "Its process events" }
        }
        (tree(t))
    };
    page(&format!("Process tree of pid {pid}"), Some(c), body)
}
