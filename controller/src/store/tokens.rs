//! Enrolment tokens: stored as SHA-256 hashes, with an expiry and a use count.

use super::{Store, StoreError, labels_to_json};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashMap;

/// Why an enrolment was refused. Each says plainly what to do next.
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

impl Store {
    pub async fn create_token(
        &self,
        hash: String,
        now_ms: i64,
        expires_at_ms: i64,
        uses: u32,
        labels: HashMap<String, String>,
        created_by: String,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO tokens (hash, created_at, expires_at, uses_left, labels, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    hash,
                    now_ms,
                    expires_at_ms,
                    uses,
                    labels_to_json(&labels),
                    created_by
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether the token with this hash could enrol an agent now, without using it. The use
    /// is taken (and checked again) in the enrolment's own transaction.
    pub async fn check_token(
        &self,
        hash: String,
        now_ms: i64,
    ) -> Result<Result<(), EnrollRefusal>, StoreError> {
        self.with(move |c| Ok(usable(c, &hash, now_ms)?.map(|_| ())))
            .await
    }
}

/// Takes one use of a token inside the enrolment transaction; returns its labels.
pub(super) fn consume(
    tx: &Transaction<'_>,
    hash: &str,
    now_ms: i64,
) -> Result<Result<String, EnrollRefusal>, StoreError> {
    let labels = match usable(tx, hash, now_ms)? {
        Ok(labels) => labels,
        Err(refusal) => return Ok(Err(refusal)),
    };
    tx.execute(
        "UPDATE tokens SET uses_left = uses_left - 1 WHERE hash = ?1",
        [hash],
    )?;
    Ok(Ok(labels))
}

/// The token's labels if it exists, has not expired and has a use left.
fn usable(
    c: &Connection,
    hash: &str,
    now_ms: i64,
) -> Result<Result<String, EnrollRefusal>, StoreError> {
    let row: Option<(i64, i64, String)> = c
        .query_row(
            "SELECT expires_at, uses_left, labels FROM tokens WHERE hash = ?1",
            [hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((expires_at, uses_left, labels)) = row else {
        return Ok(Err(EnrollRefusal::UnknownToken));
    };
    if expires_at <= now_ms {
        return Ok(Err(EnrollRefusal::ExpiredToken));
    }
    if uses_left <= 0 {
        return Ok(Err(EnrollRefusal::UsedToken));
    }
    Ok(Ok(labels))
}
