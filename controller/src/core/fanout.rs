//! Fan-out isolation: one person's request isolates every enrolled, unrevoked agent that
//! carries all the given labels. The rules of a single isolation hold, and a bulk action adds
//! its own:
//! - the permission is `respond`, as for one command (`policy::roles`);
//! - a host that carries a protected label (`playbooks.protected_labels`) is never isolated
//!   by a fan-out: the whole request is refused, naming how many, unless the person asks to
//!   leave those hosts out. Such a host is contained one by one, where four eyes apply; so a
//!   fan-out never needs a second person, and never asks one per host;
//! - more hosts than the person's stated maximum, or without one than `people.fanout_cap`,
//!   refuses the whole request, so a typo in a label cannot isolate the fleet. The playbooks'
//!   hourly budget counts automatic isolations only, as for a person's single isolation;
//! - one audit entry records the selector, the counts and every command id (each command's
//!   row names who asked for it).
//!
//! The agents are read once; the commands are signed as a single one is, stored together with
//! the hosts' desired isolation in one transaction, then pushed concurrently, at most
//! [`CONCURRENCY`] at a time; one subscription to finished commands waits for them all.

use super::{Admin, Controller, CoreError};
use crate::store::{Agent, Agents, CommandQueue, CommandRow, CommandStatus};
use cordon_proto::{Isolate, action};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Commands of one fan-out being sent at once. Each send waits for its `delivered` mark's
/// commit, which the store shares among the writes queued meanwhile, so this many in flight
/// make about one commit per this many hosts.
pub const CONCURRENCY: usize = 128;

/// A fan-out an administrator asks for.
#[derive(Debug, Clone, Default)]
pub struct FanOutRequest {
    /// key -> value; an agent must carry every one.
    pub labels: HashMap<String, String>,
    /// The most hosts the person means to isolate; 0: `people.fanout_cap`.
    pub max_hosts: u32,
    pub dry_run: bool,
    /// Leave out hosts carrying a protected label instead of refusing.
    pub skip_protected: bool,
    pub isolate: Isolate,
    /// 0: the configured default.
    pub ttl_secs: u64,
    /// 0: do not wait for the results.
    pub wait_secs: u64,
}

/// One host of a fan-out and what became of it.
#[derive(Debug, Clone)]
pub struct FanOutHost {
    pub agent_id: String,
    pub hostname: String,
    /// The command sent (none for a dry run, a host left out, or a failed issue).
    pub command: Option<CommandRow>,
    /// Why the host was left out, or why its command could not be issued.
    pub error: String,
    pub skipped: bool,
}

/// The outcome of a fan-out, hosts in agent id order.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// Unrevoked agents carrying every label, protected ones included.
    pub matched: usize,
    pub hosts: Vec<FanOutHost>,
    pub dry_run: bool,
}

/// The agents a selector picks: those to isolate and the protected ones (with the label).
#[derive(Debug, Default)]
pub struct Selection {
    pub targets: Vec<Agent>,
    pub protected: Vec<(Agent, String)>,
}

/// Splits the unrevoked agents carrying every label of `selector` into targets and protected
/// hosts, each in agent id order.
pub fn select(
    agents: Vec<Agent>,
    selector: &HashMap<String, String>,
    protected: &[(String, String)],
) -> Selection {
    let mut out = Selection::default();
    let carries = |a: &Agent, k: &String, v: &String| a.labels.get(k).is_some_and(|h| h == v);
    for a in agents {
        if a.revoked_at_ms.is_some() || !selector.iter().all(|(k, v)| carries(&a, k, v)) {
            continue;
        }
        match protected.iter().find(|(k, v)| carries(&a, k, v)) {
            Some((k, v)) => {
                let label = format!("{k}={v}");
                out.protected.push((a, label));
            }
            None => out.targets.push(a),
        }
    }
    out.targets.sort_by(|a, b| a.id.cmp(&b.id));
    out.protected.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    out
}

/// Refuses a selection the person may not isolate in one request: nothing matched, a
/// protected host (unless left out), or more hosts than `max` (0: `cap`).
pub fn check(
    sel: &Selection,
    selector: &str,
    max: u32,
    cap: u32,
    skip_protected: bool,
) -> Result<(), CoreError> {
    if sel.targets.is_empty() && sel.protected.is_empty() {
        return Err(CoreError::NoHostMatches(selector.to_string()));
    }
    if let (false, Some((a, label))) = (skip_protected, sel.protected.first()) {
        return Err(CoreError::FanOutProtected {
            count: sel.protected.len(),
            example: format!("{} with {label}", a.host.hostname),
        });
    }
    let max = if max == 0 { cap } else { max };
    if sel.targets.len() > max as usize {
        return Err(CoreError::FanOutTooLarge {
            count: sel.targets.len(),
            max,
        });
    }
    Ok(())
}

/// The selector as the audit log and refusals show it: `k=v,k2=v2`, keys sorted.
pub fn selector_text(labels: &HashMap<String, String>) -> String {
    let sorted: BTreeMap<_, _> = labels.iter().collect();
    let pairs: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

fn host(a: &Agent) -> FanOutHost {
    FanOutHost {
        agent_id: a.id.clone(),
        hostname: a.host.hostname.clone(),
        command: None,
        error: String::new(),
        skipped: false,
    }
}

impl Controller {
    /// Isolates every host `req` selects, as `admin`; audited as one entry (a dry run, which
    /// changes nothing, is not).
    pub async fn isolate_by_labels(
        self: &Arc<Self>,
        admin: &Admin,
        req: FanOutRequest,
    ) -> Result<FanOut, CoreError> {
        let selector = selector_text(&req.labels);
        let planned = self.plan_fanout(&req, &selector).await;
        if req.dry_run {
            return planned.map(|(sel, matched)| FanOut {
                matched,
                hosts: dry_hosts(&sel),
                dry_run: true,
            });
        }
        let entry = admin
            .entry("command.isolate_fanout", format!("labels:{selector}"))
            .detail(json!({
                "labels": req.labels, "max_hosts": req.max_hosts,
                "skip_protected": req.skip_protected, "allow": req.isolate.allow,
                "reason": req.isolate.reason,
            }));
        let result = match planned {
            Ok((sel, matched)) => Ok(self.fan_out(admin, &req, sel, matched).await),
            Err(e) => Err(e),
        };
        self.audited(entry, result, fill_entry).await
    }

    /// The selection and the count matched, once checked.
    async fn plan_fanout(
        &self,
        req: &FanOutRequest,
        selector: &str,
    ) -> Result<(Selection, usize), CoreError> {
        if req.labels.is_empty() {
            return Err(CoreError::EmptySelector);
        }
        cordon_proto::limits::check_labels(&req.labels).map_err(CoreError::BadLabels)?;
        let protected = &self.playbooks.config.protected_labels;
        let sel = select(self.store.agents().await?, &req.labels, protected);
        let cap = self.config.people.fanout_cap;
        check(&sel, selector, req.max_hosts, cap, req.skip_protected)?;
        let matched = sel.targets.len() + sel.protected.len();
        Ok((sel, matched))
    }

    /// Stores every command (with the hosts' desired isolation) in one transaction, then
    /// sends them, at most [`CONCURRENCY`] at once, and waits if asked.
    async fn fan_out(
        self: &Arc<Self>,
        admin: &Admin,
        req: &FanOutRequest,
        sel: Selection,
        matched: usize,
    ) -> FanOut {
        let ttl = Duration::from_secs(match req.ttl_secs {
            0 => self.config.command_ttl_secs,
            n => n,
        });
        // Subscribed before the first command goes out, so no result is missed.
        let finished = self.finished.subscribe();
        let kind = action::Kind::Isolate(req.isolate.clone());
        let rows: Vec<CommandRow> = sel
            .targets
            .iter()
            .map(|a| self.signed_row(a.id.clone(), &kind, ttl, admin.name.clone()))
            .collect();
        let mut hosts: Vec<FanOutHost> = sel.targets.iter().map(host).collect();
        match self.store.insert_commands(rows.clone(), Some(true)).await {
            Ok(()) => {
                tracing::info!(commands = rows.len(), by = %admin.name, "fan-out commands queued");
                for (h, row) in hosts.iter_mut().zip(&rows) {
                    h.command = Some(row.clone());
                }
                self.deliver_all(rows).await;
            }
            Err(e) => {
                let why = CoreError::from(e).public_message();
                hosts.iter_mut().for_each(|h| h.error = why.clone());
            }
        }
        if req.wait_secs > 0 {
            let wait = Duration::from_secs(req.wait_secs.min(super::commands::MAX_WAIT_SECS));
            self.wait_all(&mut hosts, finished, wait).await;
        }
        hosts.extend(sel.protected.iter().map(|(a, label)| FanOutHost {
            error: format!("left out: carries the protected label {label}"),
            skipped: true,
            ..host(a)
        }));
        FanOut {
            matched,
            hosts,
            dry_run: false,
        }
    }

    /// Sends each stored command, at most [`CONCURRENCY`] at once.
    pub(super) async fn deliver_all(self: &Arc<Self>, rows: Vec<CommandRow>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for row in rows {
            let (ctl, gate) = (self.clone(), gate.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                if let Err(e) = ctl.deliver(&row).await {
                    // Stored, so it goes out when the agent says hello again.
                    tracing::warn!(command_id = %row.id, error = %e, "sending a fan-out's command failed");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Waits up to `wait` until every command of `hosts` is final, re-reading a command when
    /// it finishes (and every open one if the notices fell behind).
    async fn wait_all(
        &self,
        hosts: &mut [FanOutHost],
        mut finished: tokio::sync::broadcast::Receiver<String>,
        wait: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + wait;
        // First every open command (some may have finished before this call), then each as
        // its notice comes.
        let mut first = true;
        loop {
            let open: HashSet<String> = hosts
                .iter()
                .filter_map(|h| h.command.as_ref())
                .filter(|c| !c.status.is_final())
                .map(|c| c.id.clone())
                .collect();
            if open.is_empty() {
                return;
            }
            let fresh = if std::mem::take(&mut first) {
                open
            } else {
                match tokio::time::timeout_at(deadline, finished.recv()).await {
                    Err(_) | Ok(Err(RecvError::Closed)) => return,
                    Ok(Err(RecvError::Lagged(_))) => open,
                    Ok(Ok(id)) if open.contains(&id) => HashSet::from([id]),
                    Ok(Ok(_)) => continue,
                }
            };
            if self.reread(hosts, &fresh).await.is_err() {
                return;
            }
        }
    }

    /// Replaces the commands of `hosts` whose ids are in `ids` with their stored rows.
    async fn reread(&self, hosts: &mut [FanOutHost], ids: &HashSet<String>) -> Result<(), ()> {
        for h in hosts.iter_mut() {
            let Some(c) = &h.command else { continue };
            if !ids.contains(&c.id) {
                continue;
            }
            match self.store.command(c.id.clone()).await {
                Ok(Some(row)) => h.command = Some(row),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading a fan-out's command failed; no longer waiting");
                    return Err(());
                }
            }
        }
        Ok(())
    }
}

fn dry_hosts(sel: &Selection) -> Vec<FanOutHost> {
    let mut hosts: Vec<FanOutHost> = sel.targets.iter().map(host).collect();
    hosts.extend(sel.protected.iter().map(|(a, label)| FanOutHost {
        error: format!("would be left out: carries the protected label {label}"),
        skipped: true,
        ..host(a)
    }));
    hosts
}

/// The audit entry of a fan-out that went out: counts and every command id.
fn fill_entry(f: &FanOut, e: &mut crate::policy::audit::AuditEntry) {
    let ids: Vec<&str> = f
        .hosts
        .iter()
        .filter_map(|h| h.command.as_ref().map(|c| c.id.as_str()))
        .collect();
    let failed = f
        .hosts
        .iter()
        .filter(|h| !h.skipped && (h.command.is_none() || failed(h)))
        .count();
    let skipped = f.hosts.iter().filter(|h| h.skipped).count();
    e.detail["matched"] = json!(f.matched);
    e.detail["issued"] = json!(ids.len());
    e.detail["failed"] = json!(failed);
    e.detail["skipped"] = json!(skipped);
    e.detail["command_ids"] = json!(ids);
    e.outcome = format!("issued {} of {} matched", ids.len(), f.matched);
}

fn failed(h: &FanOutHost) -> bool {
    h.command
        .as_ref()
        .is_some_and(|c| matches!(c.status, CommandStatus::Failed | CommandStatus::Expired))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, labels: &[(&str, &str)], revoked: bool) -> Agent {
        Agent {
            online: false,
            revoked_at_ms: revoked.then_some(1),
            ..Agent::for_tests(id, labels)
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn protected() -> Vec<(String, String)> {
        vec![("cordon.protected".into(), "true".into())]
    }

    fn fleet() -> Vec<Agent> {
        vec![
            agent("c", &[("env", "prod"), ("role", "web")], false),
            agent("a", &[("env", "prod"), ("role", "web")], false),
            agent("b", &[("env", "prod"), ("role", "db")], false),
            agent("d", &[("env", "dev"), ("role", "web")], false),
            agent("e", &[("env", "prod"), ("role", "web")], true),
            agent(
                "f",
                &[
                    ("env", "prod"),
                    ("role", "web"),
                    ("cordon.protected", "true"),
                ],
                false,
            ),
        ]
    }

    fn ids(sel: &Selection) -> (Vec<&str>, Vec<&str>) {
        let t = sel.targets.iter().map(|a| a.id.as_str()).collect();
        let p = sel.protected.iter().map(|(a, _)| a.id.as_str()).collect();
        (t, p)
    }

    #[test]
    fn every_label_must_match_and_revoked_agents_are_never_picked() {
        let sel = select(
            fleet(),
            &labels(&[("env", "prod"), ("role", "web")]),
            &protected(),
        );
        assert_eq!(ids(&sel), (vec!["a", "c"], vec!["f"]));
        let sel = select(fleet(), &labels(&[("role", "web")]), &protected());
        assert_eq!(ids(&sel), (vec!["a", "c", "d"], vec!["f"]));
        let sel = select(fleet(), &labels(&[("env", "prd")]), &protected());
        assert_eq!(ids(&sel), (vec![], vec![]));
    }

    #[test]
    fn a_typo_matching_nothing_is_refused() {
        let sel = select(fleet(), &labels(&[("env", "prd")]), &protected());
        let e = check(&sel, "env=prd", 0, 10, false).unwrap_err();
        assert!(matches!(e, CoreError::NoHostMatches(s) if s == "env=prd"));
    }

    #[test]
    fn a_protected_host_refuses_the_whole_fan_out_unless_left_out() {
        let sel = select(fleet(), &labels(&[("role", "web")]), &protected());
        let e = check(&sel, "role=web", 0, 10, false).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, CoreError::FanOutProtected { count: 1, .. }),
            "{text}"
        );
        assert!(text.contains("host-f with cordon.protected=true"), "{text}");
        check(&sel, "role=web", 0, 10, true).unwrap();
        // Only protected hosts match: nothing to isolate, but not "no match" either.
        let only = select(
            fleet(),
            &labels(&[("cordon.protected", "true")]),
            &protected(),
        );
        assert!(only.targets.is_empty());
        assert!(check(&only, "x", 0, 10, false).is_err());
        check(&only, "x", 0, 10, true).unwrap();
    }

    #[test]
    fn more_hosts_than_the_stated_maximum_or_the_cap_are_refused() {
        let sel = select(fleet(), &labels(&[("env", "prod")]), &protected());
        // a, b, c (f is protected and left out).
        let e = check(&sel, "env=prod", 0, 2, true).unwrap_err();
        assert!(matches!(e, CoreError::FanOutTooLarge { count: 3, max: 2 }));
        assert!(e.to_string().contains("--max 3"), "{e}");
        check(&sel, "env=prod", 0, 3, true).unwrap();
        // A stated maximum replaces the cap, both ways.
        check(&sel, "env=prod", 3, 2, true).unwrap();
        let e = check(&sel, "env=prod", 2, 100, true).unwrap_err();
        assert!(matches!(e, CoreError::FanOutTooLarge { count: 3, max: 2 }));
    }

    #[test]
    fn the_selector_reads_the_same_whatever_the_order() {
        let s = selector_text(&labels(&[("role", "web"), ("env", "prod")]));
        assert_eq!(s, "env=prod,role=web");
    }
}
