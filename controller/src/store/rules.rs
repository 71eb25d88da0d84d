//! Detection content: Sigma rules (their YAML, reloaded at start, and whether each is
//! enabled) and indicator lists.

use super::rows::Cols;
use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub id: String,
    pub title: String,
    pub level: String,
    pub status: String,
    pub author: String,
    pub tags: Vec<String>,
    pub logsource: String,
    pub origin: String,
    pub source: String,
    pub enabled: bool,
    pub imported_at_ms: i64,
}

/// What an indicator import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IocImport {
    pub added: u32,
    pub already_present: u32,
    pub list_size: u64,
}

pub(super) const RULE_COLUMNS: &str =
    "id, title, level, status, author, tags, logsource, origin, source, enabled, imported_at";

pub(super) fn rule_row<R: Cols>(r: &R) -> Result<RuleRow, R::Error> {
    let tags: String = r.col(5)?;
    Ok(RuleRow {
        id: r.col(0)?,
        title: r.col(1)?,
        level: r.col(2)?,
        status: r.col(3)?,
        author: r.col(4)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        logsource: r.col(6)?,
        origin: r.col(7)?,
        source: r.col(8)?,
        enabled: r.col(9)?,
        imported_at_ms: r.col(10)?,
    })
}

/// The detection content aggregate: rules by id, each with its YAML and enabled flag, and
/// indicator lists. Every backend passes `conformance::rules` and `conformance::iocs`.
pub trait Rules: Send + Sync {
    /// Stores rules, replacing ones with the same id; a replaced rule keeps its enabled flag.
    fn upsert_rules(
        &self,
        rules: Vec<RuleRow>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every rule, by id.
    fn rules(&self) -> impl Future<Output = Result<Vec<RuleRow>, StoreError>> + Send;

    /// Enables or disables a rule; None if there is no such rule.
    fn set_rule_enabled(
        &self,
        id: String,
        enabled: bool,
    ) -> impl Future<Output = Result<Option<RuleRow>, StoreError>> + Send;

    /// Adds normalised indicator values to a list; a value already in it counts as present.
    fn add_iocs(
        &self,
        kind: String,
        list: String,
        values: Vec<String>,
        now: i64,
    ) -> impl Future<Output = Result<IocImport, StoreError>> + Send;

    /// Every indicator: (kind, value, list).
    fn iocs(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String, String)>, StoreError>> + Send;

    /// Marks a list as a block list (its SHA-256 entries are denied at exec); a list stays
    /// marked once it is.
    fn mark_block_list(
        &self,
        kind: String,
        list: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every SHA-256 on a block list, once each, sorted.
    fn blocked_sha256(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// The SHA-256 entries of block lists, for both backends (`block` is true in either).
pub(super) const BLOCKED_SHA256: &str = "SELECT DISTINCT i.value FROM iocs i
     JOIN ioc_lists l ON l.kind = i.kind AND l.list = i.list
     WHERE i.kind = 'sha256' AND l.block
     ORDER BY i.value";

impl Rules for Store {
    async fn upsert_rules(&self, rules: Vec<RuleRow>) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT INTO rules ({RULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT(id) DO UPDATE SET title = excluded.title, level = excluded.level,
                       status = excluded.status, author = excluded.author, tags = excluded.tags,
                       logsource = excluded.logsource, origin = excluded.origin,
                       source = excluded.source, imported_at = excluded.imported_at"
                ))?;
                for r in rules {
                    stmt.execute(params![
                        r.id,
                        r.title,
                        r.level,
                        r.status,
                        r.author,
                        serde_json::to_string(&r.tags).unwrap_or_default(),
                        r.logsource,
                        r.origin,
                        r.source,
                        r.enabled,
                        r.imported_at_ms
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT {RULE_COLUMNS} FROM rules ORDER BY id"))?;
            let rows = stmt.query_map([], |r| rule_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_rule_enabled(
        &self,
        id: String,
        enabled: bool,
    ) -> Result<Option<RuleRow>, StoreError> {
        self.with(move |c| {
            c.execute(
                "UPDATE rules SET enabled = ?2 WHERE id = ?1",
                params![id, enabled],
            )?;
            Ok(c.query_row(
                &format!("SELECT {RULE_COLUMNS} FROM rules WHERE id = ?1"),
                [id],
                |r| rule_row(r),
            )
            .optional()?)
        })
        .await
    }

    async fn add_iocs(
        &self,
        kind: String,
        list: String,
        values: Vec<String>,
        now: i64,
    ) -> Result<IocImport, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut added = 0;
            let mut already_present = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO iocs (kind, value, list, added_at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for v in values {
                    if stmt.execute(params![kind, v, list, now])? > 0 {
                        added += 1;
                    } else {
                        already_present += 1;
                    }
                }
            }
            let list_size: i64 = tx.query_row(
                "SELECT COUNT(*) FROM iocs WHERE kind = ?1 AND list = ?2",
                params![kind, list],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(IocImport {
                added,
                already_present,
                list_size: list_size as u64,
            })
        })
        .await
    }

    async fn iocs(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT kind, value, list FROM iocs")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn mark_block_list(&self, kind: String, list: String) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO ioc_lists (kind, list, block) VALUES (?1, ?2, 1)
                 ON CONFLICT(kind, list) DO UPDATE SET block = 1",
                params![kind, list],
            )?;
            Ok(())
        })
        .await
    }

    async fn blocked_sha256(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(BLOCKED_SHA256)?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
