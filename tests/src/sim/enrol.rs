//! The simulated agents' identities: enrolled through the real path (a key pair made here, the
//! CA pinned by fingerprint, a token and a CSR traded for a certificate) by the agent's own
//! enrolment code, each into its own state directory under a cache directory, so a rerun
//! against the same controller loads them instead of enrolling again.

use cordon_agent::state::StateDir;
use cordon_agent::uplink::enroll::{EnrollOptions, enroll};
use cordon_proto::CreateTokenRequest;
use cordonctl::client::{AdminConfig, connect};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a simulated agent connects with.
pub struct SimIdentity {
    pub index: usize,
    pub agent_id: String,
    pub controller: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The pinned Ed25519 key commands are signed with.
    pub signing_key: Vec<u8>,
    /// The agent's command ledger (every command runs at most once).
    pub ledger: PathBuf,
}

/// How the identities of a fleet came to be.
#[derive(Debug, Clone, Copy)]
pub struct Enrolled {
    /// Loaded from the cache.
    pub cached: usize,
    /// Enrolled now, and how long that took.
    pub fresh: usize,
    pub took: Duration,
}

impl Enrolled {
    pub fn rate(&self) -> f64 {
        self.fresh as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// The cache directory for the controller whose CA has `ca_fingerprint` (identities of one
/// controller are useless to another).
fn cache_for(cache: &Path, ca_fingerprint: &str) -> PathBuf {
    let short: String = ca_fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    cache.join(short)
}

/// Loads `n` identities for the controller `admin` talks to from `cache`, enrolling the
/// missing ones with one token of that many uses, `parallel` enrolments in flight.
pub async fn fleet_identities(
    admin: &AdminConfig,
    cache: &Path,
    n: usize,
    parallel: usize,
) -> anyhow::Result<(Vec<Arc<SimIdentity>>, Enrolled)> {
    let batch = Batch {
        first: 0,
        n,
        labels: HashMap::new(),
    };
    batch_identities(admin, cache, &batch, parallel).await
}

/// Simulated agents `first..first + n`, enrolled with a token carrying `labels` (besides
/// `sim=true`). Batches with other labels keep their identities apart in the cache; give
/// batches of one fleet disjoint ranges, so that their source addresses spread as one.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub first: usize,
    pub n: usize,
    pub labels: HashMap<String, String>,
}

impl Batch {
    fn range(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.n
    }

    /// The token's labels.
    fn token_labels(&self) -> HashMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("sim".into(), "true".into());
        labels
    }

    /// The cache subdirectory of this batch's labels (none for the plain fleet).
    fn subdir(&self, dir: PathBuf) -> PathBuf {
        if self.labels.is_empty() {
            return dir;
        }
        let mut pairs: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.sort();
        let name: String = pairs
            .join(",")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "=,.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        dir.join(format!("labels-{name}"))
    }
}

/// Loads the identities of `batch` for the controller `admin` talks to from `cache`,
/// enrolling the missing ones with one token of that many uses, `parallel` in flight.
pub async fn batch_identities(
    admin: &AdminConfig,
    cache: &Path,
    batch: &Batch,
    parallel: usize,
) -> anyhow::Result<(Vec<Arc<SimIdentity>>, Enrolled)> {
    let mut client = connect(admin).await?;
    let probe = client
        .create_token(CreateTokenRequest {
            ttl_secs: 3600,
            uses: batch.n.max(1) as u32,
            labels: batch.token_labels(),
        })
        .await?
        .into_inner();
    let dir = batch.subdir(cache_for(cache, &probe.ca_fingerprint));
    std::fs::create_dir_all(&dir)?;
    let missing: Vec<usize> = batch
        .range()
        .filter(|&i| !state(&dir, i).is_enrolled())
        .collect();
    let started = Instant::now();
    let next = Arc::new(std::sync::Mutex::new(missing.clone()));
    let mut workers = Vec::new();
    for _ in 0..parallel.max(1) {
        let (next, token, dir) = (next.clone(), probe.clone(), dir.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(i) = next.lock().unwrap().pop() else {
                    return anyhow::Ok(());
                };
                let opts = EnrollOptions {
                    controllers: vec![token.controller_url.clone()],
                    token: token.token.clone(),
                    ca_fingerprint: token.ca_fingerprint.clone(),
                    labels: HashMap::new(),
                    force: true,
                };
                enroll(&state(&dir, i), opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("enrolling simulated agent {i}: {e}"))?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let enrolled = Enrolled {
        cached: batch.n - missing.len(),
        fresh: missing.len(),
        took: started.elapsed(),
    };
    let ids = batch
        .range()
        .map(|i| load(i, &state(&dir, i)).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    Ok((ids, enrolled))
}

/// The state directory of the `i`-th simulated agent.
fn state(dir: &Path, i: usize) -> StateDir {
    StateDir::new(dir.join(format!("agent-{i:05}")))
}

/// One enrolled agent's identity, from its state directory.
fn load(index: usize, state: &StateDir) -> anyhow::Result<SimIdentity> {
    let identity = state.identity()?;
    Ok(SimIdentity {
        index,
        agent_id: identity.agent_id,
        controller: identity.controller,
        ca_pem: state.read(&state.ca())?,
        cert_pem: state.read(&state.cert())?,
        key_pem: state.read(&state.key())?,
        signing_key: hex::decode(&identity.command_signing_key)?,
        ledger: state.ledger(),
    })
}
