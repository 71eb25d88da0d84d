//! The shape of Cordon's own secrets, so they can be made and recognised in one place, and
//! kept out of telemetry: an enrolment token passed on a command line would otherwise be
//! recorded by every agent that sees the exec, and readable by anyone who may query events.

use std::borrow::Cow;

/// What every enrolment token starts with.
pub const TOKEN_PREFIX: &str = "cdt_";
/// What a token's secret part is replaced with in telemetry.
pub const REDACTED: &str = "[REDACTED]";
/// The shortest run after the prefix taken for a token (real ones have 48 hex digits).
const MIN_SECRET: usize = 16;

/// Random bits in an enrolment token (from the operating system's generator, through
/// `rand`'s thread-local CSPRNG).
pub const TOKEN_BITS: usize = 192;

/// A new enrolment token: the prefix and [`TOKEN_BITS`] random bits, hex.
pub fn new_token() -> String {
    let bytes: [u8; TOKEN_BITS / 8] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// `text` with the secret part of every token-shaped string (the prefix followed by at
/// least 16 letters, digits, `_` or `-`) replaced by [`REDACTED`].
pub fn redact_tokens(text: &str) -> Cow<'_, str> {
    if !text.contains(TOKEN_PREFIX) {
        return Cow::Borrowed(text);
    }
    let is_secret = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(TOKEN_PREFIX) {
        let after = &rest[at + TOKEN_PREFIX.len()..];
        let run = after.bytes().take_while(|&b| is_secret(b)).count();
        out.push_str(&rest[..at + TOKEN_PREFIX.len()]);
        if run >= MIN_SECRET {
            out.push_str(REDACTED);
            rest = &after[run..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Every argument with its tokens redacted.
pub fn redact_argv(argv: Vec<String>) -> Vec<String> {
    argv.into_iter()
        .map(|a| match redact_tokens(&a) {
            Cow::Borrowed(_) => a,
            Cow::Owned(r) => r,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn tokens_are_192_bits_of_hex_never_repeated_and_unbiased_in_every_position() {
        let tokens: HashSet<String> = (0..20_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 20_000, "a token repeated");
        let mut seen = vec![HashSet::new(); TOKEN_BITS / 4];
        for t in &tokens {
            let secret = t.strip_prefix(TOKEN_PREFIX).unwrap();
            assert_eq!(secret.len(), TOKEN_BITS / 4, "{t}");
            for (i, digit) in secret.chars().enumerate() {
                assert!(digit.is_ascii_hexdigit(), "{t}");
                seen[i].insert(digit);
            }
        }
        // Every position takes every one of the 16 digits: none is fixed or narrowed.
        assert!(seen.iter().all(|s| s.len() == 16));
    }

    use super::*;

    #[test]
    fn tokens_are_redacted_wherever_they_appear() {
        let t = new_token();
        assert_eq!(t.len(), TOKEN_PREFIX.len() + 48);
        let argv = vec![
            "cordon-agent".to_string(),
            "--token".to_string(),
            t.clone(),
            format!("--token={t}"),
            format!("sh -c 'x {t} y {t}'"),
        ];
        let red = redact_argv(argv);
        assert_eq!(red[2], "cdt_[REDACTED]");
        assert_eq!(red[3], "--token=cdt_[REDACTED]");
        assert_eq!(red[4], "sh -c 'x cdt_[REDACTED] y cdt_[REDACTED]'");
        assert!(red.iter().all(|a| !a.contains(&t[4..])));
    }

    #[test]
    fn other_text_is_left_alone() {
        for s in ["cdt_short", "no token here", "abcdt_", "cdt_", "ü cdt_-"] {
            assert_eq!(redact_tokens(s), s);
        }
    }
}
