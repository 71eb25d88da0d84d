//! The enrolment service: a single-use token and a CSR in, a short-lived client certificate,
//! the CA and the command-signing key out. Reached over server-authenticated TLS only.

use super::Controller;
use crate::store::{AuditEntry, Enrolment};
use cordon_proto::enrollment_server::Enrollment;
use cordon_proto::limits::{check_host, check_labels};
use cordon_proto::time::now_ms;
use cordon_proto::{EnrollRequest, EnrollResponse};
use std::sync::Arc;
use std::time::Duration;
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

#[tonic::async_trait]
impl Enrollment for EnrollApi {
    async fn enroll(
        &self,
        req: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let ctl = &self.0;
        let req = req.into_inner();
        if req.token.is_empty() || req.token.len() > cordon_proto::limits::MAX_TOKEN {
            return Err(Status::unauthenticated(
                "a valid enrolment token is required",
            ));
        }
        let host = req.host.unwrap_or_default();
        check_host(&host).map_err(Status::invalid_argument)?;
        check_labels(&req.labels).map_err(Status::invalid_argument)?;
        let ttl = Duration::from_secs(ctl.config.agent_cert_ttl_secs);
        let issued = ctl.ca.sign_agent(&req.csr_der, ttl)?;
        let enrolment = Enrolment {
            token_hash: token_hash(&req.token),
            agent_id: issued.agent_id.clone(),
            host: host.clone(),
            labels: req.labels.clone(),
            cert_serial: issued.serial.clone(),
            cert_expires_at_ms: issued.expires_at_ms,
            now_ms: now_ms(),
        };
        let enrolment_labels = req.labels;
        match ctl.store.enroll(enrolment).await? {
            Ok(_) => {}
            Err(refusal) => {
                tracing::warn!(hostname = %host.hostname, reason = %refusal, "enrolment refused");
                return Err(refusal.into());
            }
        }
        tracing::info!(agent_id = %issued.agent_id, hostname = %host.hostname, serial = %issued.serial, "agent enrolled");
        // Only enrolments that happened: refused ones come from anyone who can reach the
        // port, and would let them fill the log.
        let entry = AuditEntry::new(
            "enrolment",
            "agent.enroll",
            format!("agent:{}", issued.agent_id),
        )
        .detail(serde_json::json!({
            "token": token_ref(&req.token),
            "hostname": host.hostname,
            "labels": enrolment_labels,
            "certificate_serial": issued.serial,
        }));
        let _ = ctl.record(entry).await;
        Ok(Response::new(EnrollResponse {
            agent_id: issued.agent_id,
            certificate_pem: issued.pem,
            ca_certificate_pem: ctl.ca.cert_pem().to_string(),
            command_signing_key: ctl.signer.public_key(),
            certificate_expires_at_ms: issued.expires_at_ms,
        }))
    }
}
