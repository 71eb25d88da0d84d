//! A person's or service account's credential on their own machine. `cordonctl login` makes
//! the key pair here (the private key never leaves this machine; mode 0600 from its first
//! byte), finds the controller's CA by its pinned fingerprint, trades the one-time invite code
//! and a CSR for a certificate, and writes the credential file that later commands use.
//! [`renew_if_due`] renews the certificate, for the same key, when a command runs past half
//! its lifetime.

use crate::client::{AdminClient, AdminConfig};
use crate::error::CtlError;
use crate::rpc::call;
use cordon_proto::enrollment_client::EnrollmentClient;
use cordon_proto::files::{PRIVATE, PUBLIC, atomic_write, private_dir};
use cordon_proto::identity::parse_fingerprint;
use cordon_proto::limits::ENROLL_MAX_MESSAGE;
use cordon_proto::{LoginRequest, RenewCredentialRequest};
use rcgen::{CertificateParams, KeyPair};
use std::path::{Path, PathBuf};
use tonic::transport::Certificate;

/// The file names a credential directory holds.
pub const CREDENTIAL_FILE: &str = "credential.toml";
const KEY_FILE: &str = "key.pem";
const CERT_FILE: &str = "cert.pem";
const CA_FILE: &str = "ca.pem";

/// What `cordonctl login` needs.
#[derive(Debug, Clone)]
pub struct Login {
    pub controller: String,
    pub invite: String,
    pub ca_fingerprint: String,
    /// The directory the credential goes to (created private).
    pub dir: PathBuf,
    /// Replace a credential already in `dir`.
    pub force: bool,
}

/// Logs in with an invite code; returns the credential file written.
pub async fn login(l: Login) -> Result<PathBuf, CtlError> {
    let pin = parse_fingerprint(&l.ca_fingerprint).map_err(CtlError::Input)?;
    let invite = l.invite.trim().to_string();
    if invite.is_empty() {
        return Err(CtlError::Input(
            "an invite code is required: --invite-file FILE or CORDON_INVITE".into(),
        ));
    }
    let file = l.dir.join(CREDENTIAL_FILE);
    if file.exists() && !l.force {
        return Err(CtlError::Input(format!(
            "{} already holds a credential; pass --force to replace it",
            l.dir.display()
        )));
    }
    let key = KeyPair::generate().map_err(key_error)?;
    let csr_der = csr(&key)?;
    let ca = cordon_proto::pin::fetch_pinned_ca(&l.controller, &pin)
        .await
        .map_err(|e| CtlError::Input(e.to_string()))?;
    let ca_pem = pem::encode(&pem::Pem::new("CERTIFICATE", ca.to_vec()));
    let channel = cordon_proto::channel::tls_channel(
        &l.controller,
        Certificate::from_pem(ca_pem.clone()),
        None,
    )
    .await
    .map_err(crate::client::ClientError::from)?;
    let mut client = EnrollmentClient::new(channel)
        .max_decoding_message_size(ENROLL_MAX_MESSAGE)
        .max_encoding_message_size(ENROLL_MAX_MESSAGE);
    let done = call(client.login(LoginRequest { invite, csr_der })).await?;
    write_credential(&l, &pin, &key, &done.certificate_pem, &ca_pem)?;
    Ok(file)
}

fn write_credential(
    l: &Login,
    pin: &str,
    key: &KeyPair,
    cert_pem: &str,
    ca_pem: &str,
) -> Result<(), CtlError> {
    let dir = &l.dir;
    private_dir(dir).map_err(CtlError::read(dir))?;
    let write = |name: &str, bytes: &[u8], mode| {
        atomic_write(&dir.join(name), bytes, mode).map_err(CtlError::read(dir.join(name)))
    };
    write(KEY_FILE, key.serialize_pem().as_bytes(), PRIVATE)?;
    write(CERT_FILE, cert_pem.as_bytes(), PUBLIC)?;
    write(CA_FILE, ca_pem.as_bytes(), PUBLIC)?;
    let cfg = AdminConfig {
        controller: l.controller.clone(),
        ca_fingerprint: pin.to_string(),
        ca_cert: CA_FILE.into(),
        cert: CERT_FILE.into(),
        key: KEY_FILE.into(),
    };
    let text = toml::to_string_pretty(&cfg).map_err(|e| CtlError::Input(e.to_string()))?;
    write(CREDENTIAL_FILE, text.as_bytes(), PRIVATE)
}

fn csr(key: &KeyPair) -> Result<Vec<u8>, CtlError> {
    let req = CertificateParams::default()
        .serialize_request(key)
        .map_err(key_error)?;
    Ok(req.der().to_vec())
}

fn key_error(e: rcgen::Error) -> CtlError {
    CtlError::Input(format!("making the key pair or CSR: {e}"))
}

/// Renews the credential's certificate when more than half its lifetime has passed; the
/// new certificate replaces the file atomically. A failed renewal is reported and the
/// command goes on with the certificate it has.
pub async fn renew_if_due(admin: &mut AdminClient, cfg: &AdminConfig) {
    match renew(admin, cfg).await {
        Ok(true) => eprintln!("cordonctl: credential renewed ({})", cfg.cert.display()),
        Ok(false) => {}
        Err(e) => eprintln!("cordonctl: could not renew the credential: {e}"),
    }
}

async fn renew(admin: &mut AdminClient, cfg: &AdminConfig) -> Result<bool, CtlError> {
    let cert_pem = std::fs::read_to_string(&cfg.cert).map_err(CtlError::read(&cfg.cert))?;
    let Some((not_before, not_after)) = validity(&cert_pem) else {
        return Ok(false);
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now < not_before + (not_after - not_before) / 2 {
        return Ok(false);
    }
    let key_pem = std::fs::read_to_string(&cfg.key).map_err(CtlError::read(&cfg.key))?;
    let key = KeyPair::from_pem(&key_pem).map_err(key_error)?;
    let csr_der = csr(&key)?;
    let renewed = call(admin.renew_credential(RenewCredentialRequest { csr_der })).await?;
    atomic_write(&cfg.cert, renewed.certificate_pem.as_bytes(), PUBLIC)
        .map_err(CtlError::read(&cfg.cert))?;
    Ok(true)
}

/// A certificate's validity, as Unix seconds.
fn validity(cert_pem: &str) -> Option<(i64, i64)> {
    use x509_parser::prelude::*;
    let der = crate::client::first_certificate(cert_pem.as_bytes())?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    let v = cert.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// The default credential directory: `$XDG_CONFIG_HOME/cordon` or `~/.config/cordon`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .map(|d| d.join("cordon"))
}
