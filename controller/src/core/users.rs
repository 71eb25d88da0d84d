//! Managing people and service accounts: invites (a one-time code, stored hashed, taken up
//! with `cordonctl login` or in the web console), listing,
//! and changes of state, role, password and TOTP secret. Every change is audited and reaches
//! the roster at once, so the next handshake or call of the principal sees it.

use super::{Admin, Controller, CoreError};
use crate::policy::audit::AuditEntry;
use crate::policy::people::{Kind, valid_name};
use crate::policy::roles::Role;
use crate::store::{Invitation, PrincipalChange, PrincipalRow, Principals};
use cordon_proto::time::now_ms;
use serde_json::json;

/// Shortest password accepted for the web console.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted (argon2 hashes any length; this bounds the work per call).
pub const MAX_PASSWORD: usize = 1024;

/// What an administrator asks for when inviting someone.
#[derive(Debug, Clone)]
pub struct InviteRequest {
    pub name: String,
    pub kind: Kind,
    pub role: Role,
    /// When the principal itself expires; `None`: never.
    pub expires_at_ms: Option<i64>,
}

/// An invite just made: the only time the code exists outside the invitee's hands.
#[derive(Debug, Clone)]
pub struct Invited {
    pub code: String,
    pub code_expires_at_ms: i64,
    pub user: PrincipalRow,
}

impl Controller {
    /// Creates the principal and a one-time invite code for it.
    pub async fn invite(&self, by: &Admin, r: InviteRequest) -> Result<Invited, CoreError> {
        let entry = by
            .entry("user.invite", format!("{}:{}", r.kind, r.name))
            .detail(json!({ "role": r.role.name(), "expires_at_ms": r.expires_at_ms }));
        let result = self.make_invite(by, r).await;
        self.audited(entry, result, |i, e| {
            e.detail["invite"] = json!(super::token_ref(&i.code));
            e.detail["code_expires_at_ms"] = json!(i.code_expires_at_ms);
        })
        .await
    }

    async fn make_invite(&self, by: &Admin, r: InviteRequest) -> Result<Invited, CoreError> {
        if !valid_name(&r.name) {
            return Err(CoreError::BadUserName(r.name));
        }
        let now = now_ms();
        if r.expires_at_ms.is_some_and(|t| t <= now) {
            return Err(CoreError::ExpiryInThePast);
        }
        let code = cordon_proto::secrets::new_token();
        let code_expires_at_ms = now + self.config.people.invite_ttl_secs as i64 * 1000;
        let invitation = Invitation {
            name: r.name.clone(),
            kind: r.kind,
            role: r.role,
            expires_at_ms: r.expires_at_ms,
            created_by: by.name.clone(),
            code_hash: super::token_hash(&code),
            code_expires_at_ms,
        };
        if !self.store.invite(invitation, now).await? {
            return Err(CoreError::NameTaken(r.name));
        }
        let user = self.user(&r.name).await?;
        self.standing_changed(&user).await;
        Ok(Invited {
            code,
            code_expires_at_ms,
            user,
        })
    }

    pub async fn users(&self) -> Result<Vec<PrincipalRow>, CoreError> {
        Ok(self.store.principals().await?)
    }

    pub async fn user(&self, name: &str) -> Result<PrincipalRow, CoreError> {
        self.store
            .principal(name.to_string())
            .await?
            .ok_or_else(|| CoreError::NoUser(name.to_string()))
    }

    /// Enables, disables, revokes, changes the role of, or sets the password of `name`.
    pub async fn change_user(
        &self,
        by: &Admin,
        name: &str,
        change: PrincipalChange,
    ) -> Result<PrincipalRow, CoreError> {
        let (action, detail) = match &change {
            PrincipalChange::Enable => ("user.enable", json!({})),
            PrincipalChange::Disable => ("user.disable", json!({})),
            PrincipalChange::Revoke => ("user.revoke", json!({})),
            PrincipalChange::SetRole(r) => ("user.set_role", json!({ "role": r.name() })),
            PrincipalChange::SetPassword(_) => ("user.set_password", json!({})),
            PrincipalChange::SetTotp(s) => ("user.set_totp", json!({ "totp": s.is_some() })),
        };
        let entry = by.entry(action, format!("user:{name}")).detail(detail);
        let result = self
            .store
            .change_principal(name.to_string(), change, now_ms())
            .await
            .map_err(CoreError::from)
            .and_then(|r| r.map_err(CoreError::UserChange));
        if let Ok(row) = &result {
            self.standing_changed(row).await;
            tracing::warn!(name, by = %by.name, action, "principal changed");
        }
        self.audited(entry, result, |_, _| {}).await
    }

    /// Hashes a new console password (argon2id) and stores it.
    pub async fn set_password(
        &self,
        by: &Admin,
        name: &str,
        password: &str,
    ) -> Result<PrincipalRow, CoreError> {
        let hash = checked_hash(password).await?;
        self.change_user(by, name, PrincipalChange::SetPassword(hash))
            .await
    }

    /// A person takes up their invite in the web console instead of with `cordonctl login`:
    /// the code is used up and `password` becomes their console password. Audited as
    /// `user.accept_invite` with the person as actor.
    pub async fn accept_invite(
        &self,
        code: &str,
        password: &str,
    ) -> Result<PrincipalRow, CoreError> {
        let (name, hash) = self.invited(code).await?;
        let entry = AuditEntry::new(&name, "user.accept_invite", format!("user:{name}"))
            .detail(json!({ "invite": super::token_ref(code) }));
        let result = self.take_up(&name, hash, password).await;
        self.audited(entry, result, |_, _| {}).await
    }

    async fn take_up(
        &self,
        name: &str,
        code_hash: String,
        password: &str,
    ) -> Result<PrincipalRow, CoreError> {
        if self.user(name).await?.standing.kind != Kind::User {
            return Err(CoreError::ServiceInvite(name.into()));
        }
        let password_hash = checked_hash(password).await?;
        let redeemed = self
            .store
            .redeem_invite(code_hash, String::new(), now_ms())
            .await?
            .map_err(CoreError::Invite)?;
        self.standing_changed(&redeemed).await;
        let row = self
            .store
            .change_principal(
                name.into(),
                PrincipalChange::SetPassword(password_hash),
                now_ms(),
            )
            .await?
            .map_err(CoreError::UserChange)?;
        self.standing_changed(&row).await;
        tracing::info!(name, "invite taken up in the console");
        Ok(row)
    }

    /// Gives `name` a new random TOTP secret (160 bits, base32) for console sign-in, or
    /// removes theirs; returns the principal and the new secret.
    pub async fn set_totp(
        &self,
        by: &Admin,
        name: &str,
        enable: bool,
    ) -> Result<(PrincipalRow, Option<String>), CoreError> {
        let secret = enable.then(|| {
            let raw = totp_rs::Secret::Raw(rand::random::<[u8; 20]>().to_vec());
            raw.to_encoded().to_string()
        });
        let row = self
            .change_user(by, name, PrincipalChange::SetTotp(secret.clone()))
            .await?;
        Ok((row, secret))
    }
}

/// The argon2id hash of a password of acceptable length, computed off the async threads.
async fn checked_hash(password: &str) -> Result<String, CoreError> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        return Err(CoreError::BadPassword);
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| CoreError::Hashing(e.to_string()))?
}

/// An argon2id PHC string for `password`, with a random salt.
pub(super) fn hash_password(password: &str) -> Result<String, CoreError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| CoreError::Hashing(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Hashing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_with_a_salt_each() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b);
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
    }
}
