//! People and service accounts, and their invite codes (stored as SHA-256 hashes). Whether a
//! principal may act, whether a code may be redeemed and the last-admin guard are the
//! policy's rules (`policy::people`), applied here inside the transaction that writes.

use super::rows::Cols;
use super::{Store, StoreError};
use crate::policy::people::{
    Inactive, InviteRefusal, InviteState, Kind, LastAdmin, Standing, is_acting_admin,
    keeps_an_admin, redeemable,
};
use crate::policy::roles::Role;
use rusqlite::{Connection, OptionalExtension, params};

/// A principal as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub name: String,
    pub standing: Standing,
    pub created_by: String,
    pub created_at_ms: i64,
    pub has_password: bool,
    pub has_totp: bool,
    pub last_login_ms: Option<i64>,
    pub cert_serial: String,
}

/// A principal to create, with its invite code's hash.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub name: String,
    pub kind: Kind,
    pub role: Role,
    pub expires_at_ms: Option<i64>,
    pub created_by: String,
    pub code_hash: String,
    pub code_expires_at_ms: i64,
}

/// A change to a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalChange {
    Enable,
    Disable,
    /// Final: a revoked principal is never enabled again, and its name is not reused.
    Revoke,
    SetRole(Role),
    /// An argon2id PHC string.
    SetPassword(String),
    /// A TOTP secret (base32) for console sign-in, or none.
    SetTotp(Option<String>),
}

/// What a console sign-in is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInSecrets {
    pub standing: Standing,
    /// The argon2id PHC string, if a password was set.
    pub password_hash: Option<String>,
    /// The TOTP secret (base32), if the principal has one.
    pub totp_secret: Option<String>,
}

/// Why a change to a principal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefusal {
    #[error("no principal {0:?}")]
    Unknown(String),
    #[error("{0} is revoked; revocation is final")]
    Revoked(String),
    #[error(transparent)]
    LastAdmin(#[from] LastAdmin),
}

/// The principal aggregate. Every backend passes `conformance::principals`.
pub trait Principals: Send + Sync {
    /// Creates the principal and its invite code together; `false` when the name is taken.
    fn invite(
        &self,
        i: Invitation,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The principal an invite code (by hash) was made for, used or not.
    fn invited_name(
        &self,
        code_hash: String,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Uses up an invite code and records the credential issued for it, in one transaction.
    fn redeem_invite(
        &self,
        code_hash: String,
        serial: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<Result<PrincipalRow, InviteRefusal>, StoreError>> + Send;

    fn principal(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Option<PrincipalRow>, StoreError>> + Send;

    /// Every principal, by name.
    fn principals(&self) -> impl Future<Output = Result<Vec<PrincipalRow>, StoreError>> + Send;

    /// Applies `change`, unless it would leave no enabled admin or touches a revoked one.
    fn change_principal(
        &self,
        name: String,
        change: PrincipalChange,
        now_ms: i64,
    ) -> impl Future<Output = Result<Result<PrincipalRow, ChangeRefusal>, StoreError>> + Send;

    /// The standing, password hash and TOTP secret of `name`, for a console sign-in.
    fn sign_in_secrets(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Option<SignInSecrets>, StoreError>> + Send;

    /// Records a credential issued to an active principal (a renewal); refused otherwise.
    fn record_credential(
        &self,
        name: String,
        serial: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<Result<PrincipalRow, Inactive>, StoreError>> + Send;
}

pub(super) const COLUMNS: &str =
    "name, kind, role, enabled, expires_at, revoked_at, created_by, created_at,
    password_hash IS NOT NULL, totp_secret IS NOT NULL, last_login_at, cert_serial";

pub(super) fn from_row<R: Cols>(r: &R) -> Result<(PrincipalRow, String, String), R::Error> {
    Ok((
        PrincipalRow {
            name: r.col(0)?,
            standing: Standing {
                kind: Kind::User,
                role: Role::Viewer,
                enabled: r.col(3)?,
                expires_at_ms: r.col(4)?,
                revoked_at_ms: r.col(5)?,
            },
            created_by: r.col(6)?,
            created_at_ms: r.col(7)?,
            has_password: r.col(8)?,
            has_totp: r.col(9)?,
            last_login_ms: r.col(10)?,
            cert_serial: r.col(11)?,
        },
        r.col(1)?,
        r.col(2)?,
    ))
}

pub(super) fn finish(
    (mut p, kind, role): (PrincipalRow, String, String),
) -> Result<PrincipalRow, StoreError> {
    p.standing.kind = Kind::from_name(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("principal {}: kind {kind:?}", p.name)))?;
    p.standing.role = role
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("principal {}: {e}", p.name)))?;
    Ok(p)
}

fn get(c: &Connection, name: &str) -> Result<Option<PrincipalRow>, StoreError> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM principals WHERE name = ?1"),
        [name],
        |r| from_row(r),
    )
    .optional()?
    .map(finish)
    .transpose()
}

/// Enabled, unrevoked admins other than `name`.
fn other_admins(c: &Connection, name: &str) -> Result<usize, StoreError> {
    let n: i64 = c.query_row(
        "SELECT COUNT(*) FROM principals
         WHERE role = 'admin' AND enabled = 1 AND revoked_at IS NULL AND name <> ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

fn secrets(c: &Connection, name: &str) -> Result<Option<SignInSecrets>, StoreError> {
    let row = c
        .query_row(
            "SELECT password_hash, totp_secret FROM principals WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((password_hash, totp_secret)) = row else {
        return Ok(None);
    };
    let principal = get(c, name)?.ok_or(StoreError::Corrupt(format!("principal {name}")))?;
    Ok(Some(SignInSecrets {
        standing: principal.standing,
        password_hash,
        totp_secret,
    }))
}

impl Principals for Store {
    async fn invite(&self, i: Invitation, now_ms: i64) -> Result<bool, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let added = tx.execute(
                "INSERT INTO principals (name, kind, role, expires_at, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
                params![
                    i.name,
                    i.kind.name(),
                    i.role.name(),
                    i.expires_at_ms,
                    i.created_by,
                    now_ms
                ],
            )?;
            if added == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO invites (hash, principal, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![i.code_hash, i.name, now_ms, i.code_expires_at_ms],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn invited_name(&self, code_hash: String) -> Result<Option<String>, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT principal FROM invites WHERE hash = ?1",
                [code_hash],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn redeem_invite(
        &self,
        code_hash: String,
        serial: String,
        now_ms: i64,
    ) -> Result<Result<PrincipalRow, InviteRefusal>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let row: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT principal, expires_at, used_at FROM invites WHERE hash = ?1",
                    [&code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((name, expires_at_ms, used_at)) = row else {
                return Ok(Err(InviteRefusal::Unknown));
            };
            let principal = get(&tx, &name)?;
            let state = InviteState {
                expires_at_ms,
                used: used_at.is_some(),
            };
            if let Err(refusal) =
                redeemable(Some(state), principal.as_ref().map(|p| &p.standing), now_ms)
            {
                return Ok(Err(refusal));
            }
            tx.execute(
                "UPDATE invites SET used_at = ?2 WHERE hash = ?1",
                params![code_hash, now_ms],
            )?;
            issued(&tx, &name, &serial, now_ms)?;
            let row = get(&tx, &name)?.ok_or(StoreError::Corrupt(format!("principal {name}")))?;
            tx.commit()?;
            Ok(Ok(row))
        })
        .await
    }

    async fn principal(&self, name: String) -> Result<Option<PrincipalRow>, StoreError> {
        self.with(move |c| get(c, &name)).await
    }

    async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM principals ORDER BY name"))?;
            let rows = stmt.query_map([], |r| from_row(r))?;
            rows.map(|r| finish(r?)).collect()
        })
        .await
    }

    async fn change_principal(
        &self,
        name: String,
        change: PrincipalChange,
        now_ms: i64,
    ) -> Result<Result<PrincipalRow, ChangeRefusal>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let before = get(&tx, &name)?;
            let others = other_admins(&tx, &name)?;
            let after = match change_to(name.clone(), before, &change, now_ms, others) {
                Ok(after) => after,
                Err(refusal) => return Ok(Err(refusal)),
            };
            write_change(&tx, &name, &change, &after)?;
            let row = get(&tx, &name)?.ok_or(StoreError::Corrupt(format!("principal {name}")))?;
            tx.commit()?;
            Ok(Ok(row))
        })
        .await
    }

    async fn sign_in_secrets(&self, name: String) -> Result<Option<SignInSecrets>, StoreError> {
        self.with(move |c| secrets(c, &name)).await
    }

    async fn record_credential(
        &self,
        name: String,
        serial: String,
        now_ms: i64,
    ) -> Result<Result<PrincipalRow, Inactive>, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let before = get(&tx, &name)?;
            if let Err(why) =
                crate::policy::people::active(before.as_ref().map(|p| &p.standing), now_ms)
            {
                return Ok(Err(why));
            }
            issued(&tx, &name, &serial, now_ms)?;
            let row = get(&tx, &name)?.ok_or(StoreError::Corrupt(format!("principal {name}")))?;
            tx.commit()?;
            Ok(Ok(row))
        })
        .await
    }
}

/// The standing after `change`.
/// A principal's standing after `change`, or why it is refused: an unknown or revoked
/// principal, or the last acting admin demoted (`others`: the other acting admins).
pub(super) fn change_to(
    name: String,
    before: Option<PrincipalRow>,
    change: &PrincipalChange,
    now_ms: i64,
    others: usize,
) -> Result<Standing, ChangeRefusal> {
    let Some(before) = before else {
        return Err(ChangeRefusal::Unknown(name));
    };
    if before.standing.revoked_at_ms.is_some() {
        return Err(ChangeRefusal::Revoked(name));
    }
    let after = changed(&before.standing, change, now_ms);
    if is_acting_admin(&before.standing) && !is_acting_admin(&after) {
        keeps_an_admin(others)?;
    }
    Ok(after)
}

fn changed(before: &Standing, change: &PrincipalChange, now_ms: i64) -> Standing {
    let mut after = before.clone();
    match change {
        PrincipalChange::Enable => after.enabled = true,
        PrincipalChange::Disable => after.enabled = false,
        PrincipalChange::Revoke => after.revoked_at_ms = Some(now_ms),
        PrincipalChange::SetRole(role) => after.role = *role,
        PrincipalChange::SetPassword(_) | PrincipalChange::SetTotp(_) => {}
    }
    after
}

fn write_change(
    c: &Connection,
    name: &str,
    change: &PrincipalChange,
    after: &Standing,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE principals SET enabled = ?2, revoked_at = ?3, role = ?4 WHERE name = ?1",
        params![name, after.enabled, after.revoked_at_ms, after.role.name()],
    )?;
    match change {
        PrincipalChange::SetPassword(hash) => {
            c.execute(
                "UPDATE principals SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )?;
        }
        PrincipalChange::SetTotp(secret) => {
            c.execute(
                "UPDATE principals SET totp_secret = ?2 WHERE name = ?1",
                params![name, secret],
            )?;
        }
        _ => {}
    }
    Ok(())
}

fn issued(c: &Connection, name: &str, serial: &str, now_ms: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE principals SET last_login_at = ?2, cert_serial = ?3 WHERE name = ?1",
        params![name, now_ms, serial],
    )?;
    Ok(())
}
