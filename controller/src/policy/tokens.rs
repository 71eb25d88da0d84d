//! When an enrolment token may be used: it exists, has not expired, and has a use left.
//! Each refusal says plainly what to do next. An enrolled agent gets the labels it asked for
//! with the token's winning.

use std::collections::HashMap;

/// Why an enrolment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRefusal {
    #[error("unknown enrolment token")]
    UnknownToken,
    #[error("the enrolment token has expired; create a new one with `cordonctl token create`")]
    ExpiredToken,
    #[error(
        "the enrolment token has already been used; create a new one with `cordonctl token create`"
    )]
    UsedToken,
    #[error("agent {0} is revoked; enrol with a new key")]
    AgentRevoked(String),
}

impl EnrollRefusal {
    /// How the summary of refused enrolments names it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownToken => "unknown_token",
            Self::ExpiredToken => "expired_token",
            Self::UsedToken => "used_token",
            Self::AgentRevoked(_) => "revoked_agent",
        }
    }
}

/// What the store holds about a token that the rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub expires_at_ms: i64,
    pub uses_left: i64,
}

/// Whether the token (`None`: no such token) may enrol an agent at `now_ms`.
pub fn usable(token: Option<TokenState>, now_ms: i64) -> Result<(), EnrollRefusal> {
    let t = token.ok_or(EnrollRefusal::UnknownToken)?;
    if t.expires_at_ms <= now_ms {
        return Err(EnrollRefusal::ExpiredToken);
    }
    if t.uses_left <= 0 {
        return Err(EnrollRefusal::UsedToken);
    }
    Ok(())
}

/// The labels an enrolled agent gets: those it asked for, with the token's winning where
/// both name a key.
pub fn enrolled_labels(
    asked: &HashMap<String, String>,
    token: HashMap<String, String>,
) -> HashMap<String, String> {
    let mut labels = asked.clone();
    labels.extend(token);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokens_labels_win_over_the_agents() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let asked = map(&[("team", "blue"), ("env", "prod")]);
        let token = map(&[("team", "red"), ("site", "a")]);
        let want = map(&[("team", "red"), ("env", "prod"), ("site", "a")]);
        assert_eq!(enrolled_labels(&asked, token), want);
    }

    #[test]
    fn a_token_is_usable_until_its_expiry_and_while_it_has_uses() {
        let t = |expires_at_ms, uses_left| {
            Some(TokenState {
                expires_at_ms,
                uses_left,
            })
        };
        assert_eq!(usable(t(1_001, 1), 1_000), Ok(()));
        assert_eq!(usable(t(1_000, 1), 1_000), Err(EnrollRefusal::ExpiredToken));
        assert_eq!(usable(t(2_000, 0), 1_000), Err(EnrollRefusal::UsedToken));
        assert_eq!(usable(None, 1_000), Err(EnrollRefusal::UnknownToken));
        // An expired token says so even when it is also used up.
        assert_eq!(usable(t(0, 0), 1_000), Err(EnrollRefusal::ExpiredToken));
    }
}
