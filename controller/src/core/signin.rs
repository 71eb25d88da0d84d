//! Signing people in to the web console: a name and the password `cordonctl users
//! set-password` stored (argon2id), plus a TOTP code (RFC 6238: SHA-1, 6 digits, 30 s, one
//! step either side, each step usable once) when the person has a TOTP secret. Only people
//! sign in, never service accounts, and only while the roster lets them act. Attempts are
//! rate-limited per name and per source address; every sign-in, refused or not, and every
//! sign-out is in the audit log, with the person as the actor.

use super::ratelimit::{RateLimiter, source_key};
use super::{Admin, Controller, CoreError};
use crate::policy::people::{Inactive, Kind, active};
use crate::store::{Principals, SignInSecrets};
use cordon_proto::time::now_ms;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Attempts one name may make at once, then [`NAME_REFILL_PER_MINUTE`].
pub const NAME_BURST: u32 = 5;
pub const NAME_REFILL_PER_MINUTE: u32 = 1;
/// Attempts one source (an IPv4 address or an IPv6 /64) may make at once, then
/// [`SOURCE_REFILL_PER_MINUTE`].
pub const SOURCE_BURST: u32 = 20;
pub const SOURCE_REFILL_PER_MINUTE: u32 = 30;

/// The seconds of one TOTP step.
const TOTP_STEP: u64 = 30;

/// One attempt to sign in. (No `Debug`: it holds a password.)
#[derive(Clone)]
pub struct SignIn<'a> {
    pub name: &'a str,
    pub password: &'a str,
    /// The TOTP code; empty when none was given.
    pub code: &'a str,
    pub source: IpAddr,
    /// What the session's actions carry as their serial (see [`Admin::serial`]).
    pub serial: String,
}

/// Why a sign-in was refused. The person is told only that it was; the audit log says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    #[error("unknown name")]
    Unknown,
    #[error("no console password is set")]
    NoPassword,
    #[error("wrong password")]
    WrongPassword,
    #[error("a TOTP code is required")]
    CodeMissing,
    #[error("wrong or already used TOTP code")]
    WrongCode,
    #[error("service accounts do not sign in to the console")]
    Service,
    #[error("the person is {0}")]
    Inactive(Inactive),
}

/// The rate limits and the TOTP steps already used, shared by every sign-in.
pub struct SignInGuard {
    by_name: RateLimiter<String>,
    by_source: RateLimiter<IpAddr>,
    /// The last TOTP step each person signed in with: a code works once.
    used_steps: Mutex<HashMap<String, u64>>,
}

impl Default for SignInGuard {
    fn default() -> Self {
        Self {
            by_name: RateLimiter::new(NAME_BURST, NAME_REFILL_PER_MINUTE),
            by_source: RateLimiter::new(SOURCE_BURST, SOURCE_REFILL_PER_MINUTE),
            used_steps: Mutex::default(),
        }
    }
}

impl SignInGuard {
    /// Takes an attempt from the name's and the source's buckets; false if either is empty.
    fn try_take(&self, name: &str, source: IpAddr, now: Instant) -> bool {
        let source = self.by_source.try_take(&source_key(source), now);
        source && self.by_name.try_take(&name.to_string(), now)
    }

    /// A successful sign-in gives its attempts back.
    fn give_back(&self, name: &str, source: IpAddr, now: Instant) {
        self.by_source.give_back(&source_key(source), now);
        self.by_name.give_back(&name.to_string(), now);
    }

    /// Records `step` as used by `name`; false if it (or a later one) already was.
    fn use_step(&self, name: &str, step: u64) -> bool {
        let mut used = self.used_steps.lock().unwrap_or_else(|p| p.into_inner());
        match used.get(name) {
            Some(&last) if last >= step => false,
            _ => {
                used.insert(name.to_string(), step);
                true
            }
        }
    }
}

impl Controller {
    /// Checks a sign-in and returns the person, as a console session's caller. Refusals and
    /// successes are audited; attempts past the rate limit are refused without a check (and
    /// logged, not audited, so a flood cannot fill the audit log).
    pub async fn sign_in(&self, attempt: SignIn<'_>) -> Result<Admin, CoreError> {
        let started = Instant::now();
        let name = bounded(attempt.name);
        if !self.sign_ins.try_take(&name, attempt.source, started) {
            tracing::warn!(name = %name, source = %attempt.source, "console sign-in refused: too many attempts");
            return Err(CoreError::SignInThrottled);
        }
        let secrets = self.store.sign_in_secrets(name.clone()).await?;
        let password = attempt.password.to_string();
        let checked = tokio::task::spawn_blocking(move || check_secrets(secrets, &password))
            .await
            .map_err(|e| CoreError::Hashing(e.to_string()))?;
        let checked = checked.and_then(|(who, totp)| {
            self.check_code(&name, totp.as_deref(), attempt.code)?;
            Ok(who)
        });
        let who = checked.map(|standing| Admin {
            name: name.clone(),
            kind: Kind::User,
            role: standing.role,
            serial: attempt.serial.clone(),
        });
        self.record_sign_in(&name, &attempt, &who).await;
        match who {
            Ok(who) => {
                self.sign_ins
                    .give_back(&name, attempt.source, Instant::now());
                Ok(who)
            }
            Err(why) => Err(CoreError::SignInRefused(why)),
        }
    }

    /// Checks the TOTP code when the person has a secret.
    fn check_code(
        &self,
        name: &str,
        secret: Option<&str>,
        code: &str,
    ) -> Result<(), SignInRefusal> {
        let Some(secret) = secret else {
            return Ok(());
        };
        if code.is_empty() {
            return Err(SignInRefusal::CodeMissing);
        }
        let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
        match totp_step(secret, code.trim(), now) {
            Some(step) if self.sign_ins.use_step(name, step) => Ok(()),
            _ => Err(SignInRefusal::WrongCode),
        }
    }

    async fn record_sign_in(
        &self,
        name: &str,
        attempt: &SignIn<'_>,
        result: &Result<Admin, SignInRefusal>,
    ) {
        let mut entry = Admin {
            name: name.to_string(),
            kind: Kind::User,
            role: crate::policy::roles::Role::Viewer,
            serial: attempt.serial.clone(),
        }
        .entry("console.sign_in", format!("user:{name}"));
        entry.detail["source"] = json!(attempt.source.to_string());
        if let Err(why) = result {
            entry.outcome = format!("refused: {why}");
            tracing::info!(name, source = %attempt.source, why = %why, "console sign-in refused");
        }
        let _ = self.record(entry).await;
    }

    /// Records the end of a console session: `why` is `signed out`, `idle`, `expired` or
    /// the person's standing (`disabled`, `revoked`, ...).
    pub async fn sign_out(&self, who: &Admin, why: &str) {
        let mut entry = who.entry("console.sign_out", format!("user:{}", who.name));
        entry.detail["why"] = json!(why);
        let _ = self.record(entry).await;
    }
}

/// The name as given, cut to the longest valid name (it keys a rate-limit bucket).
fn bounded(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Checks the password, then who the principal is; returns their standing and TOTP secret.
/// Runs argon2 even for an unknown name, so timing does not tell which names exist.
fn check_secrets(
    secrets: Option<SignInSecrets>,
    password: &str,
) -> Result<(crate::policy::people::Standing, Option<String>), SignInRefusal> {
    let matches = match secrets.as_ref().and_then(|s| s.password_hash.as_deref()) {
        Some(hash) => verify_password(hash, password),
        None => verify_password(dummy_hash(), password),
    };
    let s = secrets.ok_or(SignInRefusal::Unknown)?;
    if s.password_hash.is_none() {
        return Err(SignInRefusal::NoPassword);
    }
    if !matches {
        return Err(SignInRefusal::WrongPassword);
    }
    if s.standing.kind != Kind::User {
        return Err(SignInRefusal::Service);
    }
    active(Some(&s.standing), now_ms()).map_err(SignInRefusal::Inactive)?;
    Ok((s.standing, s.totp_secret))
}

fn verify_password(phc: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("a stored console password hash is not a PHC string");
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash to check against when there is none, so every attempt costs the same.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| super::users::hash_password("no such person").unwrap_or_default())
}

/// The TOTP step `code` is valid for at `now_secs` (the current one or one either side), if
/// any. `secret` is base32, as authenticator apps take it.
fn totp_step(secret: &str, code: &str, now_secs: u64) -> Option<u64> {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .ok()?;
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, TOTP_STEP, bytes);
    let step = now_secs / TOTP_STEP;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| totp.check(code, s * TOTP_STEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 key, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn totp_codes_match_rfc_6238_within_one_step() {
        // RFC 6238 appendix B: at 59 s the 8-digit code is 94287082, so 6 digits: 287082.
        assert_eq!(totp_step(RFC_SECRET, "287082", 59), Some(1));
        assert_eq!(
            totp_step(RFC_SECRET, "287082", 59 + 30),
            Some(1),
            "a step late"
        );
        assert_eq!(totp_step(RFC_SECRET, "287082", 0), Some(1), "a step early");
        assert_eq!(
            totp_step(RFC_SECRET, "287082", 59 + 60),
            None,
            "two steps late"
        );
        assert_eq!(totp_step(RFC_SECRET, "287083", 59), None);
        assert_eq!(totp_step("not base32!", "287082", 59), None);
    }

    #[test]
    fn a_totp_step_works_once_per_person() {
        let guard = SignInGuard::default();
        assert!(guard.use_step("alice", 10));
        assert!(!guard.use_step("alice", 10), "replayed");
        assert!(!guard.use_step("alice", 9), "older");
        assert!(guard.use_step("bob", 10), "another person");
        assert!(guard.use_step("alice", 11));
    }

    #[test]
    fn attempts_are_limited_per_name_and_per_source() {
        let guard = SignInGuard::default();
        let now = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..NAME_BURST {
            assert!(guard.try_take("alice", a, now));
        }
        assert!(
            !guard.try_take("alice", b, now),
            "the name is spent, whatever the source"
        );
        let mut names = (0..SOURCE_BURST).map(|i| format!("n{i}"));
        let spent =
            (0..SOURCE_BURST - NAME_BURST).all(|_| guard.try_take(&names.next().unwrap(), a, now));
        assert!(spent);
        assert!(
            !guard.try_take("zed", a, now),
            "the source is spent, whatever the name"
        );
        assert!(guard.try_take("zed", b, now));
    }

    #[test]
    fn passwords_are_checked_before_who_the_principal_is() {
        let hash = super::super::users::hash_password("correct horse battery").unwrap();
        let secrets = |kind: Kind, enabled: bool| SignInSecrets {
            standing: crate::policy::people::Standing {
                kind,
                role: crate::policy::roles::Role::Viewer,
                enabled,
                expires_at_ms: None,
                revoked_at_ms: None,
            },
            password_hash: Some(hash.clone()),
            totp_secret: None,
        };
        let ok = check_secrets(Some(secrets(Kind::User, true)), "correct horse battery");
        assert!(ok.is_ok());
        let wrong = check_secrets(Some(secrets(Kind::User, false)), "wrong");
        assert_eq!(wrong.unwrap_err(), SignInRefusal::WrongPassword);
        let off = check_secrets(Some(secrets(Kind::User, false)), "correct horse battery");
        assert_eq!(
            off.unwrap_err(),
            SignInRefusal::Inactive(Inactive::Disabled)
        );
        let svc = check_secrets(Some(secrets(Kind::Service, true)), "correct horse battery");
        assert_eq!(svc.unwrap_err(), SignInRefusal::Service);
        assert_eq!(
            check_secrets(None, "x").unwrap_err(),
            SignInRefusal::Unknown
        );
    }
}
