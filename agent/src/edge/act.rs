//! What an edge step does on the host, with the same guards as a command from the controller
//! (pid 1, kernel threads, the agent itself and protected executables are never killed; the
//! agent's own and critical files are never quarantined), a per-agent rate limit past which
//! the agent only reports, and dry runs that only say what would have been done.

use crate::respond::containment::Containment;
use crate::respond::kill::{self, ProcessTable, Signaller};
use crate::respond::quarantine::Quarantiner;
use crate::swap::Swap;
use cordon_proto::time::now_ms;
use cordon_proto::{EdgeAction, EdgeStep, edge_step, event};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How an action ended, as the event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done(String),
    /// A guard said no.
    Refused(String),
    Failed(String),
}

/// The host effects an edge step may have (real ones over the responders; fakes in tests).
pub trait Actor: Send + Sync {
    fn kill(&self, pid: u32, start_ticks: u64, tree: bool) -> Ended;
    fn quarantine(&self, path: &str) -> Ended;
    fn block(&self, cidr: &str, ttl_secs: u64) -> Ended;
}

/// The real host, through the same responders commands use.
pub struct HostActor {
    pub processes: Arc<dyn ProcessTable>,
    pub signaller: Arc<dyn Signaller>,
    pub kill_policy: Arc<Swap<kill::Policy>>,
    pub quarantine: Arc<dyn Quarantiner>,
    pub containment: Arc<Containment>,
}

impl Actor for HostActor {
    fn kill(&self, pid: u32, start_ticks: u64, tree: bool) -> Ended {
        let policy = self.kill_policy.load();
        let table = self.processes.as_ref();
        if let Some(why) = table.get(pid).and_then(|p| kill::refusal(&p, &policy)) {
            return Ended::Refused(why);
        }
        let killed = kill::plan(table, &policy, pid, start_ticks, tree).and_then(|targets| {
            kill::execute(table, self.signaller.as_ref(), &policy, targets, tree)
        });
        match killed {
            Ok(killed) => {
                let pids: Vec<String> = killed.iter().map(|p| p.pid.to_string()).collect();
                Ended::Done(format!("killed pid {}", pids.join(", ")))
            }
            Err(e) if e.contains("may not be killed") => Ended::Refused(e),
            Err(e) => Ended::Failed(e),
        }
    }

    fn quarantine(&self, path: &str) -> Ended {
        match self.quarantine.quarantine(path, false, now_ms()) {
            Ok(entry) => Ended::Done(format!(
                "quarantined {} (sha256 {}) as {}",
                entry.original_path, entry.sha256, entry.id
            )),
            Err(e) if e.starts_with("refusing") => Ended::Refused(e),
            Err(e) => Ended::Failed(e),
        }
    }

    fn block(&self, cidr: &str, ttl_secs: u64) -> Ended {
        match self.containment.block(cidr, ttl_secs) {
            Ok(_) => Ended::Done(format!("blocked {cidr}")),
            Err(e) => Ended::Failed(e),
        }
    }
}

/// At most `per_minute` edge actions in any minute; past it, alert only.
pub struct RateLimit {
    per_minute: u32,
    recent: Mutex<VecDeque<Instant>>,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            recent: Mutex::default(),
        }
    }

    /// Takes one action from the budget; false when the minute's budget is spent.
    pub fn take(&self, now: Instant) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() >= self.per_minute as usize {
            return false;
        }
        recent.push_back(now);
        true
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }
}

/// What a step would act on for this event, or why it cannot act on it.
pub enum Target {
    Kill {
        pid: u32,
        start_ticks: u64,
        tree: bool,
    },
    Quarantine(String),
    Block {
        cidr: String,
        ttl_secs: u64,
    },
}

impl Target {
    pub fn of(step: &EdgeStep, body: &event::Body) -> Result<(&'static str, Self), String> {
        use edge_step::Action;
        match (step.action.as_ref(), body) {
            (Some(Action::Kill(k)), event::Body::Process(p)) => Ok((
                "kill_process",
                Self::Kill {
                    pid: p.pid,
                    start_ticks: p.start_ticks,
                    tree: k.tree,
                },
            )),
            (Some(Action::Kill(k)), event::Body::Network(n)) => match &n.process {
                Some(p) if p.pid != 0 => Ok((
                    "kill_process",
                    Self::Kill {
                        pid: p.pid,
                        start_ticks: p.start_ticks,
                        tree: k.tree,
                    },
                )),
                _ => Err("the connection's process is unknown".into()),
            },
            (Some(Action::Kill(_)), _) => Err("the event names no process".into()),
            (Some(Action::Quarantine(q)), event::Body::Process(p)) if q.exe => {
                Ok(("quarantine_file", Self::Quarantine(p.exe.clone())))
            }
            (Some(Action::Quarantine(q)), event::Body::File(f)) if !q.exe => {
                Ok(("quarantine_file", Self::Quarantine(f.path.clone())))
            }
            (Some(Action::Quarantine(_)), _) => Err("the event names no such file".into()),
            (Some(Action::BlockIp(b)), body) => {
                let cidr = match (b.cidr.as_str(), body) {
                    ("destination", event::Body::Network(n)) => n.destination_ip.clone(),
                    ("destination", _) => return Err("the event is not a connection".into()),
                    (cidr, _) => cidr.to_string(),
                };
                Ok((
                    "block_ip",
                    Self::Block {
                        cidr,
                        ttl_secs: b.ttl_secs,
                    },
                ))
            }
            (None, _) => Err("the step has no action".into()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Kill { pid, tree, .. } => {
                format!("kill pid {pid}{}", if *tree { " and its tree" } else { "" })
            }
            Self::Quarantine(path) => format!("quarantine {path}"),
            Self::Block { cidr, .. } => format!("block {cidr}"),
        }
    }

    pub fn run(&self, actor: &dyn Actor) -> Ended {
        match self {
            Self::Kill {
                pid,
                start_ticks,
                tree,
            } => actor.kill(*pid, *start_ticks, *tree),
            Self::Quarantine(path) => actor.quarantine(path),
            Self::Block { cidr, ttl_secs } => actor.block(cidr, *ttl_secs),
        }
    }
}

/// The record of one step taken (or not) about an event.
pub fn record(step: &EdgeStep, action: &str, outcome: &str, detail: String) -> EdgeAction {
    EdgeAction {
        step: step.name.clone(),
        action: action.into(),
        outcome: outcome.into(),
        detail,
        at_ms: now_ms(),
        ..Default::default()
    }
}
