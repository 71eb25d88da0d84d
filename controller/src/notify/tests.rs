//! The webhook notifier against HTTP(S) servers on 127.0.0.1 started by each test. Every
//! server accepts a bounded number of connections and stops with its test.

use super::sign::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use super::webhook::retry_wait;
use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const SECRET: &[u8] = b"a-webhook-secret-for-tests";
/// Connections any test server accepts before it stops.
const MAX_CONNECTIONS: usize = 16;

struct Received {
    headers: ::http::HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn verifies_with(&self, secret: &[u8]) -> bool {
        verify(
            secret,
            self.header(TIMESTAMP_HEADER),
            &self.body,
            self.header(SIGNATURE_HEADER),
        )
    }
}

/// A loopback server that answers its n-th request with `statuses[n]` (the last repeats).
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(statuses: &[u16], tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/hook?x=1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let statuses = statuses.to_vec();
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, statuses, tls) = (recorded.clone(), statuses.clone(), tls.clone());
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    let (seen, statuses) = (seen.clone(), statuses.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let n = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(Received {
                                headers: parts.headers,
                                body,
                            });
                            seen.len()
                        };
                        let status = statuses[(n - 1).min(statuses.len() - 1)];
                        let answer = Full::new(Bytes::from(format!("answer {n}")));
                        let resp = hyper::Response::builder()
                            .status(status)
                            .body(answer)
                            .unwrap();
                        Ok::<_, Infallible>(resp)
                    }
                });
                tokio::spawn(async move {
                    let conn = http1::Builder::new();
                    let _ = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(s) => conn.serve_connection(TokioIo::new(s), svc).await,
                            Err(_) => Ok(()),
                        },
                        None => conn.serve_connection(TokioIo::new(stream), svc).await,
                    };
                });
            }
        });
        Self { url, seen, task }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.seen.lock().unwrap()
    }
}

/// A webhook named `soc` at `url` with a secret file, fast timings, then `tweak`.
fn webhook(url: &str, tweak: impl FnOnce(&mut WebhookConfig)) -> (NotifyConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook.secret");
    std::fs::write(&secret, [SECRET, b"\n"].concat()).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut w = WebhookConfig::new("soc", url, Some(secret));
    w.timeout_ms = 2000;
    w.backoff_ms = 10;
    tweak(&mut w);
    (NotifyConfig { webhooks: vec![w] }, dir)
}

fn notifier(
    url: &str,
    tweak: impl FnOnce(&mut WebhookConfig),
) -> (WebhookNotifier, tempfile::TempDir) {
    let (cfg, dir) = webhook(url, tweak);
    (WebhookNotifier::new(&cfg).unwrap(), dir)
}

fn notification() -> Notification {
    Notification {
        kind: "playbook_step".into(),
        incident_id: Some("inc-42".into()),
        agent_id: Some("agent-7".into()),
        hostname: Some("web-1".into()),
        title: "Reverse shell <bash -i> & friends".into(),
        level: "critical".into(),
        text: "isolated the host".into(),
        at_ms: 1_700_000_000_123,
        playbook: Some("reverse-shell".into()),
        details: serde_json::json!({"step": "isolate_host", "pid": 4242}),
    }
}

fn undelivered(r: Result<Delivery, NotifyError>) -> Delivery {
    match r {
        Err(NotifyError::Undelivered(d)) => d,
        other => panic!("expected an undelivered notification, got {other:?}"),
    }
}

#[tokio::test]
async fn notify_posts_signed_json_that_verifies_with_the_secret_only() {
    let server = Server::start(&[200], None).await;
    let (n, _dir) = notifier(&server.url, |_| {});
    let d = n.send("soc", &notification()).await.unwrap();
    assert_eq!((d.attempts, d.status, d.error), (1, Some(200), None));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.header("content-type"), "application/json");
    let body: Notification = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body, notification());
    assert!(got.verifies_with(SECRET), "signature must verify");
    assert!(!got.verifies_with(b"another-secret-0123456789"));
    let ts: u64 = got.header(TIMESTAMP_HEADER).parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts) < 60, "timestamp {ts} is the send time");
    assert_eq!(got.header(DELIVERY_HEADER).len(), 32);
}

#[tokio::test]
async fn notify_retries_5xx_and_succeeds_on_the_third_attempt() {
    let server = Server::start(&[500, 503, 200], None).await;
    let (n, _dir) = notifier(&server.url, |_| {});
    let d = n.send("soc", &notification()).await.unwrap();
    assert_eq!((d.attempts, d.status, d.error), (3, Some(200), None));
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|r| r.verifies_with(SECRET)));
    let id = seen[0].header(DELIVERY_HEADER);
    assert!(seen.iter().all(|r| r.header(DELIVERY_HEADER) == id));
}

#[tokio::test]
async fn notify_retries_429() {
    let server = Server::start(&[429, 200], None).await;
    let (n, _dir) = notifier(&server.url, |_| {});
    let d = n.send("soc", &notification()).await.unwrap();
    assert_eq!((d.attempts, d.status), (2, Some(200)));
}

#[tokio::test]
async fn notify_does_not_retry_a_400() {
    let server = Server::start(&[400, 200], None).await;
    let (n, _dir) = notifier(&server.url, |_| {});
    let d = undelivered(n.send("soc", &notification()).await);
    assert_eq!((d.attempts, d.status), (1, Some(400)));
    assert_eq!(d.error.as_deref(), Some("HTTP 400: answer 1"));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn notify_gives_up_on_a_server_that_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0usize));
    let counter = accepted.clone();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            *counter.lock().unwrap() += 1;
            held.push(stream);
        }
    });
    let (n, _dir) = notifier(&url, |w| {
        w.timeout_ms = 200;
        w.retries = 2;
    });
    let start = Instant::now();
    let d = undelivered(n.send("soc", &notification()).await);
    let took = start.elapsed();
    silent.abort();
    assert_eq!((d.attempts, d.status), (3, None));
    assert!(
        d.error.as_deref().unwrap().contains("no answer within"),
        "{d:?}"
    );
    assert_eq!(*accepted.lock().unwrap(), 3);
    assert!(
        took >= Duration::from_millis(600),
        "three timeouts: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "bounded: {took:?}");
}

#[tokio::test]
async fn notify_retries_a_refused_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let (n, _dir) = notifier(&url, |w| w.retries = 2);
    let d = undelivered(n.send("soc", &notification()).await);
    assert_eq!((d.attempts, d.status), (3, None));
    assert!(
        d.error
            .as_deref()
            .unwrap()
            .contains("connecting to 127.0.0.1"),
        "{d:?}"
    );
}

#[tokio::test]
async fn notify_slack_mode_sends_text_and_blocks() {
    let server = Server::start(&[200], None).await;
    let (n, _dir) = notifier(&server.url, |w| w.slack = true);
    n.send("soc", &notification()).await.unwrap();
    let seen = server.seen();
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("Reverse shell &lt;bash -i&gt; &amp; friends"),
        "{text}"
    );
    assert!(
        text.contains("host: web-1") && text.contains("incident: inc-42"),
        "{text}"
    );
    assert!(text.contains("isolated the host"), "{text}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        "Reverse shell <bash -i> & friends"
    );
    assert!(body.get("kind").is_none(), "only Slack's fields: {body}");
    assert!(seen[0].verifies_with(SECRET));
}

#[tokio::test]
async fn notify_https_needs_a_trusted_certificate() {
    let (ca, _) = crate::ca::Ca::create("notify test CA").unwrap();
    let issued = ca
        .issue_server(&["127.0.0.1".into()], Duration::from_secs(3600))
        .unwrap();
    let cert = crate::ca::pem_to_der(&issued.cert_pem).unwrap();
    let key = rcgen::KeyPair::from_pem(&issued.key_pem).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let server = Server::start(&[200], Some(TlsAcceptor::from(Arc::new(server_cfg)))).await;
    let (cfg, _dir) = webhook(&server.url, |_| {});

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let trusting = WebhookNotifier::with_roots(&cfg, roots).unwrap();
    let d = trusting.send("soc", &notification()).await.unwrap();
    assert_eq!((d.attempts, d.status), (1, Some(200)));
    assert!(server.seen()[0].verifies_with(SECRET));

    let (other, _) = crate::ca::Ca::create("someone else").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other.cert_der().clone()).unwrap();
    let distrusting = WebhookNotifier::with_roots(&cfg, roots).unwrap();
    let d = undelivered(distrusting.send("soc", &notification()).await);
    assert_eq!(d.attempts, 1, "a certificate error is not retried: {d:?}");
    assert!(d.error.as_deref().unwrap().contains("TLS"), "{d:?}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn notify_unknown_targets_are_refused() {
    let (n, _dir) = notifier("http://127.0.0.1:9/hook", |_| {});
    assert_eq!(n.targets(), ["soc"]);
    let err = n.send("pager", &notification()).await.unwrap_err();
    assert!(matches!(err, NotifyError::UnknownTarget { .. }), "{err}");
}

#[test]
fn notify_secret_files_must_be_private_and_long_enough() {
    use std::os::unix::fs::PermissionsExt;
    let (cfg, dir) = webhook("http://127.0.0.1:9/hook", |_| {});
    let path = dir.path().join("webhook.secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = WebhookNotifier::new(&cfg).err().unwrap();
    assert!(
        err.to_string().contains("accessible to other users"),
        "{err}"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, "short\n").unwrap();
    let err = WebhookNotifier::new(&cfg).err().unwrap();
    assert!(err.to_string().contains("at least 16"), "{err}");
}

#[tokio::test]
async fn notify_recording_fake_records_and_fails_on_demand() {
    let fake = RecordingNotifier::new(&["soc", "chat"]);
    let n: &dyn Notifier = &fake;
    assert_eq!(n.targets(), ["chat", "soc"]);
    n.send("soc", &notification()).await.unwrap();
    assert!(matches!(
        n.send("nope", &notification()).await,
        Err(NotifyError::UnknownTarget { .. })
    ));
    fake.fail(503);
    let d = undelivered(n.send("chat", &notification()).await);
    assert_eq!(d.status, Some(503));
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0].0.as_str(), sent[1].0.as_str()), ("soc", "chat"));
}

#[test]
fn notify_retry_waits_are_jittered_within_bounds() {
    let backoff = Duration::from_millis(100);
    for _ in 0..200 {
        let w = retry_wait(backoff, 3, None);
        assert!(
            (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&w),
            "{w:?}"
        );
    }
    // A 429's Retry-After is honoured up to twice the ceiling.
    let w = retry_wait(backoff, 1, Some(Duration::from_secs(3600)));
    assert_eq!(w, Duration::from_millis(200));
}

#[test]
fn notify_https_webhooks_trust_the_system_store() {
    if rustls_native_certs::load_native_certs().certs.is_empty() {
        cordon_skips::skip(
            "notify_https_webhooks_trust_the_system_store",
            "no CA certificates in the system store (apt-get install ca-certificates)",
        );
        return;
    }
    // Building reads the store; nothing is sent.
    let (cfg, _dir) = webhook("https://hooks.example.org/x", |_| {});
    assert_eq!(WebhookNotifier::new(&cfg).unwrap().targets(), ["soc"]);
}
