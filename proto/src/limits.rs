//! Size limits. The transport refuses any encoded message above its service's limit, and
//! receivers check the individual fields below before using them.

/// Largest encoded message on the enrolment service.
pub const ENROLL_MAX_MESSAGE: usize = 64 * 1024;
/// Largest encoded message an agent may send on its stream (a telemetry batch).
pub const AGENT_MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Largest encoded message the controller sends to an agent (a signed command).
pub const CONTROLLER_MAX_MESSAGE: usize = 1024 * 1024;
/// Largest encoded message on the admin service (an inventory result, a listing).
pub const ADMIN_MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Longest enrolment token accepted (real ones are far shorter).
pub const MAX_TOKEN: usize = 256;
/// Longest CSR accepted, DER bytes.
pub const MAX_CSR: usize = 8 * 1024;
/// Most labels on one agent or token.
pub const MAX_LABELS: usize = 32;
/// Longest label key.
pub const MAX_LABEL_KEY: usize = 63;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 255;
/// Longest host fact string (hostname, OS name, kernel ...).
pub const MAX_FACT: usize = 255;
/// Most events in one telemetry batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Longest free-text error or notice message.
pub const MAX_TEXT: usize = 4096;
/// Most rows one listing or query returns (0 in a request means the default, 100).
pub const MAX_LIST: u32 = 10_000;
/// Most enrolments one token may allow.
pub const MAX_TOKEN_USES: u32 = 100_000;
/// Longest text an event query may search for.
pub const MAX_QUERY_TEXT: usize = 1024;
/// Most rule files in one import request.
pub const MAX_RULE_FILES: usize = 10_000;
/// Largest rule file.
pub const MAX_RULE_BYTES: usize = 256 * 1024;
/// Largest playbook file.
pub const MAX_PLAYBOOK_BYTES: usize = 256 * 1024;
/// Most indicators in one import request.
pub const MAX_IOCS: usize = 1_000_000;

use std::collections::HashMap;

/// Checks a label map against the limits and the key syntax (`[A-Za-z0-9._/-]`, non-empty).
pub fn check_labels(labels: &HashMap<String, String>) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "too many labels: {} (max {MAX_LABELS})",
            labels.len()
        ));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > MAX_LABEL_KEY {
            return Err(format!(
                "label key {k:?} must be 1 to {MAX_LABEL_KEY} bytes"
            ));
        }
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        {
            return Err(format!(
                "label key {k:?} may only hold letters, digits and ._-/"
            ));
        }
        if v.len() > MAX_LABEL_VALUE {
            return Err(format!("label {k:?} value is over {MAX_LABEL_VALUE} bytes"));
        }
    }
    Ok(())
}

/// Checks every string in a host-facts message against [`MAX_FACT`].
pub fn check_host(host: &crate::HostFacts) -> Result<(), String> {
    for (name, value) in [
        ("hostname", &host.hostname),
        ("os_name", &host.os_name),
        ("os_version", &host.os_version),
        ("kernel_version", &host.kernel_version),
        ("arch", &host.arch),
        ("agent_version", &host.agent_version),
    ] {
        if value.len() > MAX_FACT {
            return Err(format!("host fact {name} is over {MAX_FACT} bytes"));
        }
    }
    Ok(())
}

/// Parses `k=v` into a pair, for command-line flags.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label {s:?} must look like key=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_well_formed() {
        let mut l = HashMap::new();
        l.insert("env".to_string(), "prod".to_string());
        assert!(check_labels(&l).is_ok());
        l.insert("bad key".to_string(), "x".to_string());
        assert!(check_labels(&l).unwrap_err().contains("bad key"));
        let many: HashMap<_, _> = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(check_labels(&many).unwrap_err().contains("too many"));
    }

    #[test]
    fn label_flags_parse() {
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
    }
}
