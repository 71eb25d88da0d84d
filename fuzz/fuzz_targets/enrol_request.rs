//! What anyone who can reach the controller's port may send before it has a certificate: an
//! enrolment (`Enroll`: token, CSR, host facts, labels) or a login (`Login`: invite code,
//! CSR). The first byte picks which; the rest is decoded with prost as that request and goes
//! through what the controller checks before its store: the token or code's length, the
//! host facts (`limits::check_host`) and labels (`limits::check_labels`), the token's hash
//! and the reference the audit log keeps of it (`token_hash`, `token_ref`: any string,
//! hashed, the reference a prefix of the hash, never the token), and the CSR signed
//! for an agent or a person, or refused as the CSR's fault. What must hold: no panic.
#![no_main]

use cordon_controller::ca::Ca;
use cordon_controller::core::{token_hash, token_ref};
use cordon_controller::policy::people::Kind;
use cordon_proto::limits::{MAX_TOKEN, check_host, check_labels};
use cordon_proto::{EnrollRequest, LoginRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::LazyLock;
use std::time::Duration;

static CA: LazyLock<Ca> = LazyLock::new(|| Ca::create("fuzz").expect("a CA").0);
const TTL: Duration = Duration::from_secs(60);

/// A token or invite code as the controller takes it: hashed for the lookup (SHA-256, hex),
/// referred to in the audit log by a prefix of that hash, never by itself.
fn secret(code: &str) {
    if code.is_empty() || code.len() > MAX_TOKEN {
        return;
    }
    let hash = token_hash(code);
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    assert_eq!(token_ref(code), format!("token:{}", &hash[..16]));
}

fn enrol(r: EnrollRequest) {
    secret(&r.token);
    if check_host(&r.host.unwrap_or_default()).is_err() || check_labels(&r.labels).is_err() {
        return;
    }
    match CA.sign_agent(&r.csr_der, TTL) {
        Ok(cert) => assert!(cordon_proto::identity::is_agent_id(&cert.agent_id)),
        Err(e) => assert!(e.is_csr_problem(), "{e}"),
    }
}

fn login(r: LoginRequest) {
    secret(&r.invite);
    if let Err(e) = CA.sign_principal(&r.csr_der, Kind::User, "fuzz", TTL) {
        assert!(e.is_csr_problem(), "{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        if let Ok(r) = EnrollRequest::decode(rest) {
            enrol(r);
        }
    } else if let Ok(r) = LoginRequest::decode(rest) {
        login(r);
    }
});
