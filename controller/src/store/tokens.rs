//! Enrolment tokens: stored as SHA-256 hashes, with an expiry and a use count. Whether one
//! may be used is the policy's rule (`policy::tokens`), applied here inside the transaction
//! that takes the use.

use super::{Store, StoreError, labels_to_json};
use crate::policy::tokens::{EnrollRefusal, TokenState, usable as rule};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashMap;

/// The enrolment token aggregate. A token's use is taken by `Agents::enroll`, in the same
/// transaction that records the agent. Every backend passes `conformance::tokens`.
pub trait Tokens: Send + Sync {
    /// Stores a token by its hash, with its expiry, uses and labels.
    fn create_token(
        &self,
        hash: String,
        now_ms: i64,
        expires_at_ms: i64,
        uses: u32,
        labels: HashMap<String, String>,
        created_by: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the token with this hash could enrol an agent now, without using it (the
    /// rule is `policy::tokens::usable`).
    fn check_token(
        &self,
        hash: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<Result<(), EnrollRefusal>, StoreError>> + Send;
}

impl Tokens for Store {
    async fn create_token(
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

    async fn check_token(
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

/// The token's labels if the policy lets it be used now.
fn usable(
    c: &Connection,
    hash: &str,
    now_ms: i64,
) -> Result<Result<String, EnrollRefusal>, StoreError> {
    let row: Option<(TokenState, String)> = c
        .query_row(
            "SELECT expires_at, uses_left, labels FROM tokens WHERE hash = ?1",
            [hash],
            |r| {
                let state = TokenState {
                    expires_at_ms: r.get(0)?,
                    uses_left: r.get(1)?,
                };
                Ok((state, r.get(2)?))
            },
        )
        .optional()?;
    let (state, labels) = row.unzip();
    Ok(rule(state, now_ms).map(|()| labels.unwrap_or_default()))
}
