//! `cordon-agent enroll`: make a key pair here (it never leaves the host), find the CA by its
//! pinned fingerprint, trade the token and a CSR for a client certificate, and pin the CA and
//! the command-signing key in the state directory. Given several controller URLs (replicas),
//! it enrols through the first that answers, and records them all with those the controller
//! names, for the agent to fail over between.

use crate::sensors::inventory::host_facts;
use crate::state::{Identity, StateDir, StateError};
use cordon_proto::channel::{
    ChannelError, MAX_CONTROLLER_URLS, check_url, controller_urls, tls_channel,
};
use cordon_proto::enrollment_client::EnrollmentClient;
use cordon_proto::identity::{agent_id_from_spki, fingerprint, parse_fingerprint};
use cordon_proto::limits::{ENROLL_MAX_MESSAGE, MAX_TOKEN};
use cordon_proto::pin::{PinError, fetch_pinned_ca};
use cordon_proto::time::now_ms;
use cordon_proto::{EnrollRequest, EnrollResponse};
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
    /// The controller's URLs, tried in order until one answers.
    pub controllers: Vec<String>,
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
    let urls = controller_urls(&opts.controllers).map_err(EnrollError::BadInput)?;
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

    let req = EnrollRequest {
        token: token.to_string(),
        csr_der,
        host: Some(host_facts()),
        labels: opts.labels,
    };
    let (url, resp) = enroll_through_any(&urls, &pin, req).await?;

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
    let replica_urls = replicas(&url, &urls, &resp.controller_urls);
    let now = now_ms();
    state.save_key(&key.serialize_pem())?;
    state.save_cert(&resp.certificate_pem)?;
    state.save_ca(&resp.ca_certificate_pem)?;
    let _ = std::fs::remove_file(state.ledger());
    let identity = Identity {
        agent_id,
        controller: url,
        replica_urls,
        ca_fingerprint: pin,
        command_signing_key: hex::encode(&resp.command_signing_key),
        enrolled_at_ms: now,
        cert_issued_at_ms: now,
        cert_expires_at_ms: resp.certificate_expires_at_ms,
    };
    state.save_identity(&identity)?;
    Ok(identity)
}

/// Enrols through the first of `urls` that can be reached; a controller that answers and
/// refuses ends it (the next would refuse the same token for the same reason).
async fn enroll_through_any(
    urls: &[String],
    pin: &str,
    req: EnrollRequest,
) -> Result<(String, EnrollResponse), EnrollError> {
    let mut last = EnrollError::BadInput("no controller URL".into());
    for url in urls {
        match enroll_at(url, pin, req.clone()).await {
            Ok(resp) => return Ok((url.clone(), resp)),
            Err(e) if unreachable(&e) => {
                tracing::warn!(url = %url, error = %e, "controller unreachable; trying the next");
                last = e;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

async fn enroll_at(
    url: &str,
    pin: &str,
    req: EnrollRequest,
) -> Result<EnrollResponse, EnrollError> {
    let ca = fetch_pinned_ca(url, pin).await?;
    let channel = tls_channel(url, Certificate::from_pem(pem_of(&ca)), None).await?;
    let mut client = EnrollmentClient::new(channel)
        .max_decoding_message_size(ENROLL_MAX_MESSAGE)
        .max_encoding_message_size(ENROLL_MAX_MESSAGE);
    Ok(client
        .enroll(req)
        .await
        .map_err(|s| EnrollError::Refused(cordon_proto::status::describe(&s)))?
        .into_inner())
}

/// Whether enrolment failed before reaching a controller (so another may be tried).
fn unreachable(e: &EnrollError) -> bool {
    matches!(
        e,
        EnrollError::Pin(PinError::Connect { .. } | PinError::Timeout(_))
            | EnrollError::Channel(ChannelError::Connect { .. })
    )
}

/// The controllers to fail over to besides `used`: the others given, then those the
/// controller named (one that is not a plain https://HOST:PORT is left out, with a warning),
/// without repeats, at most [`MAX_CONTROLLER_URLS`] in all.
fn replicas(used: &str, given: &[String], named: &[String]) -> Vec<String> {
    let named = named.iter().filter(|u| match check_url(u.trim()) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "leaving out a controller URL the controller named");
            false
        }
    });
    let mut out: Vec<String> = Vec::new();
    for url in given.iter().chain(named) {
        let url = url.trim().trim_end_matches('/');
        if url != used && !out.iter().any(|u| u == url) {
            out.push(url.to_string());
        }
    }
    out.truncate(MAX_CONTROLLER_URLS - 1);
    out
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn pem_to_der(pem: &str) -> Option<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(urls: &[&str]) -> Vec<String> {
        urls.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn only_a_controller_out_of_reach_sends_enrolment_to_the_next() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let out_of_reach = EnrollError::Pin(PinError::Connect {
            addr: "10.0.0.1:7443".into(),
            source: refused,
        });
        assert!(unreachable(&out_of_reach));
        assert!(unreachable(&EnrollError::Pin(PinError::Timeout(
            "x".into()
        ))));
        // A controller that answered: the token, the pin or the answer is wrong everywhere.
        for answered in [
            EnrollError::Refused("the token has expired".into()),
            EnrollError::BadAnswer("the CA it sent does not match".into()),
            EnrollError::Pin(PinError::BadUrl("x".into())),
        ] {
            assert!(!unreachable(&answered), "{answered}");
        }
    }

    #[test]
    fn replicas_are_the_other_given_urls_then_those_the_controller_names() {
        let given = list(&["https://dead:1", "https://a:1", "https://b:1"]);
        let named = list(&["https://a:1/", "https://c:1", "https://b:1"]);
        assert_eq!(
            replicas("https://a:1", &given, &named),
            ["https://dead:1", "https://b:1", "https://c:1"]
        );
        // A controller from before replicas names none.
        assert_eq!(
            replicas("https://a:1", &list(&["https://a:1"]), &[]),
            Vec::<String>::new()
        );
        // One it names that the agent could not use is left out.
        assert_eq!(
            replicas(
                "https://a:1",
                &given,
                &list(&["ftp://x", "https://d:1/path"])
            ),
            ["https://dead:1", "https://b:1"]
        );
        let many: Vec<String> = (0..MAX_CONTROLLER_URLS)
            .map(|i| format!("https://h{i}:1"))
            .collect();
        assert_eq!(
            replicas("https://a:1", &many, &[]).len(),
            MAX_CONTROLLER_URLS - 1
        );
    }
}
