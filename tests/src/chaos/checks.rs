//! The soak's verdict, once every fault is undone: the commands all ended, each host's observed
//! isolation is its desired one, and, read from the controller's store once it has stopped,
//! every event an agent accepted is stored exactly once, still waits in its spool, or was
//! reported lost with its count and sequence range.

use super::hosts::Host;
use crate::deploy::{Deployment, SpoolSnapshot};
use anyhow::Context;
use cordon_proto::file_event::Kind;
use cordon_proto::{Event, event};
use prost::Message;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

/// The commands of `agent_ids` that have not ended within `timeout` ("id: status").
pub fn commands_open(d: &Deployment, agent_ids: &[&str], timeout: Duration) -> Vec<String> {
    let open = || -> Vec<String> {
        agent_ids
            .iter()
            .flat_map(|id| commands(d, id))
            .filter(|c| {
                !["succeeded", "failed", "expired"].contains(&c["status"].as_str().unwrap_or(""))
            })
            .map(|c| format!("{}: {}", c["command_id"], c["status"]))
            .collect()
    };
    crate::poll(timeout, || Some(open()).filter(Vec::is_empty)).unwrap_or_else(open)
}

/// How many commands there were for `agent_ids`, and how many of them the controller ordered
/// itself (reconciling a host's isolation).
pub fn commands_total(d: &Deployment, agent_ids: &[&str]) -> (usize, usize) {
    let all: Vec<serde_json::Value> = agent_ids.iter().flat_map(|id| commands(d, id)).collect();
    let own = all.iter().filter(|c| c["created_by"] == "controller");
    (all.len(), own.count())
}

fn commands(d: &Deployment, agent_id: &str) -> Vec<serde_json::Value> {
    let list = d.ctl_list(&["commands", "list", "--agent", agent_id, "--limit", "1000"]);
    list.as_array().cloned().unwrap_or_default()
}

/// Each host's (name, desired, observed) isolation once they agree or `timeout` passes.
pub fn isolation(d: &Deployment, hosts: &[Host], timeout: Duration) -> Vec<(String, bool, bool)> {
    let read = || -> Vec<(String, bool, bool)> {
        hosts
            .iter()
            .map(|h| {
                let a = d.agent_record(&h.agent.id);
                let desired = a["isolation_desired"].as_bool().unwrap_or(false);
                let observed = a["containment"]["isolation_table_present"]
                    .as_bool()
                    .unwrap_or(false);
                (h.name.clone(), desired, observed)
            })
            .collect()
    };
    let agree = |v: &Vec<(String, bool, bool)>| v.iter().all(|(_, d, o)| d == o);
    crate::poll(timeout, || Some(read()).filter(agree)).unwrap_or_else(read)
}

/// A backlog this small is caught up: what a host makes between two acknowledgements.
const CAUGHT_UP: u64 = 100;

/// Waits until each agent has, in some heartbeat since, reported a spool backlog of at most
/// [`CAUGHT_UP`] events (the test's own commands keep the hosts' process sensors busy, so an
/// empty spool at the moment of a heartbeat is luck); false if one never did.
pub fn caught_up(d: &Deployment, hosts: &[Host], timeout: Duration) -> bool {
    let mut behind: Vec<&Host> = hosts.iter().collect();
    crate::within(timeout, || {
        behind.retain(|h| {
            let backlog = d.agent_record(&h.agent.id)["metrics"]["spool_events"].as_u64();
            backlog.is_none_or(|n| n > CAUGHT_UP)
        });
        behind.is_empty()
    })
}

/// One agent's events, accounted for.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub host: String,
    /// Sequence numbers handed out: every event the agent accepted.
    pub accepted: u64,
    pub stored: u64,
    /// Still in the spool, unacknowledged, when the agent stopped, and not stored.
    pub waiting: u64,
    /// Missing from the store and named by a loss report.
    pub reported_lost: u64,
    /// Missing, still in no spool, and named by no report: (first, last) ranges.
    pub unexplained: Vec<(u64, u64)>,
    /// The same file event stored more than once (under different sequence numbers).
    pub duplicates: u64,
    /// Files of the load stored (their create).
    pub files_stored: u64,
}

impl Account {
    pub fn holds(&self) -> bool {
        self.unexplained.is_empty() && self.duplicates == 0
    }
}

/// Accounts for one agent's events against the store (`cordon.db`, the controller stopped)
/// and what its spool held when it stopped.
pub fn account(db: &Path, host: &Host, spool: &SpoolSnapshot) -> anyhow::Result<Account> {
    let events = stored(db, &host.agent.id)?;
    let seqs: BTreeSet<u64> = events.iter().map(|e| e.seq).collect();
    // Loss reports count whether stored or still waiting in the spool behind what they name.
    let mut reported = BTreeSet::new();
    for e in events.iter().chain(&spool.unacked) {
        if let Some(event::Body::Notice(n)) = e.body.as_ref()
            && n.first_seq > 0
            && n.last_seq >= n.first_seq
        {
            reported.extend(n.first_seq..=n.last_seq);
        }
    }
    let mut creates: HashMap<String, u64> = HashMap::new();
    for e in &events {
        if let Some(event::Body::File(f)) = e.body.as_ref()
            && f.kind() == Kind::Create
        {
            *creates.entry(f.path.clone()).or_default() += 1;
        }
    }
    let waiting: BTreeSet<u64> = spool.unacked.iter().map(|e| e.seq).collect();
    let missing: Vec<u64> = (1..=spool.last_seq)
        .filter(|s| !seqs.contains(s) && !waiting.contains(s))
        .collect();
    let (lost, unexplained): (Vec<u64>, Vec<u64>) =
        missing.into_iter().partition(|s| reported.contains(s));
    let watch = host.watch.display().to_string();
    Ok(Account {
        host: host.name.clone(),
        accepted: spool.last_seq,
        stored: seqs.len() as u64,
        waiting: waiting.difference(&seqs).count() as u64,
        reported_lost: lost.len() as u64,
        unexplained: ranges(&unexplained),
        duplicates: creates.values().map(|n| n - 1).sum(),
        files_stored: creates.keys().filter(|p| p.starts_with(&watch)).count() as u64,
    })
}

/// Every stored event of `agent_id`, read from the store's file.
fn stored(db: &Path, agent_id: &str) -> anyhow::Result<Vec<Event>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", db.display()))?;
    let mut q = conn.prepare("SELECT body FROM events WHERE agent_id = ?1 ORDER BY seq")?;
    let rows = q.query_map([agent_id], |r| r.get::<_, Vec<u8>>(0))?;
    let mut events = Vec::new();
    for body in rows {
        events.push(Event::decode(body?.as_slice()).context("a stored event")?);
    }
    Ok(events)
}

/// Consecutive numbers as (first, last) ranges.
fn ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == s => *last = s,
            _ => out.push((s, s)),
        }
    }
    out
}
