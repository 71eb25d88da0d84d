//! The controller's certificate authority: creates the CA, issues the server and admin
//! certificates, signs agent CSRs into short-lived client certificates whose identity is the
//! agent id, and reads the identity back out of a presented certificate.

pub mod signing;

use crate::policy::people::Kind;
use cordon_proto::identity::{
    ADMIN_URI_PREFIX, AGENT_URI_PREFIX, SERVICE_URI_PREFIX, USER_URI_PREFIX, agent_id_from_spki,
    fingerprint,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// Errors of certificate work, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} in {path} is not valid: {source}")]
    Parse {
        what: &'static str,
        path: PathBuf,
        source: rcgen::Error,
    },
    #[error("the CSR is not valid: {0}")]
    BadCsr(rcgen::Error),
    #[error("the CSR is {0} bytes, over the limit")]
    CsrTooLarge(usize),
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("name {0:?} is not a DNS name or IP address")]
    BadName(String),
    #[error("the server key in {0} is not a valid PEM private key")]
    BadKey(PathBuf),
}

impl CaError {
    /// The CSR a caller sent is at fault (not the CA).
    pub fn is_csr_problem(&self) -> bool {
        matches!(self, Self::BadCsr(_) | Self::CsrTooLarge(_))
    }
}

/// Who a presented certificate belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Agent {
        id: String,
    },
    /// A person or service account; certificates made before principals existed
    /// (`cordon://admin/NAME`) name a person.
    Principal {
        kind: Kind,
        name: String,
        /// The certificate's serial, lower-case hex.
        serial: String,
        /// The id of the certificate's key (see [`Signed::key_id`]).
        key_id: String,
    },
}

/// A client certificate just signed from a CSR.
#[derive(Debug, Clone)]
pub struct Signed {
    pub pem: String,
    /// The key's id (as an agent id is made: a hash of its public key).
    pub key_id: String,
    /// Lower-case hex.
    pub serial: String,
    pub expires_at_ms: i64,
}

/// A certificate just issued to an agent.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub agent_id: String,
    pub pem: String,
    pub serial: String,
    pub expires_at_ms: i64,
}

/// A freshly made certificate and its private key, both PEM.
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's serial, lower-case hex.
    pub serial: String,
}

/// The CA: its certificate and signing key.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    /// Agent certificates signed since this CA was loaded.
    agent_certs_signed: AtomicU64,
}

impl Ca {
    /// Makes a new self-signed CA (ECDSA P-256, ten years).
    pub fn create(name: &str) -> Result<(Self, String), CaError> {
        let gen_err = |source| CaError::Generate {
            what: "the CA",
            source,
        };
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - time::Duration::minutes(5);
        params.not_after = OffsetDateTime::now_utc() + time::Duration::days(3650);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let key_pem = key.serialize_pem();
        let ca = Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            agent_certs_signed: AtomicU64::new(0),
        };
        Ok((ca, key_pem))
    }

    /// Loads the CA from its certificate and key files.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CaError> {
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|source| CaError::Parse {
            what: "CA key",
            path: key_path.into(),
            source,
        })?;
        let parse = |source| CaError::Parse {
            what: "CA certificate",
            path: cert_path.into(),
            source,
        };
        let cert_der = pem_to_der(&cert_pem).map_err(parse)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(parse)?;
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
            agent_certs_signed: AtomicU64::new(0),
        })
    }

    /// How many agent certificates (enrolments and renewals) this CA signed since it was loaded.
    pub fn agent_certs_signed(&self) -> u64 {
        self.agent_certs_signed.load(Ordering::Relaxed)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// `sha256:HEX` of the CA certificate: what agents pin.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Issues the controller's TLS server certificate for the given DNS names and addresses.
    pub fn issue_server(&self, names: &[String], ttl: Duration) -> Result<CertAndKey, CaError> {
        let mut sans = Vec::new();
        for n in names {
            let san = match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    n.clone()
                        .try_into()
                        .map_err(|_| CaError::BadName(n.clone()))?,
                ),
            };
            sans.push(san);
        }
        let mut params = leaf_params("cordon-controller", ttl);
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue_with_new_key(params, "the server certificate")
    }

    /// Issues the first person's credential (`init`), key and all: `cordon://user/NAME`.
    pub fn issue_admin(&self, name: &str, ttl: Duration) -> Result<CertAndKey, CaError> {
        let mut params = leaf_params(&format!("user:{name}"), ttl);
        params.subject_alt_names = vec![uri_san(&format!("{USER_URI_PREFIX}{name}"))?];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue_with_new_key(params, "the admin certificate")
    }

    /// Signs an agent's CSR. Only the public key is taken from the CSR: the identity (the agent
    /// id derived from that key), the lifetime and the usages are the controller's.
    pub fn sign_agent(&self, csr_der: &[u8], ttl: Duration) -> Result<IssuedCert, CaError> {
        let csr = parse_csr(csr_der)?;
        let agent_id = agent_id_from_spki(&csr.public_key.subject_public_key_info());
        let signed = self.sign_csr(
            &csr,
            &agent_id,
            &format!("{AGENT_URI_PREFIX}{agent_id}"),
            ttl,
            "the agent certificate",
        )?;
        self.agent_certs_signed.fetch_add(1, Ordering::Relaxed);
        Ok(IssuedCert {
            agent_id,
            pem: signed.pem,
            serial: signed.serial,
            expires_at_ms: signed.expires_at_ms,
        })
    }

    /// Signs the CSR of a person or service account: the identity (`cordon://user/NAME` or
    /// `cordon://service/NAME`), the lifetime and the usages are the controller's.
    pub fn sign_principal(
        &self,
        csr_der: &[u8],
        kind: Kind,
        name: &str,
        ttl: Duration,
    ) -> Result<Signed, CaError> {
        let csr = parse_csr(csr_der)?;
        let uri = format!("{}{name}", principal_uri_prefix(kind));
        self.sign_csr(&csr, &format!("{kind}:{name}"), &uri, ttl, "a credential")
    }

    /// A client certificate for the key of `csr`, named by `uri`.
    fn sign_csr(
        &self,
        csr: &CertificateSigningRequestParams,
        common_name: &str,
        uri: &str,
        ttl: Duration,
        what: &'static str,
    ) -> Result<Signed, CaError> {
        let mut params = leaf_params(common_name, ttl);
        params.subject_alt_names = vec![uri_san(uri)?];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        let expires_at_ms = (params.not_after.unix_timestamp_nanos() / 1_000_000) as i64;
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(|source| CaError::Generate { what, source })?;
        Ok(Signed {
            key_id: agent_id_from_spki(&csr.public_key.subject_public_key_info()),
            pem: cert.pem(),
            serial: hex::encode(serial.as_ref()),
            expires_at_ms,
        })
    }

    fn issue_with_new_key(
        &self,
        params: CertificateParams,
        what: &'static str,
    ) -> Result<CertAndKey, CaError> {
        let key = KeyPair::generate().map_err(|source| CaError::Generate { what, source })?;
        let serial = params
            .serial_number
            .as_ref()
            .map(|s| hex::encode(s.as_ref()))
            .unwrap_or_default();
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| CaError::Generate { what, source })?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }
}

/// Reads the identity out of a certificate that the TLS layer has already verified against
/// the CA: the `cordon://agent/ID`, `cordon://user/NAME` or `cordon://service/NAME` URI name
/// (or the older `cordon://admin/NAME`, a person).
pub fn peer_identity(der: &[u8]) -> Result<(Peer, i64), String> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let expires_at_ms = cert.validity().not_after.timestamp() * 1000;
    let serial = hex::encode(cert.raw_serial());
    let key_id = agent_id_from_spki(cert.public_key().raw);
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subject alternative names: {e}"))?
        .ok_or("certificate has no Cordon identity")?;
    for name in &sans.value.general_names {
        if let GeneralName::URI(uri) = name
            && let Some(peer) = peer_from_uri(uri, &serial, &key_id)
        {
            return Ok((peer, expires_at_ms));
        }
    }
    Err("certificate has no Cordon identity".into())
}

fn peer_from_uri(uri: &str, serial: &str, key_id: &str) -> Option<Peer> {
    if let Some(id) = uri.strip_prefix(AGENT_URI_PREFIX) {
        return cordon_proto::identity::is_agent_id(id).then(|| Peer::Agent { id: id.into() });
    }
    let (kind, name) = [
        (Kind::User, USER_URI_PREFIX),
        (Kind::Service, SERVICE_URI_PREFIX),
        (Kind::User, ADMIN_URI_PREFIX),
    ]
    .into_iter()
    .find_map(|(kind, prefix)| uri.strip_prefix(prefix).map(|n| (kind, n)))?;
    crate::policy::people::valid_name(name).then(|| Peer::Principal {
        kind,
        name: name.into(),
        serial: serial.into(),
        key_id: key_id.into(),
    })
}

/// A CSR within the size limit, parsed (its signature checked).
fn parse_csr(csr_der: &[u8]) -> Result<CertificateSigningRequestParams, CaError> {
    if csr_der.len() > cordon_proto::limits::MAX_CSR {
        return Err(CaError::CsrTooLarge(csr_der.len()));
    }
    CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der.to_vec()))
        .map_err(CaError::BadCsr)
}

fn principal_uri_prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::User => USER_URI_PREFIX,
        Kind::Service => SERVICE_URI_PREFIX,
    }
}

fn leaf_params(common_name: &str, ttl: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    // Allow for small clock differences between controller and agents.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::try_from(ttl).unwrap_or(time::Duration::days(1));
    params.serial_number = Some(random_serial());
    params
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Cordon");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn uri_san(uri: &str) -> Result<SanType, CaError> {
    Ok(SanType::URI(
        uri.to_string()
            .try_into()
            .map_err(|_| CaError::BadName(uri.into()))?,
    ))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive INTEGER
    bytes[0] |= 0x01; // no leading zero byte to strip
    SerialNumber::from(bytes.to_vec())
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|source| CaError::Read {
        path: path.into(),
        source,
    })
}

/// Decodes the first certificate of a PEM text.
/// The server certificate chain (the server's, then the CA's) and key that every listener
/// of the controller presents, read from `cert` and `key`.
pub fn server_identity(
    ca: &Ca,
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
    use rustls::pki_types::pem::PemObject;
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CaError::Read {
            path: path.into(),
            source,
        })
    };
    let server = pem_to_der(&read(cert)?).map_err(|source| CaError::Parse {
        what: "server certificate",
        path: cert.into(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(read(key)?.as_bytes())
        .map_err(|_| CaError::BadKey(key.into()))?;
    Ok((vec![server, ca.cert_der().clone()], key))
}

pub fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, rcgen::Error> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| rcgen::Error::CouldNotParseCertificate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_identity_comes_from_the_csr_key() {
        let (ca, _) = Ca::create("test").unwrap();
        let key = KeyPair::generate().unwrap();
        let mut req = CertificateParams::default();
        // The agent asks for an admin name; the controller must ignore it.
        req.subject_alt_names = vec![uri_san("cordon://admin/root").unwrap()];
        let csr = req.serialize_request(&key).unwrap();
        let issued = ca.sign_agent(csr.der(), Duration::from_secs(60)).unwrap();
        assert_eq!(
            issued.agent_id,
            agent_id_from_spki(&key.subject_public_key_info())
        );
        let der = pem_to_der(&issued.pem).unwrap();
        let (peer, exp) = peer_identity(&der).unwrap();
        assert_eq!(
            peer,
            Peer::Agent {
                id: issued.agent_id.clone()
            }
        );
        assert_eq!(exp / 1000, issued.expires_at_ms / 1000);
    }

    #[test]
    fn garbage_and_oversized_csrs_are_refused() {
        let (ca, _) = Ca::create("test").unwrap();
        assert!(matches!(
            ca.sign_agent(b"not a csr", Duration::from_secs(60)),
            Err(CaError::BadCsr(_))
        ));
        let big = vec![0u8; cordon_proto::limits::MAX_CSR + 1];
        assert!(matches!(
            ca.sign_agent(&big, Duration::from_secs(60)),
            Err(CaError::CsrTooLarge(_))
        ));
    }

    #[test]
    fn admin_identity_round_trips() {
        let (ca, _) = Ca::create("test").unwrap();
        let admin = ca.issue_admin("alice", Duration::from_secs(60)).unwrap();
        let (peer, _) = peer_identity(&pem_to_der(&admin.cert_pem).unwrap()).unwrap();
        assert!(matches!(
            peer,
            Peer::Principal { kind: Kind::User, name, .. } if name == "alice"
        ));
    }

    #[test]
    fn principal_identity_comes_from_the_controller_not_the_csr() {
        let (ca, _) = Ca::create("test").unwrap();
        let key = KeyPair::generate().unwrap();
        let mut req = CertificateParams::default();
        req.subject_alt_names = vec![uri_san("cordon://user/root").unwrap()];
        let csr = req.serialize_request(&key).unwrap();
        let signed = ca
            .sign_principal(csr.der(), Kind::Service, "soar", Duration::from_secs(60))
            .unwrap();
        let (peer, _) = peer_identity(&pem_to_der(&signed.pem).unwrap()).unwrap();
        assert_eq!(
            peer,
            Peer::Principal {
                kind: Kind::Service,
                name: "soar".into(),
                serial: signed.serial.clone(),
                key_id: agent_id_from_spki(&key.subject_public_key_info()),
            }
        );
    }

    #[test]
    fn uris_with_unsafe_names_are_no_identity() {
        assert!(peer_from_uri("cordon://user/a/../b", "01", "k").is_none());
        assert!(peer_from_uri("cordon://agent/../etc", "01", "k").is_none());
        assert_eq!(
            peer_from_uri("cordon://admin/admin", "01", "k"),
            Some(Peer::Principal {
                kind: Kind::User,
                name: "admin".into(),
                serial: "01".into(),
                key_id: "k".into(),
            })
        );
    }
}
