//! dpkg's status file as the agent's `packages` collector reads it (`/var/lib/dpkg/status`,
//! which a root attacker on the host may have rewritten): any text gives packages or none,
//! never a panic, and each package named comes from one `Package:` line.
#![no_main]

use cordon_agent::collect::packages::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let packages = parse(&text);
    let named = text.lines().filter(|l| l.starts_with("Package:")).count();
    assert!(packages.len() <= named);
    for p in packages {
        assert!(!p.name.is_empty() && !p.name.contains('\n'));
    }
});
