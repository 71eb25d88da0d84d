//! The real [`Notifier`]: signed HTTP POSTs to the configured webhooks, with retries.
//!
//! https URLs are verified against the system's CA certificates (rustls-native-certs:
//! /etc/ssl/certs on Debian, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), so a SOC's internal CA
//! works once it is installed on the controller host, and the roots follow the distribution's
//! updates rather than the binary's age.

use super::config::{NotifyConfig, WebhookConfig, backoff_ceiling, retry_wait_limit};
use super::http::{self, Endpoint};
use super::sign::{self, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{BoxFuture, Delivery, Notification, Notifier, NotifyError, payload};
use bytes::Bytes;
use rand::Rng;
use ring::hmac;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("[notify] is not valid: {0}")]
    Invalid(String),
    #[error("webhook {name:?}: reading secret_file {path}: {source}")]
    SecretRead {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "webhook {name:?}: secret_file {path} is accessible to other users (mode {mode:o}); make it 0600"
    )]
    SecretExposed {
        name: String,
        path: PathBuf,
        mode: u32,
    },
    #[error(
        "webhook {name:?}: secret_file {path} holds {len} bytes; at least {MIN_SECRET_LEN} are needed"
    )]
    SecretTooShort {
        name: String,
        path: PathBuf,
        len: usize,
    },
    #[error("https webhooks need CA certificates, and none were found in the system store ({0})")]
    NoSystemRoots(String),
    #[error("setting up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

struct Target {
    endpoint: Endpoint,
    key: Option<hmac::Key>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    slack: bool,
}

/// Sends to the webhooks of a [`NotifyConfig`]; secrets are read once, when it is built.
pub struct WebhookNotifier {
    targets: BTreeMap<String, Target>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl WebhookNotifier {
    /// Validates `cfg`, reads the secrets, and loads the system's CA certificates if any
    /// webhook is https.
    pub fn new(cfg: &NotifyConfig) -> Result<Self, SetupError> {
        let any_https = cfg
            .webhooks
            .iter()
            .any(|w| Endpoint::parse(&w.url).is_ok_and(|e| e.https));
        let roots = if any_https {
            Some(system_roots()?)
        } else {
            None
        };
        Self::build(cfg, roots)
    }

    /// Like [`WebhookNotifier::new`], trusting only `roots` for https.
    pub fn with_roots(
        cfg: &NotifyConfig,
        roots: rustls::RootCertStore,
    ) -> Result<Self, SetupError> {
        Self::build(cfg, Some(roots))
    }

    fn build(cfg: &NotifyConfig, roots: Option<rustls::RootCertStore>) -> Result<Self, SetupError> {
        cfg.validate().map_err(SetupError::Invalid)?;
        let mut targets = BTreeMap::new();
        for w in &cfg.webhooks {
            targets.insert(w.name.clone(), target(w)?);
        }
        let tls = roots.map(tls_config).transpose()?;
        Ok(Self { targets, tls })
    }

    async fn deliver(
        &self,
        name: &str,
        t: &Target,
        n: &Notification,
    ) -> Result<Delivery, NotifyError> {
        let body = payload::body(n, t.slack).map_err(|source| NotifyError::Encode {
            target: name.into(),
            source,
        })?;
        let body = Bytes::from(body);
        let delivery_id = hex::encode(rand::random::<[u8; 16]>());
        let mut last = Delivery {
            target: name.into(),
            attempts: 0,
            status: None,
            error: None,
        };
        for attempt in 1..=t.retries + 1 {
            let ts = unix_secs().to_string();
            let mut headers = vec![
                (DELIVERY_HEADER, delivery_id.clone()),
                (TIMESTAMP_HEADER, ts.clone()),
            ];
            if let Some(key) = &t.key {
                headers.push((SIGNATURE_HEADER, sign::sign(key, &ts, &body)));
            }
            let outcome = http::post(
                &t.endpoint,
                self.tls.as_ref(),
                &headers,
                body.clone(),
                t.timeout,
            )
            .await;
            last.attempts = attempt;
            let (retryable, hint) = match outcome {
                Ok(a) if (200..300).contains(&a.status) => {
                    last.status = Some(a.status);
                    last.error = None;
                    tracing::info!(
                        webhook = name,
                        attempt,
                        status = a.status,
                        "notification delivered"
                    );
                    return Ok(last);
                }
                Ok(a) => {
                    last.status = Some(a.status);
                    last.error = Some(describe_answer(a.status, &a.body));
                    (a.status == 429 || a.status >= 500, a.retry_after)
                }
                Err(e) => {
                    last.status = None;
                    last.error = Some(e.to_string());
                    (e.retryable(), None)
                }
            };
            tracing::warn!(
                webhook = name,
                attempt,
                status = last.status,
                error = last.error.as_deref().unwrap_or_default(),
                retryable,
                "notification attempt failed"
            );
            if !retryable || attempt > t.retries {
                break;
            }
            tokio::time::sleep(retry_wait(t.backoff, attempt, hint)).await;
        }
        Err(NotifyError::Undelivered(last))
    }
}

impl Notifier for WebhookNotifier {
    fn send<'a>(
        &'a self,
        target: &'a str,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<Delivery, NotifyError>> {
        Box::pin(async move {
            let t = self
                .targets
                .get(target)
                .ok_or_else(|| NotifyError::UnknownTarget {
                    target: target.into(),
                })?;
            self.deliver(target, t, n).await
        })
    }

    fn targets(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }
}

fn target(w: &WebhookConfig) -> Result<Target, SetupError> {
    Ok(Target {
        endpoint: Endpoint::parse(&w.url).map_err(SetupError::Invalid)?,
        key: match &w.secret_file {
            Some(path) => Some(sign::key(&read_secret(&w.name, path)?)),
            None => None,
        },
        timeout: w.timeout(),
        retries: w.retries,
        backoff: Duration::from_millis(w.backoff_ms),
        slack: w.slack,
    })
}

/// The secret's bytes without surrounding whitespace (a trailing newline is usual).
fn read_secret(name: &str, path: &Path) -> Result<Vec<u8>, SetupError> {
    let read_err = |source| SetupError::SecretRead {
        name: name.into(),
        path: path.into(),
        source,
    };
    let mode = std::fs::metadata(path)
        .map_err(read_err)?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        return Err(SetupError::SecretExposed {
            name: name.into(),
            path: path.into(),
            mode: mode & 0o7777,
        });
    }
    let raw = std::fs::read(path).map_err(read_err)?;
    let secret = raw.trim_ascii();
    if secret.len() < MIN_SECRET_LEN {
        return Err(SetupError::SecretTooShort {
            name: name.into(),
            path: path.into(),
            len: secret.len(),
        });
    }
    Ok(secret.to_vec())
}

fn system_roots() -> Result<rustls::RootCertStore, SetupError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "skipping part of the system CA store");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        return Err(SetupError::NoSystemRoots(if why.is_empty() {
            "the store is empty".into()
        } else {
            why.join("; ")
        }));
    }
    Ok(roots)
}

fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The wait before retry number `retry`: uniformly between half its ceiling and the ceiling,
/// or longer if the receiver's Retry-After asks (up to [`retry_wait_limit`]).
pub(super) fn retry_wait(backoff: Duration, retry: u32, retry_after: Option<Duration>) -> Duration {
    let ceiling = backoff_ceiling(backoff, retry).as_millis() as u64;
    let jittered = Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling));
    match retry_after {
        Some(asked) => jittered.max(asked.min(retry_wait_limit(backoff, retry))),
        None => jittered,
    }
}

fn describe_answer(status: u16, body: &str) -> String {
    let body: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
