//! Identities as both ends see them: the agent id derived from a public key, the URI names
//! that certificates carry, and certificate fingerprints.

use ring::digest::{SHA256, digest};

/// URI SAN prefix of an agent certificate; the agent id follows.
pub const AGENT_URI_PREFIX: &str = "cordon://agent/";
/// URI SAN prefix of a person's certificate; the name follows.
pub const USER_URI_PREFIX: &str = "cordon://user/";
/// URI SAN prefix of a service account's certificate; the name follows.
pub const SERVICE_URI_PREFIX: &str = "cordon://service/";
/// URI SAN prefix of the administrator certificates made before people and service accounts
/// existed; the controller reads them as a person's.
pub const ADMIN_URI_PREFIX: &str = "cordon://admin/";

/// The agent id for a public key: the first 128 bits of SHA-256 over its DER
/// SubjectPublicKeyInfo, in lower-case hex. The same key always gives the same id, and the
/// controller recomputes it from every CSR, so an agent cannot pick its id.
pub fn agent_id_from_spki(spki_der: &[u8]) -> String {
    hex::encode(&digest(&SHA256, spki_der).as_ref()[..16])
}

/// `sha256:HEX` over a certificate's DER bytes: what an agent pins.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(digest(&SHA256, der)))
}

/// Normalises a user-given fingerprint (`sha256:HEX`, any case, `:` separators allowed).
pub fn parse_fingerprint(s: &str) -> Result<String, String> {
    let hex_part = s
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("fingerprint {s:?} must start with sha256:"))?;
    let clean: String = hex_part
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if clean.len() != 64 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("fingerprint {s:?} must hold 64 hex digits"));
    }
    Ok(format!("sha256:{clean}"))
}

/// Whether a string is a well-formed agent id.
pub fn is_agent_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_id_is_stable_and_well_formed() {
        let a = agent_id_from_spki(b"key one");
        assert_eq!(a, agent_id_from_spki(b"key one"));
        assert_ne!(a, agent_id_from_spki(b"key two"));
        assert!(is_agent_id(&a));
        assert!(!is_agent_id("../etc"));
    }

    #[test]
    fn fingerprints_normalise() {
        let f = fingerprint(b"x");
        let upper = f.to_uppercase().replacen("SHA256", "sha256", 1);
        assert_eq!(parse_fingerprint(&upper).unwrap(), f);
        assert!(parse_fingerprint("md5:00").is_err());
        assert!(parse_fingerprint("sha256:abc").is_err());
    }
}
