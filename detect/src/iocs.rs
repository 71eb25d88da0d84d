//! Indicators of compromise as values: the kinds Cordon knows (SHA-256 hashes, IP addresses,
//! domains) and the one canonical form of each. Pure logic, shared by the controller (which
//! stores and matches the canonical form) and `cordonctl` (which checks a file line by line
//! before sending anything).

use std::net::IpAddr;

/// The indicator kinds, as `iocs import --kind` takes them.
pub const KINDS: [&str; 3] = ["sha256", "ip", "domain"];

/// A host name as DNS has them: at least two labels of 1 to 63 letters, digits and hyphens,
/// no label starting or ending with a hyphen, and a top-level label that is not all digits
/// (`10.0.0.1` is an address, not a domain).
fn is_domain(v: &str) -> bool {
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let top = v.rsplit('.').next().unwrap_or_default();
    v.len() <= 253
        && v.contains('.')
        && v.split('.').all(label)
        && !top.bytes().all(|b| b.is_ascii_digit())
}

/// The canonical form of an indicator, or why it is not one.
pub fn normalise(kind: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    match kind {
        "sha256" => {
            let v = v.to_ascii_lowercase();
            if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(v)
            } else {
                Err(format!("{value:?} is not a SHA-256 (64 hex digits)"))
            }
        }
        "ip" => v
            .parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("{value:?} is not an IP address")),
        "domain" => {
            let v = v.trim_end_matches('.').to_ascii_lowercase();
            if is_domain(&v) {
                Ok(v)
            } else {
                Err(format!(
                    "{value:?} is not a domain name (labels of letters, digits and inner \
                     hyphens, a top-level label that is not all digits)"
                ))
            }
        }
        other => Err(format!(
            "unknown indicator kind {other:?} (sha256, ip or domain)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_normalise_or_say_why_not() {
        assert_eq!(
            normalise("sha256", &"AB".repeat(32)).unwrap(),
            "ab".repeat(32)
        );
        assert!(normalise("sha256", "abc").unwrap_err().contains("64 hex"));
        assert_eq!(normalise("ip", " 2001:DB8::1 ").unwrap(), "2001:db8::1");
        assert!(normalise("ip", "1.2.3").is_err());
        assert_eq!(
            normalise("domain", "Evil.Example.").unwrap(),
            "evil.example"
        );
        assert!(normalise("domain", "no spaces.example").is_err());
        for bad in [
            "-bad-.com",
            "bad-.com",
            "a.-b.com",
            "10.0.0.1",
            "x..com",
            "example",
        ] {
            assert!(normalise("domain", bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalise("domain", "xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(normalise("domain", "3com.com").unwrap(), "3com.com");
        assert!(normalise("url", "x").unwrap_err().contains("unknown"));
    }
}
