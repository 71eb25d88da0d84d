//! The containment manager: carries out isolate, release and IP-block commands through the
//! Isolator and Blocker seams, keeps the desired state in the agent's state file so it holds
//! across restarts and reboots, checks that the controller stays reachable (rolling back if
//! not), re-resolves the controller while isolated, and reports what the kernel holds. With
//! several controller URLs (replicas), every address of each stays reachable.

use super::block::Blocker;
use super::isolate::{Isolator, Plan};
use super::net::{Allow, Net, cover_family};
use crate::swap::Swap;
use cordon_proto::files::{PRIVATE, atomic_write};
use cordon_proto::time::now_ms;
use cordon_proto::{BlockResult, ContainmentState, IsolationResult};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Can the controller be reached (a fresh TCP connection) at any of these addresses?
pub trait Reachability: Send + Sync {
    fn reachable(&self, addrs: &[SocketAddr], timeout: Duration) -> bool;
}

pub struct TcpReachability;

impl<T: Reachability + ?Sized> Reachability for std::sync::Arc<T> {
    fn reachable(&self, addrs: &[SocketAddr], timeout: Duration) -> bool {
        (**self).reachable(addrs, timeout)
    }
}

impl Reachability for TcpReachability {
    fn reachable(&self, addrs: &[SocketAddr], timeout: Duration) -> bool {
        addrs
            .iter()
            .any(|a| TcpStream::connect_timeout(a, timeout).is_ok())
    }
}

/// What the agent keeps in `containment.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Desired {
    isolation: Option<IsolationRecord>,
    /// Blocks with their expiry (ms; None = until unblocked), re-applied after a reboot.
    blocks: Vec<(String, Option<i64>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IsolationRecord {
    allow: Vec<String>,
    reason: String,
    /// Controller addresses last resolved, used if resolution fails later (e.g. no DNS).
    controller: Vec<IpAddr>,
    applied_hash: String,
}

pub struct Containment {
    pub isolator: Box<dyn Isolator>,
    pub blocker: Box<dyn Blocker>,
    pub reach: Box<dyn Reachability>,
    /// Read at each use: a reloaded configuration replaces it.
    config: Swap<crate::config::ContainmentConfig>,
    /// The controller URLs the agent talks to (a controller and its replicas): the
    /// isolation lets every address of each through.
    pub controller_urls: Vec<String>,
    pub state_file: PathBuf,
    desired: Mutex<Desired>,
}

impl Containment {
    pub fn new(
        isolator: Box<dyn Isolator>,
        blocker: Box<dyn Blocker>,
        reach: Box<dyn Reachability>,
        config: crate::config::ContainmentConfig,
        controller_urls: Vec<String>,
        state_file: PathBuf,
    ) -> Self {
        let desired = std::fs::read(&state_file)
            .ok()
            .and_then(|b| match serde_json::from_slice(&b) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(file = %state_file.display(), error = %e, "containment state unreadable; starting from none");
                    None
                }
            })
            .unwrap_or_default();
        Self {
            isolator,
            blocker,
            reach,
            config: Swap::new(config),
            controller_urls,
            state_file,
            desired: Mutex::new(desired),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Desired> {
        self.desired.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, d: &Desired) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(d).map_err(|e| e.to_string())?;
        atomic_write(&self.state_file, &bytes, PRIVATE)
            .map_err(|e| format!("writing {}: {e}", self.state_file.display()))
    }

    /// The addresses of every controller URL (a controller and its replicas), each with its
    /// URL's port, resolved now. Where a URL cannot be resolved (an isolated host may have no
    /// DNS), the addresses the isolation last recorded stand in, with every URL's port; an
    /// error only if nothing is known at all.
    fn known_controller(&self) -> Result<Vec<SocketAddr>, String> {
        let mut found = Vec::new();
        let mut failed = None;
        for url in &self.controller_urls {
            match resolve_url(url) {
                Ok(addrs) => found.extend(addrs),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            let stored = self
                .lock()
                .isolation
                .as_ref()
                .map(|r| r.controller.clone())
                .unwrap_or_default();
            if !stored.is_empty() {
                tracing::warn!(error = %e, "adding the controller addresses resolved at isolation");
                let ports: Vec<u16> = self
                    .controller_urls
                    .iter()
                    .filter_map(|u| cordon_proto::channel::url_port(u))
                    .collect();
                for ip in stored {
                    found.extend(ports.iter().map(|p| SocketAddr::new(ip, *p)));
                }
            } else if found.is_empty() {
                return Err(e);
            } else {
                tracing::warn!(error = %e, "a controller URL does not resolve; isolating with the others");
            }
        }
        found.sort();
        found.dedup();
        if found.is_empty() {
            return Err("the controller URLs resolved to no address".into());
        }
        Ok(found)
    }

    /// Whether a fresh TCP connection reaches one of the controller addresses.
    fn controller_reachable(&self, controller: &[SocketAddr]) -> bool {
        let timeout = Duration::from_millis(self.config.load().verify_timeout_ms);
        self.reach.reachable(controller, timeout)
    }

    fn plan(&self, controller: Vec<IpAddr>, allow: Vec<Allow>) -> Plan {
        let config = self.config.load();
        Plan {
            controller,
            allow,
            dns: config.dns_resolvers.clone(),
            dhcp: config.allow_dhcp,
        }
    }

    /// Puts reloaded settings in force: DNS, DHCP and the reachability check apply from the
    /// next isolation (or re-application of the one in force) on.
    pub fn reconfigure(&self, config: crate::config::ContainmentConfig) {
        self.config.store(config);
    }

    /// Isolates the host. Idempotent: the same command again yields the same ruleset.
    pub fn isolate(&self, allow: &[String], reason: &str) -> Result<IsolationResult, String> {
        let allow: Vec<Allow> = allow
            .iter()
            .map(|a| Allow::parse(a))
            .collect::<Result<_, _>>()?;
        refuse_open_allowlist(&allow)?;
        let targets = self.known_controller()?;
        let controller = ips(&targets);
        let plan = self.plan(controller.clone(), allow.clone());
        let started = Instant::now();
        self.isolator
            .apply(&plan)
            .map_err(|e| format!("applying the isolation ruleset: {e}"))?;
        let apply_micros = started.elapsed().as_micros() as u64;
        if !self.controller_reachable(&targets) {
            let previous = self.lock().isolation.clone();
            let rollback = match previous {
                Some(prev) => self
                    .apply_record(&prev)
                    .map(|_| "the previous isolation is back"),
                None => self
                    .isolator
                    .remove()
                    .map(|_| "the host is not isolated")
                    .map_err(|e| e.to_string()),
            };
            let outcome = match rollback {
                Ok(state) => format!("rolled back: {state}"),
                Err(e) => format!("rollback failed too: {e}"),
            };
            tracing::error!(controller = ?controller, %outcome, "isolation would cut off the controller");
            return Err(format!(
                "the controller was not reachable through the isolation ruleset; {outcome}"
            ));
        }
        let hash = self
            .isolator
            .observe()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let record = IsolationRecord {
            allow: allow.iter().map(|a| a.to_string()).collect(),
            reason: reason.to_string(),
            controller: controller.clone(),
            applied_hash: hash.clone(),
        };
        {
            let mut d = self.lock();
            d.isolation = Some(record.clone());
            self.save(&d)?;
        }
        tracing::warn!(reason, allow = ?record.allow, controller = ?controller, "host isolated");
        Ok(IsolationResult {
            isolated: true,
            controller_addresses: controller.iter().map(|a| a.to_string()).collect(),
            allowed: record.allow,
            ruleset_hash: hash,
            apply_micros,
        })
    }

    fn apply_record(&self, rec: &IsolationRecord) -> Result<String, String> {
        let allow: Vec<Allow> = rec
            .allow
            .iter()
            .filter_map(|a| Allow::parse(a).ok())
            .collect();
        let controller = self
            .known_controller()
            .map(|a| ips(&a))
            .unwrap_or_else(|_| rec.controller.clone());
        self.isolator
            .apply(&self.plan(controller, allow))
            .map_err(|e| e.to_string())?;
        Ok(self
            .isolator
            .observe()
            .map_err(|e| e.to_string())?
            .unwrap_or_default())
    }

    pub fn release(&self) -> Result<IsolationResult, String> {
        self.isolator
            .remove()
            .map_err(|e| format!("removing the isolation ruleset: {e}"))?;
        let mut d = self.lock();
        d.isolation = None;
        self.save(&d)?;
        tracing::warn!("isolation released");
        Ok(IsolationResult {
            isolated: false,
            ..Default::default()
        })
    }

    /// Blocks `cidr`, never the controller: a network that covers one of the controller's
    /// addresses is refused, and a block after which the controller cannot be reached is
    /// rolled back.
    pub fn block(&self, cidr: &str, ttl_secs: u64) -> Result<BlockResult, String> {
        let net = Net::parse(cidr)?;
        let targets = self.known_controller().map_err(|e| {
            format!("not blocking {net}: the controller's addresses are unknown ({e}), so the block could cut it off")
        })?;
        refuse_controller_block(&net, &ips(&targets))?;
        let ttl = (ttl_secs > 0).then(|| Duration::from_secs(ttl_secs));
        let key = net.to_string();
        let previous = self.lock().blocks.iter().find(|(c, _)| *c == key).cloned();
        self.blocker
            .block(&net, ttl)
            .map_err(|e| format!("blocking {net}: {e}"))?;
        if !self.controller_reachable(&targets) {
            let outcome = match self.restore_block(&net, previous.map(|(_, exp)| exp)) {
                Ok(()) => "rolled back: the block is as it was before".to_string(),
                Err(e) => format!("rollback failed too: {e}"),
            };
            tracing::error!(%net, controller = ?targets, %outcome, "a block would cut off the controller");
            return Err(format!(
                "the controller was not reachable with {net} blocked; {outcome}"
            ));
        }
        let mut d = self.lock();
        d.blocks.retain(|(c, _)| *c != key);
        d.blocks
            .push((key, ttl.map(|t| now_ms() + t.as_millis() as i64)));
        self.save(&d)?;
        tracing::warn!(%net, ttl_secs, "address blocked");
        Ok(BlockResult {
            cidr: net.to_string(),
            blocked: true,
            ttl_secs,
        })
    }

    /// Puts a block back as the state file had it: `previous` is its expiry (None inside
    /// for "until unblocked"), or None when `net` was not blocked.
    fn restore_block(&self, net: &Net, previous: Option<Option<i64>>) -> Result<(), String> {
        let result = match previous {
            None => self.blocker.unblock(net),
            Some(expires) => match remaining(expires, now_ms()) {
                Some(ttl) => self.blocker.block(net, ttl),
                None => self.blocker.unblock(net),
            },
        };
        result.map_err(|e| e.to_string())
    }

    pub fn unblock(&self, cidr: &str) -> Result<BlockResult, String> {
        let net = Net::parse(cidr)?;
        self.blocker
            .unblock(&net)
            .map_err(|e| format!("unblocking {net}: {e}"))?;
        let mut d = self.lock();
        d.blocks.retain(|(c, _)| *c != net.to_string());
        self.save(&d)?;
        tracing::warn!(%net, "address unblocked");
        Ok(BlockResult {
            cidr: net.to_string(),
            blocked: false,
            ttl_secs: 0,
        })
    }

    /// At start: put back what the state file says should be in force. No rollback here: a
    /// host that must stay isolated stays isolated even while the controller is down.
    pub fn reapply(&self) {
        let d = self.lock().clone();
        if let Some(rec) = &d.isolation {
            match self.apply_record(rec) {
                Ok(hash) => tracing::warn!(hash = %hash, "isolation re-applied at start"),
                Err(e) => tracing::error!(error = %e, "re-applying isolation at start failed"),
            }
        }
        let controller = self.known_controller().map(|a| ips(&a)).unwrap_or_default();
        let now = now_ms();
        for (cidr, expires) in &d.blocks {
            let Some(ttl) = remaining(*expires, now) else {
                continue;
            };
            let Ok(net) = Net::parse(cidr) else { continue };
            // A state file from before blocks were checked may hold one that covers the
            // controller: it stays out of the kernel.
            if let Err(why) = refuse_controller_block(&net, &controller) {
                tracing::error!(%cidr, reason = %why, "not re-applying a block at start");
                continue;
            }
            if let Err(e) = self.blocker.block(&net, ttl) {
                tracing::error!(%cidr, error = %e, "re-applying a block at start failed");
            }
        }
    }

    /// While isolated, follows changes of the controller's addresses.
    pub fn refresh_controller(&self) {
        let Some(rec) = self.lock().isolation.clone() else {
            return;
        };
        let Ok(targets) = self.known_controller() else {
            return;
        };
        let addrs = ips(&targets);
        if addrs == rec.controller {
            return;
        }
        match self.isolator.set_controller(&addrs) {
            Ok(()) => {
                let mut d = self.lock();
                if let Some(r) = d.isolation.as_mut() {
                    r.controller = addrs.clone();
                    r.applied_hash = self.isolator.observe().ok().flatten().unwrap_or_default();
                }
                let _ = self.save(&d);
                tracing::warn!(controller = ?addrs, "controller addresses changed; isolation updated");
            }
            Err(e) => tracing::error!(error = %e, "updating the controller addresses failed"),
        }
    }

    /// Desired against observed, for heartbeats.
    pub fn state(&self) -> ContainmentState {
        let d = self.lock().clone();
        let mut s = ContainmentState {
            isolation_desired: d.isolation.is_some(),
            isolation_applied_hash: d.isolation.map(|r| r.applied_hash).unwrap_or_default(),
            ..Default::default()
        };
        match self.isolator.observe() {
            Ok(Some(h)) => {
                s.isolation_table_present = true;
                s.isolation_ruleset_hash = h;
            }
            Ok(None) => {}
            Err(e) => s.error = e.to_string(),
        }
        match self.blocker.count() {
            Ok(n) => s.blocked_addresses = n,
            Err(e) if s.error.is_empty() => s.error = e.to_string(),
            Err(_) => {}
        }
        s
    }
}

/// Every address a controller URL's host resolves to, with the URL's port.
fn resolve_url(url: &str) -> Result<Vec<SocketAddr>, String> {
    let host =
        cordon_proto::channel::url_host(url).ok_or_else(|| format!("bad controller URL {url}"))?;
    let port =
        cordon_proto::channel::url_port(url).ok_or_else(|| format!("bad controller URL {url}"))?;
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving the controller {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("the controller {host} resolved to no address"));
    }
    Ok(addrs)
}

/// The distinct IP addresses of `targets`, sorted.
fn ips(targets: &[SocketAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = targets.iter().map(SocketAddr::ip).collect();
    out.sort();
    out.dedup();
    out
}

/// What is left of a block expiring at `expires` (ms): Some(None) for "until unblocked",
/// None when it has expired.
fn remaining(expires: Option<i64>, now: i64) -> Option<Option<Duration>> {
    match expires {
        Some(at) if at <= now => None,
        Some(at) => Some(Some(Duration::from_millis((at - now) as u64))),
        None => Some(None),
    }
}

/// Refuses a block of a network holding one of the controller's addresses.
fn refuse_controller_block(net: &Net, controller: &[IpAddr]) -> Result<(), String> {
    match controller.iter().find(|ip| net.contains(**ip)) {
        Some(ip) => Err(format!(
            "refusing to block {net}: it covers the controller's address {ip}, and a block must never cut the agent off its controller"
        )),
        None => Ok(()),
    }
}

/// Refuses an allowlist whose port-free entries together let a whole address family through:
/// such an isolation would be reported as in force and block nothing.
fn refuse_open_allowlist(allow: &[Allow]) -> Result<(), String> {
    let open: Vec<Net> = allow
        .iter()
        .filter(|a| a.port.is_none())
        .map(|a| a.net)
        .collect();
    for (v4, family) in [(true, "IPv4"), (false, "IPv6")] {
        if cover_family(&open, v4) {
            let listed: Vec<String> = open
                .iter()
                .filter(|n| n.is_v4() == v4)
                .map(Net::to_string)
                .collect();
            return Err(format!(
                "refusing the allowlist: together its entries ({}) allow every {family} address, so the isolation would block nothing",
                listed.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
