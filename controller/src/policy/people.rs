//! The rules about people and service accounts: when a principal may act (enabled, not
//! revoked, not expired), when an invite code may be redeemed, which names are allowed, and
//! the guard that keeps at least one enabled administrator.

use super::roles::Role;
use std::fmt;

/// A person, or an automation that calls the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Service,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the rules look at in a stored principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub kind: Kind,
    pub role: Role,
    pub enabled: bool,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// Why a principal may not act now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Inactive {
    #[error("unknown principal")]
    Unknown,
    #[error("revoked")]
    Revoked,
    #[error("disabled")]
    Disabled,
    #[error("expired")]
    Expired,
}

/// Whether the principal (`None`: no such principal) may act at `now_ms`.
pub fn active(p: Option<&Standing>, now_ms: i64) -> Result<(), Inactive> {
    let p = p.ok_or(Inactive::Unknown)?;
    if p.revoked_at_ms.is_some() {
        return Err(Inactive::Revoked);
    }
    if !p.enabled {
        return Err(Inactive::Disabled);
    }
    if p.expires_at_ms.is_some_and(|t| t <= now_ms) {
        return Err(Inactive::Expired);
    }
    Ok(())
}

/// Why an invite code was refused, each saying what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    #[error("unknown invite code")]
    Unknown,
    #[error("the invite code has expired; ask an administrator for a new one")]
    Expired,
    #[error("the invite code has already been used; ask an administrator for a new one")]
    Used,
    #[error("the invited principal is {0}")]
    Principal(Inactive),
}

/// What the store holds about an invite code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteState {
    pub expires_at_ms: i64,
    pub used: bool,
}

/// Whether an invite code (`None`: unknown) may be redeemed at `now_ms` for a principal in
/// `standing`.
pub fn redeemable(
    invite: Option<InviteState>,
    standing: Option<&Standing>,
    now_ms: i64,
) -> Result<(), InviteRefusal> {
    let i = invite.ok_or(InviteRefusal::Unknown)?;
    if i.used {
        return Err(InviteRefusal::Used);
    }
    if i.expires_at_ms <= now_ms {
        return Err(InviteRefusal::Expired);
    }
    active(standing, now_ms).map_err(InviteRefusal::Principal)
}

/// A change that would leave no enabled administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused: this would leave the controller without an enabled admin")]
pub struct LastAdmin;

/// Whether a change is allowed, given the enabled, unrevoked admins that remain after it.
pub fn keeps_an_admin(admins_after: usize) -> Result<(), LastAdmin> {
    if admins_after == 0 {
        Err(LastAdmin)
    } else {
        Ok(())
    }
}

/// Whether `after` still counts as an administrator who can act (expiry aside, which time
/// alone changes).
pub fn is_acting_admin(after: &Standing) -> bool {
    after.role == Role::Admin && after.enabled && after.revoked_at_ms.is_none()
}

/// A principal's name: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a letter or
/// digit (it goes into a URI and the audit log's actor).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Standing {
        Standing {
            kind: Kind::User,
            role: Role::Analyst,
            enabled: true,
            expires_at_ms: None,
            revoked_at_ms: None,
        }
    }

    #[test]
    fn a_principal_acts_while_enabled_unrevoked_and_unexpired() {
        let p = person();
        assert_eq!(active(Some(&p), 10), Ok(()));
        assert_eq!(active(None, 10), Err(Inactive::Unknown));
        let off = Standing {
            enabled: false,
            ..p.clone()
        };
        assert_eq!(active(Some(&off), 10), Err(Inactive::Disabled));
        let gone = Standing {
            revoked_at_ms: Some(5),
            ..off
        };
        assert_eq!(active(Some(&gone), 10), Err(Inactive::Revoked));
        let old = Standing {
            expires_at_ms: Some(10),
            ..p
        };
        assert_eq!(active(Some(&old), 9), Ok(()));
        assert_eq!(active(Some(&old), 10), Err(Inactive::Expired));
    }

    #[test]
    fn an_invite_is_redeemed_once_before_its_expiry() {
        let p = person();
        let fresh = InviteState {
            expires_at_ms: 100,
            used: false,
        };
        assert_eq!(redeemable(Some(fresh), Some(&p), 99), Ok(()));
        assert_eq!(
            redeemable(Some(fresh), Some(&p), 100),
            Err(InviteRefusal::Expired)
        );
        let used = InviteState {
            used: true,
            ..fresh
        };
        assert_eq!(
            redeemable(Some(used), Some(&p), 1),
            Err(InviteRefusal::Used)
        );
        assert_eq!(redeemable(None, Some(&p), 1), Err(InviteRefusal::Unknown));
        let off = Standing {
            enabled: false,
            ..p
        };
        assert_eq!(
            redeemable(Some(fresh), Some(&off), 1),
            Err(InviteRefusal::Principal(Inactive::Disabled))
        );
    }

    #[test]
    fn names_are_safe_in_uris_and_logs() {
        for ok in ["alice", "soar-1", "a.b_c", "9lives"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Alice", "-x", "a/b", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_last_admin_stays() {
        assert_eq!(keeps_an_admin(0), Err(LastAdmin));
        assert_eq!(keeps_an_admin(1), Ok(()));
    }
}
