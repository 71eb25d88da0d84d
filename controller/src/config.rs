//! Controller configuration: `controller.toml` in the data directory (written by `init`), or
//! a file given with `--config` (the packaged `/etc/cordon/controller.toml`).

use crate::notify::NotifyConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

pub const CONFIG_FILE: &str = "controller.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Address the gRPC listener binds (agents, admins and enrolment share it).
    pub listen: SocketAddr,
    /// URL agents and admins use to reach this controller.
    pub url: String,
    /// DNS names and IP addresses for the server certificate, used when the PKI is created.
    #[serde(default)]
    pub names: Vec<String>,
    /// Lifetime of agent client certificates; agents renew at two thirds of it.
    #[serde(default = "default_agent_cert_ttl")]
    pub agent_cert_ttl_secs: u64,
    /// Default lifetime of a command before it expires unexecuted.
    #[serde(default = "default_command_ttl")]
    pub command_ttl_secs: u64,
    /// Close an agent's stream after this long without any message from it.
    #[serde(default = "default_idle")]
    pub agent_idle_timeout_secs: u64,
    /// `[listener]`: deadlines and caps for connections.
    #[serde(default)]
    pub listener: ListenerConfig,
    /// `[enrolment]`: how often one source may try to enrol.
    #[serde(default)]
    pub enrolment: EnrolmentConfig,
    /// `[events]`: how much stored telemetry is kept.
    #[serde(default)]
    pub events: EventRetention,
    /// `[detection]`: rules loaded at start, and how alerts are grouped.
    #[serde(default)]
    pub detection: DetectionConfig,
    /// `[playbooks]`: automated response and its guards.
    #[serde(default)]
    pub playbooks: crate::playbook::PlaybookConfig,
    /// `[notify]`: webhooks that playbooks notify.
    #[serde(default, skip_serializing_if = "NotifyConfig::is_empty")]
    pub notify: NotifyConfig,
    /// `[people]`: credentials of people and service accounts.
    #[serde(default)]
    pub people: PeopleConfig,
    /// `[console]`: the web console.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// `[store]`: where state is kept (SQLite in the data directory unless a URL is given).
    #[serde(default, skip_serializing_if = "StoreConfig::is_default")]
    pub store: StoreConfig,
}

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
    fn is_default(&self) -> bool {
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

fn default_agent_cert_ttl() -> u64 {
    24 * 3600
}
fn default_command_ttl() -> u64 {
    3600
}
fn default_idle() -> u64 {
    90
}

pub use cordon_proto::config::ConfigError;

impl ControllerConfig {
    pub fn new(listen: SocketAddr, url: String) -> Self {
        Self {
            listen,
            url,
            names: Vec::new(),
            agent_cert_ttl_secs: default_agent_cert_ttl(),
            command_ttl_secs: default_command_ttl(),
            agent_idle_timeout_secs: default_idle(),
            listener: ListenerConfig::default(),
            enrolment: EnrolmentConfig::default(),
            events: EventRetention::default(),
            detection: DetectionConfig::default(),
            playbooks: Default::default(),
            notify: NotifyConfig::default(),
            people: PeopleConfig::default(),
            console: ConsoleConfig::default(),
            store: StoreConfig::default(),
        }
    }

    /// Loads `DATA_DIR/controller.toml`.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        Self::load_file(&data_dir.join(CONFIG_FILE))
    }

    /// Loads `config` if given, else `DATA_DIR/controller.toml`.
    pub fn load_from(data_dir: &Path, config: Option<&Path>) -> Result<Self, ConfigError> {
        match config {
            Some(path) => Self::load_file(path),
            None => Self::load(data_dir),
        }
    }

    pub fn load_file(path: &Path) -> Result<Self, ConfigError> {
        cordon_proto::config::load(path, Self::validate)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.url.starts_with("https://") {
            return Err(format!("url {:?} must start with https://", self.url));
        }
        if self.agent_cert_ttl_secs < 10 {
            return Err("agent_cert_ttl_secs must be at least 10".into());
        }
        if self.command_ttl_secs == 0 {
            return Err("command_ttl_secs must be positive".into());
        }
        if self.agent_idle_timeout_secs < 5 {
            return Err("agent_idle_timeout_secs must be at least 5".into());
        }
        self.listener.validate()?;
        self.enrolment.validate()?;
        self.events.validate()?;
        self.detection.validate()?;
        self.playbooks.validate()?;
        self.people.validate()?;
        self.console.validate()?;
        self.store.validate()?;
        if self.console.listen == Some(self.listen) {
            return Err("console.listen must be another address than listen".into());
        }
        self.notify.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<ControllerConfig, String> {
        let text =
            format!("listen = \"127.0.0.1:7443\"\nurl = \"https://localhost:7443\"\n{extra}");
        let cfg: ControllerConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn the_store_is_sqlite_unless_a_postgres_url_is_given() {
        let sqlite = parse("").unwrap();
        assert_eq!(sqlite.store.postgres(), None);
        assert!(!toml::to_string(&sqlite).unwrap().contains("[store]"));
        let pg = parse(
            "[store]\nurl = \"postgres://cordon:secret@db.example:5432/cordon\"\npool_size = 8",
        )
        .unwrap();
        let o = pg.store.postgres().expect("a PostgreSQL store");
        assert_eq!(o.url, "postgres://cordon:secret@db.example:5432/cordon");
        assert_eq!(o.pool_size, 8);
        assert_eq!(o.statement_timeout, std::time::Duration::from_secs(30));
        for (bad, why) in [
            ("url = \"mysql://db/cordon\"", "postgres:// URL"),
            (
                "url = \"postgres://u:secret@db:notaport/x\"",
                "postgres:// URL",
            ),
            ("url = \"postgres://db/x\"\npool_size = 0", "1 to 256"),
            ("statement_timeout_secs = 0", "1 to 3600"),
        ] {
            let err = parse(&format!("[store]\n{bad}")).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                !err.contains("secret"),
                "the password stays out of errors: {err}"
            );
        }
    }

    #[test]
    fn event_retention_defaults_to_thirty_days_without_a_row_cap() {
        assert_eq!(parse("").unwrap().events, EventRetention::default());
        assert_eq!(
            parse("[events]\nmax_rows = 50000").unwrap().events,
            EventRetention {
                retention_days: 30,
                max_rows: 50_000
            }
        );
        assert_eq!(
            parse("[events]\nretention_days = 0")
                .unwrap()
                .events
                .cutoff_ms(1_000),
            None
        );
    }

    #[test]
    fn bad_event_retention_is_refused() {
        for (bad, why) in [
            ("retention_days = 36501", "at most"),
            ("max_rows = 10", "at least"),
            ("retention_days = -1", "invalid value"),
            ("max_rows = \"many\"", "invalid type"),
            ("keep = 3", "unknown field"),
        ] {
            let err = parse(&format!("[events]\n{bad}")).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn listener_and_enrolment_limits_have_defaults_and_bad_ones_are_refused() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.listener, ListenerConfig::default());
        assert_eq!(cfg.enrolment, EnrolmentConfig::default());
        let cfg =
            parse("[listener]\nmax_connections_per_source = 4\n[enrolment]\nburst = 3").unwrap();
        assert_eq!(cfg.listener.max_connections_per_source, 4);
        assert_eq!(cfg.enrolment.burst, 3);
        for (bad, why) in [
            ("[listener]\nhandshake_timeout_secs = 0", "1 to 300"),
            ("[listener]\nfirst_request_timeout_secs = 301", "1 to 300"),
            (
                "[listener]\nhandshake_timeout_secs = 20",
                "at least handshake",
            ),
            ("[listener]\nmax_connections = 0", "positive"),
            (
                "[listener]\nmax_connections = 10\nmax_connections_per_source = 11",
                "at most",
            ),
            ("[listener]\nrefusal_log_interval_secs = 0", "1 to 3600"),
            ("[listener]\nidle = 3", "unknown field"),
            ("[enrolment]\nburst = 0", "1 to 100000"),
            ("[enrolment]\nrefill_per_minute = 0", "refill_per_minute"),
            ("[enrolment]\nrate = 1", "unknown field"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn notify_webhooks_are_read_from_controller_toml() {
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "0123456789abcdef").unwrap();
        let cfg = parse(&format!(
            "[[notify.webhooks]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9000/hook\"\n\
             secret_file = {:?}\nretries = 1\n\
             [[notify.webhooks]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/x\"\nslack = true",
            secret.path()
        ))
        .unwrap();
        let names: Vec<_> = cfg
            .notify
            .webhooks
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(names, ["soc", "chat"]);
        assert_eq!(cfg.notify.webhooks[0].retries, 1);
        assert!(parse("").unwrap().notify.is_empty());
        let err = parse("[[notify.webhooks]]\nname = \"x\"\nurl = \"ftp://h/\"\nslack = true")
            .unwrap_err();
        assert!(err.contains("http or https"), "{err}");
        // An empty [notify] is left out of a written config.
        let written = toml::to_string_pretty(&parse("").unwrap()).unwrap();
        assert!(!written.contains("notify"), "{written}");
    }

    #[test]
    fn the_console_is_off_unless_it_has_an_address() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.console, ConsoleConfig::default());
        assert_eq!(
            parse("[console]\nlisten = \"\"").unwrap().console.listen,
            None
        );
        let on = parse("[console]\nlisten = \"127.0.0.1:7444\"\nsession_idle_secs = 60").unwrap();
        assert_eq!(on.console.listen, Some("127.0.0.1:7444".parse().unwrap()));
        assert_eq!(on.console.session_idle_secs, 60);
        for (bad, why) in [
            ("listen = \"nowhere\"", "invalid socket address"),
            ("session_idle_secs = 0", "positive"),
            ("session_idle_secs = 100\nsession_max_secs = 50", "at least"),
            ("port = 1", "unknown field"),
            ("listen = \"127.0.0.1:7443\"", "another address"),
        ] {
            let err = parse(&format!("[console]\n{bad}")).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn a_written_config_reads_back_the_same() {
        let mut cfg = ControllerConfig::new(
            "127.0.0.1:7443".parse().unwrap(),
            "https://localhost:7443".into(),
        );
        cfg.events.max_rows = 1_000_000;
        cfg.console.listen = Some("127.0.0.1:7444".parse().unwrap());
        let back: ControllerConfig =
            toml::from_str(&toml::to_string_pretty(&cfg).unwrap()).unwrap();
        assert_eq!(back.events, cfg.events);
        assert_eq!(back.console, cfg.console);
    }
}
