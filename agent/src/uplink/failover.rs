//! Which controller to try next. The agent knows one or more controller URLs (a controller
//! and its replicas; from enrolment, or `controllers` in its configuration), and each URL's
//! host may resolve to several addresses. One round of attempts tries every address of every
//! URL once, in order, starting with the one that last worked; moving on within a round waits
//! a jittered delay at the current backoff ceiling, and a round that found nothing raises the
//! ceiling before the next (re-resolved) round. A connection that worked resets the backoff.

use super::backoff::Backoff;
use crate::config::AgentConfig;
use crate::state::Identity;
use std::net::SocketAddr;
use std::time::Duration;

/// How long resolving one URL's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One place to connect to: a controller URL and, when its host resolved, one of its
/// addresses (None: the connection resolves the URL itself and reports why it cannot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub addr: Option<SocketAddr>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{} ({a})", self.url),
            None => write!(f, "{}", self.url),
        }
    }
}

/// The controller URLs the agent uses: `controllers` from its configuration if set, else
/// those recorded at enrolment.
pub fn configured(identity: &Identity, config: &AgentConfig) -> Vec<String> {
    if config.controllers.is_empty() {
        identity.controller_urls()
    } else {
        config.controllers.clone()
    }
}

/// The order of attempts across the controllers.
pub struct Failover {
    urls: Vec<String>,
    round: Vec<Target>,
    /// The next target of `round` to try.
    pos: usize,
    last_good: Option<Target>,
    backoff: Backoff,
}

impl Failover {
    pub fn new(urls: Vec<String>, backoff: Backoff) -> Self {
        Self {
            urls,
            round: Vec::new(),
            pos: 0,
            last_good: None,
            backoff,
        }
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Whether the round is over: [`Self::plan_round`] must come before [`Self::take_next`].
    pub fn needs_round(&self) -> bool {
        self.pos >= self.round.len()
    }

    /// Starts a round from what each URL (in the order of [`Self::urls`]) resolved to:
    /// every address of each, and the URL alone where resolution failed. The target that
    /// last worked goes first; the others keep their order after it.
    pub fn plan_round(&mut self, resolved: Vec<Result<Vec<SocketAddr>, String>>) {
        let mut round = Vec::new();
        for (url, found) in self.urls.iter().zip(resolved) {
            match found {
                Ok(addrs) if !addrs.is_empty() => {
                    for addr in addrs {
                        let t = Target {
                            url: url.clone(),
                            addr: Some(addr),
                        };
                        if !round.contains(&t) {
                            round.push(t);
                        }
                    }
                }
                Ok(_) => round.push(unresolved(url)),
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "cannot resolve a controller");
                    round.push(unresolved(url));
                }
            }
        }
        if let Some(i) = self
            .last_good
            .as_ref()
            .and_then(|good| round.iter().position(|t| t == good))
        {
            round.rotate_left(i);
        }
        self.round = round;
        self.pos = 0;
    }

    /// The target to try now.
    pub fn take_next(&mut self) -> Target {
        let t = self.round.get(self.pos).cloned();
        self.pos += 1;
        t.unwrap_or_else(|| unresolved(self.urls.first().map_or("", String::as_str)))
    }

    /// A connection to `target` worked (and has ended): reset the backoff, and start the
    /// next round, re-resolved, with it.
    pub fn worked(&mut self, target: &Target) {
        self.last_good = Some(target.clone());
        self.backoff.reset();
        self.pos = self.round.len();
    }

    /// How long to wait before the next attempt: within a round, a jittered delay at the
    /// current ceiling; after a whole round, one that raises it.
    pub fn delay(&mut self) -> Duration {
        if self.needs_round() {
            self.backoff.next_delay()
        } else {
            self.backoff.same_delay()
        }
    }

    /// Plans a round if one is due, resolving every URL now, and returns the next target.
    pub async fn next_target(&mut self) -> Target {
        if self.needs_round() {
            let mut resolved = Vec::with_capacity(self.urls.len());
            for url in &self.urls {
                resolved.push(resolve(url).await);
            }
            self.plan_round(resolved);
        }
        self.take_next()
    }
}

fn unresolved(url: &str) -> Target {
    Target {
        url: url.to_string(),
        addr: None,
    }
}

/// Every address (A and AAAA) the URL's host has, in the resolver's order.
async fn resolve(url: &str) -> Result<Vec<SocketAddr>, String> {
    let host = cordon_proto::channel::url_host(url).ok_or_else(|| format!("bad URL {url}"))?;
    let port = cordon_proto::channel::url_port(url).ok_or_else(|| format!("bad URL {url}"))?;
    match tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => Ok(addrs.collect()),
        Ok(Err(e)) => Err(format!("resolving {host}: {e}")),
        Err(_) => Err(format!("resolving {host}: timed out")),
    }
}

#[cfg(test)]
mod tests;
