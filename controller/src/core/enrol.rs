//! Enrolment: administrators create tokens (stored only as a hash); a host presents one with
//! a CSR and gets a short-lived client certificate. The token is checked before the CA signs
//! anything, and its use is taken in the same transaction that records the agent, so
//! concurrent enrolments never take more uses than it has. Protection labels
//! (`playbooks.protected_labels`) come from the token only: the host's own are ignored.

use super::{Admin, Controller, CoreError, MAX_TOKEN_TTL};
use crate::policy::audit::AuditEntry;
use crate::store::{Agents, Enrolment, Tokens};
use cordon_proto::EnrollRequest;
use cordon_proto::limits::{MAX_TOKEN, MAX_TOKEN_USES, check_host, check_labels};
use cordon_proto::time::now_ms;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// Lifetime of a token when the administrator does not say.
const DEFAULT_TOKEN_TTL: u64 = 3600;

/// The stored form of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// How the audit log names a token without revealing it: a prefix of its stored hash.
pub fn token_ref(token: &str) -> String {
    format!("token:{}", &token_hash(token)[..16])
}

/// A token just created (the only time its text exists outside the administrator's hands).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: String,
    pub expires_at_ms: i64,
    pub uses: u32,
    pub labels: HashMap<String, String>,
}

/// What an enrolled host takes home.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub agent_id: String,
    pub certificate_pem: String,
    pub certificate_expires_at_ms: i64,
}

impl Controller {
    /// Creates an enrolment token; 0 for `ttl_secs` or `uses` means the default.
    pub async fn create_token(
        &self,
        admin: &Admin,
        ttl_secs: u64,
        uses: u32,
        labels: HashMap<String, String>,
    ) -> Result<NewToken, CoreError> {
        let entry = admin.entry("token.create", "").detail(json!({
            "ttl_secs": ttl_secs, "uses": uses, "labels": labels,
        }));
        let result = async {
            check_labels(&labels).map_err(CoreError::BadLabels)?;
            let ttl = if ttl_secs == 0 {
                DEFAULT_TOKEN_TTL
            } else {
                ttl_secs
            };
            if ttl > MAX_TOKEN_TTL {
                return Err(CoreError::TokenTtlTooLong);
            }
            let uses = if uses == 0 { 1 } else { uses };
            if uses > MAX_TOKEN_USES {
                return Err(CoreError::TokenUsesTooMany);
            }
            let token = cordon_proto::secrets::new_token();
            let now = now_ms();
            let expires_at_ms = now + (ttl * 1000) as i64;
            self.store
                .create_token(
                    token_hash(&token),
                    now,
                    expires_at_ms,
                    uses,
                    labels.clone(),
                    admin.name.clone(),
                )
                .await?;
            tracing::info!(by = %admin.name, uses, ttl_secs = ttl, "enrolment token created");
            Ok(NewToken {
                token,
                expires_at_ms,
                uses,
                labels: labels.clone(),
            })
        }
        .await;
        // The token itself is a secret: the entry names it by its stored hash.
        self.audited(entry, result, |t, e| {
            e.target = token_ref(&t.token);
            e.detail["uses"] = json!(t.uses);
            e.detail["expires_at_ms"] = json!(t.expires_at_ms);
        })
        .await
    }

    /// Checks the request and its token; only then signs the certificate and records the
    /// agent (taking the token's use in the same transaction, which checks the token again).
    pub async fn enrol(&self, req: EnrollRequest) -> Result<Enrolled, CoreError> {
        if req.token.is_empty() || req.token.len() > MAX_TOKEN {
            return Err(CoreError::TokenMissing);
        }
        let host = req.host.unwrap_or_default();
        check_host(&host).map_err(CoreError::BadHost)?;
        check_labels(&req.labels).map_err(CoreError::BadHost)?;
        let hash = token_hash(&req.token);
        self.store.check_token(hash.clone(), now_ms()).await??;
        let (labels, ignored) = host_labels(req.labels, &self.playbooks.config.protected_labels);
        let ttl = Duration::from_secs(self.config.agent_cert_ttl_secs);
        let issued = self.ca.sign_agent(&req.csr_der, ttl)?;
        let enrolment = Enrolment {
            token_hash: hash,
            agent_id: issued.agent_id.clone(),
            host: host.clone(),
            labels: labels.clone(),
            cert_serial: issued.serial.clone(),
            cert_expires_at_ms: issued.expires_at_ms,
            now_ms: now_ms(),
        };
        self.store.enroll(enrolment).await??;
        tracing::info!(agent_id = %issued.agent_id, hostname = %host.hostname, serial = %issued.serial, "agent enrolled");
        if !ignored.is_empty() {
            tracing::warn!(agent_id = %issued.agent_id, ignored = ?ignored, "ignored protection labels the host asked for: only tokens set them");
        }
        // Only enrolments that happened: refused ones come from anyone who can reach the port.
        let entry = AuditEntry::new(
            "enrolment",
            "agent.enroll",
            format!("agent:{}", issued.agent_id),
        )
        .detail(json!({
            "token": token_ref(&req.token),
            "hostname": host.hostname,
            "labels": labels,
            "ignored_labels": ignored,
            "certificate_serial": issued.serial,
        }));
        let _ = self.record(entry).await;
        Ok(Enrolled {
            agent_id: issued.agent_id,
            certificate_pem: issued.pem,
            certificate_expires_at_ms: issued.expires_at_ms,
        })
    }
}

/// Splits the labels a host asked for into those it may set and those it may not (`key=value`,
/// sorted): a key of a protection label is the token's or an administrator's to set.
fn host_labels(
    asked: HashMap<String, String>,
    protected: &[(String, String)],
) -> (HashMap<String, String>, Vec<String>) {
    let (ignored, kept): (HashMap<_, _>, HashMap<_, _>) = asked
        .into_iter()
        .partition(|(k, _)| protected.iter().any(|(p, _)| p == k));
    let mut ignored: Vec<String> = ignored.iter().map(|(k, v)| format!("{k}={v}")).collect();
    ignored.sort();
    (kept, ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_cannot_set_a_protection_label_whatever_its_value() {
        let protected = vec![("cordon.protected".to_string(), "true".to_string())];
        let asked: HashMap<String, String> = [("cordon.protected", "true"), ("env", "prod")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (kept, ignored) = host_labels(asked, &protected);
        assert_eq!(kept, HashMap::from([("env".into(), "prod".into())]));
        assert_eq!(ignored, ["cordon.protected=true"]);
        let asked = HashMap::from([("cordon.protected".to_string(), "no".to_string())]);
        assert_eq!(host_labels(asked, &protected).1, ["cordon.protected=no"]);
    }
}
