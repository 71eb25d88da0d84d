//! The `[notify]` table of controller.toml: named webhooks and how hard to try each.

use super::http::Endpoint;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// Bounds on the per-webhook settings.
pub const TIMEOUT_MS: (u64, u64) = (100, 60_000);
pub const MAX_RETRIES: u32 = 10;
pub const BACKOFF_MS: (u64, u64) = (10, 60_000);
/// The longest wait between two attempts, whatever the backoff doubling or a 429 asks for.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
pub const MAX_WEBHOOKS: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[[notify.webhooks]]`, each with a unique name that playbooks refer to.
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook.
///
/// The HMAC secret comes from a file, never from controller.toml itself: the config file is
/// readable by more people and tools (packaging, backups, `validate-config` output, support
/// bundles) than a secret should be, and a file of its own can be mode 0600 and rotated
/// without touching the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// What playbooks call it: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// `http://` or `https://` (verified against the system's CA certificates).
    pub url: String,
    /// File holding the HMAC-SHA256 secret (at least 16 bytes; surrounding whitespace is
    /// ignored; must not be readable by others). Required unless `slack = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// Limit on each attempt: connecting, TLS, sending and receiving the status line.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Further attempts after the first one fails with a connection error, a timeout, 429 or 5xx.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry; it doubles each time (at most 30 s), with jitter.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Send a Slack-compatible `{"text": ..., "blocks": [...]}` instead of the JSON notification.
    #[serde(default)]
    pub slack: bool,
}

fn default_timeout_ms() -> u64 {
    3000
}
fn default_retries() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    500
}

impl NotifyConfig {
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.webhooks.len() > MAX_WEBHOOKS {
            return Err(format!("notify: at most {MAX_WEBHOOKS} webhooks"));
        }
        let mut names = HashSet::new();
        for w in &self.webhooks {
            w.validate()
                .map_err(|e| format!("notify.webhooks {:?}: {e}", w.name))?;
            if !names.insert(w.name.as_str()) {
                return Err(format!(
                    "notify.webhooks: the name {:?} is used twice",
                    w.name
                ));
            }
        }
        Ok(())
    }
}

impl WebhookConfig {
    /// A webhook with the default timeout, retries and backoff.
    pub fn new(name: &str, url: &str, secret_file: Option<PathBuf>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            secret_file,
            timeout_ms: default_timeout_ms(),
            retries: default_retries(),
            backoff_ms: default_backoff_ms(),
            slack: false,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(name_ok) {
            return Err("name must be 1 to 64 letters, digits, '-', '_' or '.'".into());
        }
        Endpoint::parse(&self.url)?;
        let in_range = |v: u64, (lo, hi): (u64, u64)| (lo..=hi).contains(&v);
        if !in_range(self.timeout_ms, TIMEOUT_MS) {
            return Err(format!(
                "timeout_ms must be between {} and {}",
                TIMEOUT_MS.0, TIMEOUT_MS.1
            ));
        }
        if self.retries > MAX_RETRIES {
            return Err(format!("retries must be at most {MAX_RETRIES}"));
        }
        if !in_range(self.backoff_ms, BACKOFF_MS) {
            return Err(format!(
                "backoff_ms must be between {} and {}",
                BACKOFF_MS.0, BACKOFF_MS.1
            ));
        }
        match &self.secret_file {
            None if !self.slack => Err(
                "secret_file is required (only Slack webhooks, whose URL is the secret, may omit it)"
                    .into(),
            ),
            Some(path) if !path.is_file() => Err(format!("secret_file {path:?} is not a file")),
            _ => Ok(()),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The longest one send can take: every attempt timing out, every backoff at its maximum
    /// (a 429's Retry-After included). What a playbook step's own timeout should exceed.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.retries + 1;
        let waits = (0..self.retries)
            .map(|i| retry_wait_limit(Duration::from_millis(self.backoff_ms), i + 1))
            .sum::<Duration>();
        self.timeout() * attempts + waits
    }
}

/// The wait before retry number `retry` (1-based) before jitter: `backoff * 2^(retry-1)`,
/// capped at [`MAX_BACKOFF`].
pub fn backoff_ceiling(backoff: Duration, retry: u32) -> Duration {
    let factor = 1u32 << retry.saturating_sub(1).min(16);
    backoff.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The longest wait before retry number `retry`: twice its ceiling (so a 429's Retry-After is
/// honoured up to that), at most [`MAX_BACKOFF`].
pub fn retry_wait_limit(backoff: Duration, retry: u32) -> Duration {
    backoff_ceiling(backoff, retry)
        .saturating_mul(2)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<NotifyConfig, String> {
        let cfg: NotifyConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn secret() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "0123456789abcdef0123").unwrap();
        f
    }

    #[test]
    fn notify_webhook_defaults_apply() {
        let s = secret();
        let cfg = parse(&format!(
            "[[webhooks]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9000/hook\"\nsecret_file = {:?}",
            s.path()
        ))
        .unwrap();
        let w = &cfg.webhooks[0];
        assert_eq!(
            (w.timeout_ms, w.retries, w.backoff_ms, w.slack),
            (3000, 3, 500, false)
        );
        // 4 attempts of 3 s, plus waits of at most 1, 2 and 4 s with their 429 allowance.
        assert!(w.worst_case() >= Duration::from_secs(12));
        assert!(w.worst_case() <= Duration::from_secs(12 + 14));
    }

    #[test]
    fn notify_bad_webhooks_are_refused() {
        let s = secret();
        let ok = format!(
            "name = \"soc\"\nurl = \"https://hooks.example.org/x\"\nsecret_file = {:?}",
            s.path()
        );
        let cases = [
            (
                "name = \"a b\"\nurl = \"http://h/\"\nslack = true",
                "name must be",
            ),
            (
                "name = \"s\"\nurl = \"ftp://h/x\"\nslack = true",
                "http or https",
            ),
            ("name = \"s\"\nurl = \"https:///x\"\nslack = true", "url"),
            (
                "name = \"s\"\nurl = \"http://u:p@h/x\"\nslack = true",
                "credentials",
            ),
            (
                "name = \"s\"\nurl = \"http://h/x\"",
                "secret_file is required",
            ),
            (
                "name = \"s\"\nurl = \"http://h/x\"\nsecret_file = \"/nonexistent/s\"",
                "not a file",
            ),
            (&format!("{ok}\ntimeout_ms = 0"), "timeout_ms"),
            (&format!("{ok}\ntimeout_ms = 600000"), "timeout_ms"),
            (&format!("{ok}\nretries = 11"), "retries"),
            (&format!("{ok}\nbackoff_ms = 1"), "backoff_ms"),
            (&format!("{ok}\nsecret = \"inline\""), "unknown field"),
        ];
        for (body, why) in cases {
            let err = parse(&format!("[[webhooks]]\n{body}")).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
        let twice = format!("[[webhooks]]\n{ok}\n[[webhooks]]\n{ok}");
        assert!(parse(&twice).unwrap_err().contains("used twice"));
        assert!(parse(&format!("[[webhooks]]\n{ok}")).is_ok());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn notify_backoff_doubles_up_to_the_cap() {
        let b = Duration::from_millis(500);
        assert_eq!(backoff_ceiling(b, 1), Duration::from_millis(500));
        assert_eq!(backoff_ceiling(b, 3), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(b, 10), MAX_BACKOFF);
        assert_eq!(backoff_ceiling(Duration::from_secs(60), 100), MAX_BACKOFF);
    }
}
