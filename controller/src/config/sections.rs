//! The tables of `controller.toml` below the top level, each with its defaults and its
//! checks: `[store]`, `[console]`, `[people]`, `[listener]`, `[enrolment]`, `[detection]` and
//! its event retention.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

/// The store: without `url`, SQLite in the data directory; with a `postgres://` URL, that
/// PostgreSQL database (for several controllers sharing one), through a pool of at most
/// `pool_size` connections, each statement cancelled after `statement_timeout_secs`, and a
/// call failing after `connect_timeout_secs` without a connection. (The controller does not
/// use a PostgreSQL store yet: see ARCHITECTURE.md.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub pool_size: usize,
    pub statement_timeout_secs: u64,
    pub connect_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let d = crate::store::pg::PgOptions::new("");
        Self {
            url: None,
            pool_size: d.pool_size,
            statement_timeout_secs: d.statement_timeout.as_secs(),
            connect_timeout_secs: d.wait.as_secs(),
        }
    }
}

impl StoreConfig {
    pub(super) fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses a URL that is not a PostgreSQL one (never echoing it: it may hold a password)
    /// and limits out of range.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !postgres || url.parse::<tokio_postgres::Config>().is_err() {
                return Err("store.url must be a valid postgres:// URL".into());
            }
        }
        if !(1..=256).contains(&self.pool_size) {
            return Err("store.pool_size must be 1 to 256".into());
        }
        if !(1..=3600).contains(&self.statement_timeout_secs)
            || !(1..=3600).contains(&self.connect_timeout_secs)
        {
            return Err(
                "store.statement_timeout_secs and connect_timeout_secs must be 1 to 3600".into(),
            );
        }
        Ok(())
    }

    /// The PostgreSQL store's options, when a URL is given.
    pub fn postgres(&self) -> Option<crate::store::pg::PgOptions> {
        let mut o = crate::store::pg::PgOptions::new(self.url.clone()?);
        o.pool_size = self.pool_size;
        o.statement_timeout = std::time::Duration::from_secs(self.statement_timeout_secs);
        o.wait = std::time::Duration::from_secs(self.connect_timeout_secs);
        Some(o)
    }
}

/// The web console: where it listens (HTTPS, with the controller's server certificate) and
/// how long a session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Address the console binds; empty or absent: no console.
    #[serde(with = "optional_addr", skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// A session unused this many seconds ends.
    pub session_idle_secs: u64,
    /// A session ends this many seconds after sign-in, used or not.
    pub session_max_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: None,
            session_idle_secs: 1800,
            session_max_secs: 12 * 3600,
        }
    }
}

impl ConsoleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.session_idle_secs == 0 || self.session_max_secs < self.session_idle_secs {
            return Err("console.session_idle_secs must be positive and session_max_secs at least session_idle_secs".into());
        }
        if self.session_max_secs > MAX_PEOPLE_TTL {
            return Err(format!(
                "console.session_max_secs must be at most {MAX_PEOPLE_TTL}"
            ));
        }
        Ok(())
    }
}

/// A socket address written as a string, where the empty string means none.
mod optional_addr {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::SocketAddr;

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(a) => s.collect_str(a),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

/// Lifetimes of the credentials of people and service accounts. A credential renews itself
/// when used past half its lifetime; one left unused longer than that needs a new invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeopleConfig {
    /// Lifetime of a person's or service account's certificate, in seconds (a week).
    pub credential_ttl_secs: u64,
    /// Lifetime of an invite code, in seconds (a day).
    pub invite_ttl_secs: u64,
    /// A person's containment of a protected host, and the release of a host a playbook
    /// isolated for a critical incident, wait for a second person's approval.
    pub four_eyes: bool,
    /// How long such a request waits for its second person, in seconds.
    pub approval_timeout_secs: u64,
    /// A fan-out (`cordonctl isolate --labels`) that would isolate more hosts than this is
    /// refused unless the person states a maximum at least as large (`--max N`).
    pub fanout_cap: u32,
}

/// The longest credential or invite: 90 days.
const MAX_PEOPLE_TTL: u64 = 90 * 24 * 3600;

impl Default for PeopleConfig {
    fn default() -> Self {
        Self {
            credential_ttl_secs: 7 * 24 * 3600,
            invite_ttl_secs: 24 * 3600,
            four_eyes: false,
            approval_timeout_secs: 3600,
            fanout_cap: 10,
        }
    }
}

impl PeopleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_PEOPLE_TTL).contains(&self.credential_ttl_secs)
            || !(1..=MAX_PEOPLE_TTL).contains(&self.invite_ttl_secs)
            || !(1..=MAX_PEOPLE_TTL).contains(&self.approval_timeout_secs)
        {
            return Err(format!(
                "people.credential_ttl_secs, invite_ttl_secs and approval_timeout_secs must be 1 to {MAX_PEOPLE_TTL}"
            ));
        }
        if self.fanout_cap == 0 {
            return Err("people.fanout_cap must be at least 1".into());
        }
        Ok(())
    }
}

/// Deadlines and caps for connections to the listener. A source is an IPv4 address or an
/// IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// A connection must complete its TLS handshake within this many seconds of being accepted.
    pub handshake_timeout_secs: u64,
    /// A connection must start its first request (after the HTTP/2 preface) within this many
    /// seconds of being accepted, or it is closed. Open requests, such as an agent's stream,
    /// are never cut by it.
    pub first_request_timeout_secs: u64,
    /// Most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: u32,
    /// Most connections open at once from one source.
    pub max_connections_per_source: u32,
    /// Most admin streams (`events tail`, file downloads) one principal holds open at once.
    pub max_streams_per_admin: u32,
    /// Refused connections and enrolment attempts are logged as one line per this interval.
    pub refusal_log_interval_secs: u64,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            handshake_timeout_secs: 5,
            first_request_timeout_secs: 10,
            max_connections: 30_000,
            max_connections_per_source: 512,
            max_streams_per_admin: 16,
            refusal_log_interval_secs: 60,
        }
    }
}

/// Longest deadline the listener accepts, in seconds.
pub const MAX_LISTENER_TIMEOUT_SECS: u64 = 300;

impl ListenerConfig {
    pub fn validate(&self) -> Result<(), String> {
        let timeouts = 1..=MAX_LISTENER_TIMEOUT_SECS;
        if !timeouts.contains(&self.handshake_timeout_secs)
            || !timeouts.contains(&self.first_request_timeout_secs)
        {
            return Err(format!(
                "listener.handshake_timeout_secs and first_request_timeout_secs must be 1 to {MAX_LISTENER_TIMEOUT_SECS}"
            ));
        }
        if self.first_request_timeout_secs < self.handshake_timeout_secs {
            return Err(
                "listener.first_request_timeout_secs must be at least handshake_timeout_secs"
                    .into(),
            );
        }
        if self.max_connections == 0
            || self.max_connections_per_source == 0
            || self.max_connections_per_source > self.max_connections
        {
            return Err("listener.max_connections and max_connections_per_source must be positive, and the second at most the first".into());
        }
        if !(1..=10_000).contains(&self.max_streams_per_admin) {
            return Err("listener.max_streams_per_admin must be 1 to 10000".into());
        }
        if !(1..=3600).contains(&self.refusal_log_interval_secs) {
            return Err("listener.refusal_log_interval_secs must be 1 to 3600".into());
        }
        Ok(())
    }
}

/// How many enrolment attempts one source may make: `burst` at once, then `refill_per_minute`.
/// An enrolment that succeeds gives its attempt back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrolmentConfig {
    pub burst: u32,
    pub refill_per_minute: u32,
}

impl Default for EnrolmentConfig {
    fn default() -> Self {
        Self {
            burst: 20,
            refill_per_minute: 60,
        }
    }
}

impl EnrolmentConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100_000).contains(&self.burst) || !(1..=600_000).contains(&self.refill_per_minute)
        {
            return Err(
                "enrolment.burst must be 1 to 100000 and refill_per_minute 1 to 600000".into(),
            );
        }
        Ok(())
    }
}

/// Where detection rules come from and how alerts fold together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Sigma rules (*.yml, *.yaml, recursively) loaded at every start, in addition to the
    /// rules imported with `cordonctl rules import`. Empty: none.
    pub rules_dir: String,
    /// Watch `rules_dir` and apply a rule file added, changed or removed while running
    /// (see `reload.rs`).
    pub reload: bool,
    /// A rule matching again on the same host within this many seconds counts on its first
    /// alert instead of raising a new one.
    pub alert_window_secs: u64,
    /// Alerts on a host within this many seconds of its open incident's last activity join it.
    pub incident_window_secs: u64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            rules_dir: String::new(),
            reload: true,
            alert_window_secs: 600,
            incident_window_secs: 3600,
        }
    }
}

impl DetectionConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.alert_window_secs == 0 || self.incident_window_secs == 0 {
            return Err(
                "detection.alert_window_secs and incident_window_secs must be positive".into(),
            );
        }
        if !self.rules_dir.is_empty() && !Path::new(&self.rules_dir).is_dir() {
            return Err(format!(
                "detection.rules_dir {:?} is not a directory",
                self.rules_dir
            ));
        }
        Ok(())
    }
}

/// How long stored events are kept. Either limit, both, or neither (0 keeps everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventRetention {
    /// Events whose own time (the agent's clock) is older than this many days are pruned.
    pub retention_days: u32,
    /// At most this many events are kept, the newest by (time, agent, sequence number).
    pub max_rows: u64,
}

/// Longest retention accepted, in days (a century; beyond it the cutoff arithmetic is silly).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Smallest row cap accepted: fewer would prune events before anyone could look at them.
pub const MIN_MAX_ROWS: u64 = 10_000;

impl Default for EventRetention {
    /// 30 days, no row cap.
    fn default() -> Self {
        Self {
            retention_days: 30,
            max_rows: 0,
        }
    }
}

impl EventRetention {
    /// Keeps everything.
    pub const FOREVER: Self = Self {
        retention_days: 0,
        max_rows: 0,
    };

    pub fn validate(&self) -> Result<(), String> {
        if self.retention_days > MAX_RETENTION_DAYS {
            return Err(format!(
                "events.retention_days must be at most {MAX_RETENTION_DAYS} (0 keeps events forever)"
            ));
        }
        if self.max_rows != 0 && self.max_rows < MIN_MAX_ROWS {
            return Err(format!(
                "events.max_rows must be 0 (no cap) or at least {MIN_MAX_ROWS}"
            ));
        }
        Ok(())
    }

    /// The row cap, if there is one.
    pub fn keep_newest(&self) -> Option<u64> {
        (self.max_rows > 0).then_some(self.max_rows)
    }

    /// Events older than this (Unix ms) go, if there is an age limit.
    pub fn cutoff_ms(&self, now_ms: i64) -> Option<i64> {
        (self.retention_days > 0)
            .then(|| now_ms.saturating_sub(i64::from(self.retention_days) * 86_400_000))
    }
}

/// `[investigation]`: what the controller accepts from investigations on hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvestigationConfig {
    /// The largest file a fetch may bring; chunks past it are dropped (and the fetch fails).
    pub max_fetch_bytes: u64,
}

impl Default for InvestigationConfig {
    fn default() -> Self {
        Self {
            max_fetch_bytes: 100 << 20,
        }
    }
}

impl InvestigationConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
