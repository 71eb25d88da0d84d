//! A CSR as an enrolling agent (`Enroll`) or a person logging in (`Login`) sends it: any
//! bytes. Each must end in a signed certificate for the key it carries, or a refusal that
//! blames the CSR, never a panic or a CA error.
#![no_main]

use cordon_controller::ca::Ca;
use cordon_controller::policy::people::Kind;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use std::time::Duration;

static CA: LazyLock<Ca> = LazyLock::new(|| Ca::create("fuzz").expect("a CA").0);

fuzz_target!(|data: &[u8]| {
    let ttl = Duration::from_secs(60);
    match CA.sign_agent(data, ttl) {
        Ok(cert) => assert!(cordon_proto::identity::is_agent_id(&cert.agent_id)),
        Err(e) => assert!(e.is_csr_problem(), "{e}"),
    }
    if let Err(e) = CA.sign_principal(data, Kind::User, "fuzz", ttl) {
        assert!(e.is_csr_problem(), "{e}");
    }
});
