//! The enrolment service: a single-use token and a CSR in, a short-lived client certificate,
//! the CA and the command-signing key out. Reached over server-authenticated TLS only, so
//! anyone who can reach the port can call it: each source has a few attempts at a time
//! (`[enrolment]`, `ratelimit.rs`; an enrolment that succeeds gives its attempt back), the
//! token is checked before the CA signs anything, and refusals are counted for the periodic
//! summary (`tally.rs`) instead of being logged one by one. Protection labels
//! (`playbooks.protected_labels`) come from the token only: the host's own are ignored.

use super::Controller;
use super::admission::source_key;
use crate::ca::CaError;
use crate::store::{AuditEntry, EnrollRefusal, Enrolment, StoreError};
use cordon_proto::enrollment_server::Enrollment;
use cordon_proto::limits::{check_host, check_labels};
use cordon_proto::time::now_ms;
use cordon_proto::{EnrollRequest, EnrollResponse};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

pub struct EnrollApi(pub Arc<Controller>);

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

/// An enrolment that did not happen: the reason the summary counts, and the caller's answer.
struct Refused {
    reason: &'static str,
    status: Status,
}

impl From<EnrollRefusal> for Refused {
    fn from(r: EnrollRefusal) -> Self {
        Self {
            reason: r.reason(),
            status: r.into(),
        }
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Self {
            reason: "internal_error",
            status: e.into(),
        }
    }
}

impl From<CaError> for Refused {
    fn from(e: CaError) -> Self {
        let reason = match e {
            CaError::BadCsr(_) | CaError::CsrTooLarge(_) => "bad_csr",
            _ => "internal_error",
        };
        Self {
            reason,
            status: e.into(),
        }
    }
}

fn invalid(message: String) -> Refused {
    Refused {
        reason: "invalid_request",
        status: Status::invalid_argument(message),
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollApi {
    async fn enroll(
        &self,
        req: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let ctl = &self.0;
        let source = req
            .remote_addr()
            .map(|a| source_key(a.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !ctl.enrol_limiter.try_take(source, Instant::now()) {
            ctl.enrol_refusals.note("rate_limited", source);
            return Err(Status::resource_exhausted(
                "too many enrolment attempts from this address; retry later",
            ));
        }
        match enrol(ctl, req.into_inner()).await {
            Ok(resp) => {
                ctl.enrol_limiter.give_back(source, Instant::now());
                Ok(Response::new(resp))
            }
            Err(refused) => {
                ctl.enrol_refusals.note(refused.reason, source);
                Err(refused.status)
            }
        }
    }
}

/// Checks the request and its token; only then signs the certificate and records the agent
/// (taking the token's use in the same transaction, which checks the token again).
async fn enrol(ctl: &Controller, req: EnrollRequest) -> Result<EnrollResponse, Refused> {
    if req.token.is_empty() || req.token.len() > cordon_proto::limits::MAX_TOKEN {
        return Err(Refused {
            reason: "invalid_request",
            status: Status::unauthenticated("a valid enrolment token is required"),
        });
    }
    let host = req.host.unwrap_or_default();
    check_host(&host).map_err(invalid)?;
    check_labels(&req.labels).map_err(invalid)?;
    let hash = token_hash(&req.token);
    ctl.store.check_token(hash.clone(), now_ms()).await??;
    let (labels, ignored) = host_labels(req.labels, &ctl.playbooks.config.protected_labels);
    let ttl = Duration::from_secs(ctl.config.agent_cert_ttl_secs);
    let issued = ctl.ca.sign_agent(&req.csr_der, ttl)?;
    let enrolment = Enrolment {
        token_hash: hash,
        agent_id: issued.agent_id.clone(),
        host: host.clone(),
        labels: labels.clone(),
        cert_serial: issued.serial.clone(),
        cert_expires_at_ms: issued.expires_at_ms,
        now_ms: now_ms(),
    };
    ctl.store.enroll(enrolment).await??;
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
    .detail(serde_json::json!({
        "token": token_ref(&req.token),
        "hostname": host.hostname,
        "labels": labels,
        "ignored_labels": ignored,
        "certificate_serial": issued.serial,
    }));
    let _ = ctl.record(entry).await;
    Ok(EnrollResponse {
        agent_id: issued.agent_id,
        certificate_pem: issued.pem,
        ca_certificate_pem: ctl.ca.cert_pem().to_string(),
        command_signing_key: ctl.signer.public_key(),
        certificate_expires_at_ms: issued.expires_at_ms,
    })
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
