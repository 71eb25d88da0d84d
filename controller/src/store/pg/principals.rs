//! People and service accounts, and their invites, on PostgreSQL. The rules (who may be
//! changed how, what an invite allows) are `policy::people`'s, as for SQLite.

use super::PgStore;
use crate::policy::people::{Inactive, InviteRefusal, InviteState, Standing, active, redeemable};
use crate::store::principals::{COLUMNS, change_to, finish, from_row};
use crate::store::{
    ChangeRefusal, Invitation, PrincipalChange, PrincipalRow, Principals, SignInSecrets, StoreError,
};
use tokio_postgres::{GenericClient, Row};

fn principal_row(r: &Row) -> Result<PrincipalRow, StoreError> {
    finish(from_row(r)?)
}

async fn get(c: &impl GenericClient, name: &str) -> Result<Option<PrincipalRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM principals WHERE name = $1");
    c.query_opt(&sql, &[&name])
        .await?
        .as_ref()
        .map(principal_row)
        .transpose()
}

async fn must_get(c: &impl GenericClient, name: &str) -> Result<PrincipalRow, StoreError> {
    get(c, name)
        .await?
        .ok_or(StoreError::Corrupt(format!("principal {name}")))
}

async fn issued(
    c: &impl GenericClient,
    name: &str,
    serial: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE principals SET last_login_at = $2, cert_serial = $3 WHERE name = $1",
        &[&name, &now_ms, &serial],
    )
    .await?;
    Ok(())
}

async fn write_change(
    c: &impl GenericClient,
    name: &str,
    change: &PrincipalChange,
    after: &Standing,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE principals SET enabled = $2, revoked_at = $3, role = $4 WHERE name = $1",
        &[
            &name,
            &after.enabled,
            &after.revoked_at_ms,
            &after.role.name(),
        ],
    )
    .await?;
    let secret = match change {
        PrincipalChange::SetPassword(hash) => Some(("password_hash", Some(hash))),
        PrincipalChange::SetTotp(secret) => Some(("totp_secret", secret.as_ref())),
        _ => None,
    };
    if let Some((column, value)) = secret {
        let sql = format!("UPDATE principals SET {column} = $2 WHERE name = $1");
        c.execute(&sql, &[&name, &value]).await?;
    }
    Ok(())
}

async fn other_admins(c: &impl GenericClient, name: &str) -> Result<usize, StoreError> {
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM principals
             WHERE role = 'admin' AND enabled AND revoked_at IS NULL AND name <> $1",
            &[&name],
        )
        .await?
        .try_get(0)?;
    Ok(n as usize)
}

/// The advisory lock that serialises changes to principals (so two controllers cannot each
/// demote one of the last two admins): "cordprin".
const PRINCIPALS_LOCK: i64 = 0x636f_7264_7072_696e;

impl Principals for PgStore {
    async fn invite(&self, i: Invitation, now_ms: i64) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let added = tx
            .execute(
                "INSERT INTO principals (name, kind, role, expires_at, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                &[
                    &i.name,
                    &i.kind.name(),
                    &i.role.name(),
                    &i.expires_at_ms,
                    &i.created_by,
                    &now_ms,
                ],
            )
            .await?;
        if added == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO invites (hash, principal, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&i.code_hash, &i.name, &now_ms, &i.code_expires_at_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn invited_name(&self, code_hash: String) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT principal FROM invites WHERE hash = $1",
                &[&code_hash],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn redeem_invite(
        &self,
        code_hash: String,
        serial: String,
        now_ms: i64,
    ) -> Result<Result<PrincipalRow, InviteRefusal>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT principal, expires_at, used_at FROM invites WHERE hash = $1 FOR UPDATE",
                &[&code_hash],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Err(InviteRefusal::Unknown));
        };
        let name: String = row.try_get(0)?;
        let state = InviteState {
            expires_at_ms: row.try_get(1)?,
            used: row.try_get::<_, Option<i64>>(2)?.is_some(),
        };
        let principal = get(&*tx, &name).await?;
        if let Err(refusal) =
            redeemable(Some(state), principal.as_ref().map(|p| &p.standing), now_ms)
        {
            return Ok(Err(refusal));
        }
        tx.execute(
            "UPDATE invites SET used_at = $2 WHERE hash = $1",
            &[&code_hash, &now_ms],
        )
        .await?;
        issued(&*tx, &name, &serial, now_ms).await?;
        let row = must_get(&*tx, &name).await?;
        tx.commit().await?;
        Ok(Ok(row))
    }

    async fn principal(&self, name: String) -> Result<Option<PrincipalRow>, StoreError> {
        get(&**self.client().await?, &name).await
    }

    async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM principals ORDER BY name");
        let rows = self.client().await?.query(&sql, &[]).await?;
        rows.iter().map(principal_row).collect()
    }

    async fn change_principal(
        &self,
        name: String,
        change: PrincipalChange,
        now_ms: i64,
    ) -> Result<Result<PrincipalRow, ChangeRefusal>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PRINCIPALS_LOCK])
            .await?;
        let before = get(&*tx, &name).await?;
        let others = other_admins(&*tx, &name).await?;
        let after = match change_to(name.clone(), before, &change, now_ms, others) {
            Ok(after) => after,
            Err(refusal) => return Ok(Err(refusal)),
        };
        write_change(&*tx, &name, &change, &after).await?;
        let row = must_get(&*tx, &name).await?;
        tx.commit().await?;
        Ok(Ok(row))
    }

    async fn sign_in_secrets(&self, name: String) -> Result<Option<SignInSecrets>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT password_hash, totp_secret FROM principals WHERE name = $1",
                &[&name],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SignInSecrets {
            standing: must_get(&**c, &name).await?.standing,
            password_hash: row.try_get(0)?,
            totp_secret: row.try_get(1)?,
        }))
    }

    async fn record_credential(
        &self,
        name: String,
        serial: String,
        now_ms: i64,
    ) -> Result<Result<PrincipalRow, Inactive>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let before = get(&*tx, &name).await?;
        if let Err(why) = active(before.as_ref().map(|p| &p.standing), now_ms) {
            return Ok(Err(why));
        }
        issued(&*tx, &name, &serial, now_ms).await?;
        let row = must_get(&*tx, &name).await?;
        tx.commit().await?;
        Ok(Ok(row))
    }
}
