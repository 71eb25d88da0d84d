//! The process tree of one process, from stored telemetry: its ancestors up to the oldest
//! one the events know, and its descendants, each with its command line. Processes are
//! found by index (`Events::process_events`, by pid and by parent pid); since pids are
//! reused, a process is a pid *and* a start time (clock ticks since boot, as the sensor
//! reports it; its wall-clock start where ticks are missing): a parent is the latest process
//! with the parent pid that started no later than its child, and a child is one that started
//! while its parent's pid still belonged to that parent.

use super::{Controller, CoreError};
use crate::store::{Events, ProcessLink, StoreError, StoredEvent};
use cordon_proto::{Event, ProcessEvent, event, process_event};
use prost::Message;
use serde::Serialize;

/// Most ancestors followed, and most levels of descendants.
const MAX_DEPTH: usize = 32;
/// Most descendants shown.
const MAX_DESCENDANTS: usize = 200;
/// Most events read for one pid (the newest).
const PER_PID: u32 = 500;

/// One program a process ran (a process runs another with each exec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exec {
    /// The exec event's sequence number on its agent.
    pub seq: u64,
    pub time_ms: i64,
    pub command: String,
    /// Its standard streams when unusual (`cordon_proto::streams::summary`), else empty.
    pub stdio: String,
}

/// How a process ended, as its exit event tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Exit {
    /// The exit event's time.
    pub time_ms: i64,
    /// Its exit status (when it exited by itself).
    pub code: i32,
    /// The signal that ended it; 0 when it exited by itself.
    pub signal: u32,
    /// How long it ran; 0 if the sensor could not tell.
    pub lifetime_ms: u64,
}

impl Exit {
    fn of(p: &ProcessEvent, time_ms: i64) -> Self {
        Self {
            time_ms,
            code: p.exit_code,
            signal: p.exit_signal,
            lifetime_ms: p.lifetime_ms,
        }
    }
}

/// One process, as its events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// Start time in clock ticks since boot; 0 if unknown.
    pub start_ticks: u64,
    /// Start time, Unix ms: the sensor's, else that of its first event.
    pub started_ms: i64,
    /// What it ran, oldest first; empty for a process known only from its child's event.
    pub execs: Vec<Exec>,
    pub exe: String,
    /// How it ended; None while no exit event is stored for it.
    pub exit: Option<Exit>,
    /// Its parent's command, as its (latest) exec event named it.
    #[serde(skip)]
    parent: Option<(String, String)>,
}

impl Proc {
    /// Its command line now (its latest exec), or its executable.
    pub fn command(&self) -> &str {
        self.execs.last().map_or(self.exe.as_str(), |e| &e.command)
    }

    /// Whether it started at or before `other` did.
    fn born_by(&self, other: &Proc) -> bool {
        if self.start_ticks > 0 && other.start_ticks > 0 {
            self.start_ticks <= other.start_ticks
        } else {
            self.started_ms <= other.started_ms
        }
    }

    fn same(&self, pid: u32, start_ticks: u64) -> bool {
        self.pid == pid && start_ticks > 0 && self.start_ticks == start_ticks
    }
}

/// A process with its descendants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    pub process: Proc,
    pub children: Vec<TreeNode>,
}

/// A process's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessTree {
    pub agent_id: String,
    /// From the oldest ancestor known down to the process's parent.
    pub ancestors: Vec<Proc>,
    /// The process and its descendants.
    pub process: TreeNode,
    /// Some descendants were left out (past [`MAX_DESCENDANTS`] or [`MAX_DEPTH`]).
    pub truncated: bool,
}

fn command_line(p: &ProcessEvent) -> String {
    match p.argv.is_empty() {
        true => p.exe.clone(),
        false => p.argv.join(" "),
    }
}

/// The processes the events of a query tell of, in order of their first event: one per
/// (pid, start ticks), or per exec where ticks are missing.
pub fn processes(events: &[StoredEvent]) -> Vec<Proc> {
    let mut out: Vec<Proc> = Vec::new();
    for e in events {
        let Some(event::Body::Process(p)) =
            Event::decode(e.body.as_slice()).ok().and_then(|x| x.body)
        else {
            continue;
        };
        let exit = p.kind() == process_event::Kind::Exit;
        let known = out.iter_mut().rev().find(|q| {
            q.same(p.pid, p.start_ticks) || (exit && p.start_ticks == 0 && q.pid == p.pid)
        });
        let ended = exit.then(|| Exit::of(&p, e.time_ms));
        let exec = (!exit).then(|| Exec {
            seq: e.seq,
            time_ms: e.time_ms,
            command: command_line(&p),
            stdio: cordon_proto::streams::summary(&p).unwrap_or_default(),
        });
        let parent = (!p.parent_exe.is_empty() || !p.parent_argv.is_empty())
            .then(|| (p.parent_exe.clone(), p.parent_argv.join(" ")));
        match known {
            Some(q) => {
                q.exit = ended.or(q.exit);
                q.execs.extend(exec);
                if !p.exe.is_empty() && !exit {
                    q.exe = p.exe.clone();
                }
                q.parent = parent.or(q.parent.take());
            }
            None => out.push(Proc {
                pid: p.pid,
                ppid: p.ppid,
                start_ticks: p.start_ticks,
                started_ms: if p.start_time_ms > 0 {
                    p.start_time_ms
                } else {
                    e.time_ms
                },
                execs: exec.into_iter().collect(),
                exe: p.exe.clone(),
                exit: ended,
                parent,
            }),
        }
    }
    out
}

/// Which of a pid's processes is meant: the one started at `start_ticks`; else the latest
/// started by `at_ms`; else the latest.
pub fn pick(found: Vec<Proc>, start_ticks: Option<u64>, at_ms: Option<i64>) -> Option<Proc> {
    if let Some(t) = start_ticks.filter(|t| *t > 0) {
        return found.into_iter().find(|p| p.start_ticks == t);
    }
    let by = at_ms.unwrap_or(i64::MAX);
    let mut found = found;
    found.sort_by_key(|p| (p.start_ticks, p.started_ms));
    let latest = found.iter().rposition(|p| p.started_ms <= by);
    match latest {
        Some(i) => Some(found.swap_remove(i)),
        None => found.into_iter().next(),
    }
}

/// `child`'s parent among the processes with its parent's pid: the latest that started no
/// later than it. Without one, the parent as the child's event named it.
pub fn parent_of(child: &Proc, candidates: Vec<Proc>) -> Option<Proc> {
    let found = candidates
        .into_iter()
        .filter(|p| p.born_by(child))
        .max_by_key(|p| (p.start_ticks, p.started_ms));
    found.or_else(|| {
        let (exe, argv) = child.parent.clone()?;
        Some(Proc {
            pid: child.ppid,
            ppid: 0,
            start_ticks: 0,
            started_ms: 0,
            execs: Vec::new(),
            exe: if argv.is_empty() { exe } else { argv },
            exit: None,
            parent: None,
        })
    })
}

/// `parent`'s children among the processes whose parent pid is its pid: those started
/// after it and before the next process to have its pid (among `same_pid`).
pub fn children_of(parent: &Proc, same_pid: &[Proc], candidates: Vec<Proc>) -> Vec<Proc> {
    let next = same_pid
        .iter()
        .filter(|p| p.pid == parent.pid && parent.born_by(p) && p != &parent)
        .min_by_key(|p| (p.start_ticks, p.started_ms));
    candidates
        .into_iter()
        .filter(|c| parent.born_by(c) && next.is_none_or(|n| !n.born_by(c)))
        .collect()
}

/// The tree of `pid` on `agent_id` (see [`pick`] for which process of that pid).
pub async fn build<S: Events>(
    store: &S,
    agent_id: &str,
    pid: u32,
    start_ticks: Option<u64>,
    at_ms: Option<i64>,
) -> Result<Option<ProcessTree>, StoreError> {
    let find = |by| async move {
        let events = store.process_events(agent_id.into(), by, PER_PID).await?;
        Ok::<_, StoreError>(processes(&events))
    };
    let same_pid = find(ProcessLink::Pid(pid)).await?;
    let Some(target) = pick(same_pid.clone(), start_ticks, at_ms) else {
        return Ok(None);
    };
    let mut ancestors = Vec::new();
    let mut child = target.clone();
    while ancestors.len() < MAX_DEPTH && child.ppid != 0 && child.ppid != child.pid {
        let Some(parent) = parent_of(&child, find(ProcessLink::Pid(child.ppid)).await?) else {
            break;
        };
        ancestors.push(parent.clone());
        child = parent;
    }
    ancestors.reverse();
    let mut budget = MAX_DESCENDANTS;
    let mut truncated = false;
    let process = descend(&find, target, same_pid, 0, &mut budget, &mut truncated).await?;
    Ok(Some(ProcessTree {
        agent_id: agent_id.into(),
        ancestors,
        process,
        truncated,
    }))
}

/// `p` with its exit from the events of its pid: an exit event names no parent, so a child
/// found by its parent's pid comes without it.
fn with_exit(p: Proc, same_pid: &[Proc]) -> Proc {
    if p.exit.is_some() {
        return p;
    }
    let same = |q: &&Proc| match p.start_ticks {
        0 => q.pid == p.pid && q.started_ms == p.started_ms,
        ticks => q.same(p.pid, ticks),
    };
    let exit = same_pid.iter().find(same).and_then(|q| q.exit);
    Proc { exit, ..p }
}

/// `p` with its descendants, depth first, while the budget lasts.
async fn descend<F, Fut>(
    find: &F,
    p: Proc,
    same_pid: Vec<Proc>,
    depth: usize,
    budget: &mut usize,
    truncated: &mut bool,
) -> Result<TreeNode, StoreError>
where
    F: Fn(ProcessLink) -> Fut,
    Fut: Future<Output = Result<Vec<Proc>, StoreError>>,
{
    let mut node = TreeNode {
        process: p,
        children: Vec::new(),
    };
    if depth >= MAX_DEPTH {
        *truncated = true;
        return Ok(node);
    }
    let children = children_of(
        &node.process,
        &same_pid,
        find(ProcessLink::Parent(node.process.pid)).await?,
    );
    for c in children {
        if *budget == 0 {
            *truncated = true;
            break;
        }
        *budget -= 1;
        let theirs = find(ProcessLink::Pid(c.pid)).await?;
        let c = with_exit(c, &theirs);
        let sub = Box::pin(descend(find, c, theirs, depth + 1, budget, truncated)).await?;
        node.children.push(sub);
    }
    Ok(node)
}

impl Controller {
    /// The process tree of `pid` on an agent (id or prefix), from stored telemetry: the
    /// process started at `start_ticks` if given, else the latest started by `at_ms`.
    pub async fn process_tree(
        &self,
        agent: &str,
        pid: u32,
        start_ticks: Option<u64>,
        at_ms: Option<i64>,
    ) -> Result<ProcessTree, CoreError> {
        let agent = self.resolve(agent).await?;
        build(&self.store, &agent.id, pid, start_ticks, at_ms)
            .await?
            .ok_or(CoreError::NoProcess {
                agent: agent.id,
                pid,
            })
    }
}

mod lookup;
mod record;

pub use lookup::{process_of, triggering_event};
pub use record::tree_record;

#[cfg(test)]
mod tests;
