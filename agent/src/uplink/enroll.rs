//! `cordon-agent enroll`: make a key pair here (it never leaves the host), find the CA by its
//! pinned fingerprint, trade the token and a CSR for a client certificate, and pin the CA and
//! the command-signing key in the state directory.

use crate::sensors::inventory::host_facts;
use crate::state::{Identity, StateDir, StateError};
use cordon_proto::EnrollRequest;
use cordon_proto::channel::{ChannelError, tls_channel};
use cordon_proto::enrollment_client::EnrollmentClient;
use cordon_proto::identity::{agent_id_from_spki, fingerprint, parse_fingerprint};
use cordon_proto::limits::{ENROLL_MAX_MESSAGE, MAX_TOKEN};
use cordon_proto::pin::{PinError, fetch_pinned_ca};
use cordon_proto::time::now_ms;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};
use std::collections::HashMap;
use tonic::transport::Certificate;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0} is already enrolled as agent {1}; pass --force to enrol again with a new key")]
    AlreadyEnrolled(String, String),
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("the controller refused the enrolment: {0}")]
    Refused(String),
    #[error("the controller's answer is not acceptable: {0}")]
    BadAnswer(String),
    #[error("making the key pair or CSR: {0}")]
    Key(#[from] rcgen::Error),
}

pub struct EnrollOptions {
    pub controller: String,
    pub token: String,
    pub ca_fingerprint: String,
    pub labels: HashMap<String, String>,
    pub force: bool,
}

/// Makes a CSR for `key`; the controller takes only the public key from it.
pub fn csr_for(key: &KeyPair) -> Result<Vec<u8>, rcgen::Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, host_facts().hostname);
    params.distinguished_name = dn;
    Ok(params.serialize_request(key)?.der().to_vec())
}

pub async fn enroll(state: &StateDir, opts: EnrollOptions) -> Result<Identity, EnrollError> {
    if state.is_enrolled() && !opts.force {
        let id = state.identity()?;
        return Err(EnrollError::AlreadyEnrolled(
            state.dir.display().to_string(),
            id.agent_id,
        ));
    }
    let pin = parse_fingerprint(&opts.ca_fingerprint).map_err(EnrollError::BadInput)?;
    cordon_proto::limits::check_labels(&opts.labels).map_err(EnrollError::BadInput)?;
    let token = opts.token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(EnrollError::BadInput(format!(
            "the enrolment token must be 1 to {MAX_TOKEN} characters"
        )));
    }
    state.create()?;

    let key = KeyPair::generate()?;
    let agent_id = agent_id_from_spki(&key.subject_public_key_info());
    let csr_der = csr_for(&key)?;

    let ca = fetch_pinned_ca(&opts.controller, &pin).await?;
    let channel = tls_channel(&opts.controller, Certificate::from_pem(pem_of(&ca)), None).await?;
    let mut client = EnrollmentClient::new(channel)
        .max_decoding_message_size(ENROLL_MAX_MESSAGE)
        .max_encoding_message_size(ENROLL_MAX_MESSAGE);
    let req = EnrollRequest {
        token: token.to_string(),
        csr_der,
        host: Some(host_facts()),
        labels: opts.labels,
    };
    let resp = client
        .enroll(req)
        .await
        .map_err(|s| EnrollError::Refused(cordon_proto::status::describe(&s)))?
        .into_inner();

    if resp.agent_id != agent_id {
        return Err(EnrollError::BadAnswer(format!(
            "issued agent id {} but this key's id is {agent_id}",
            resp.agent_id
        )));
    }
    let answered_ca = pem_to_der(&resp.ca_certificate_pem)
        .ok_or_else(|| EnrollError::BadAnswer("the CA certificate is not PEM".into()))?;
    if fingerprint(&answered_ca) != pin {
        return Err(EnrollError::BadAnswer(
            "the CA it sent does not match the pinned fingerprint".into(),
        ));
    }
    if resp.command_signing_key.len() != 32 {
        return Err(EnrollError::BadAnswer(
            "the command-signing key is not an Ed25519 key".into(),
        ));
    }
    let now = now_ms();
    state.save_key(&key.serialize_pem())?;
    state.save_cert(&resp.certificate_pem)?;
    state.save_ca(&resp.ca_certificate_pem)?;
    let _ = std::fs::remove_file(state.ledger());
    let identity = Identity {
        agent_id,
        controller: opts.controller,
        ca_fingerprint: pin,
        command_signing_key: hex::encode(&resp.command_signing_key),
        enrolled_at_ms: now,
        cert_issued_at_ms: now,
        cert_expires_at_ms: resp.certificate_expires_at_ms,
    };
    state.save_identity(&identity)?;
    Ok(identity)
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn pem_to_der(pem: &str) -> Option<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}
