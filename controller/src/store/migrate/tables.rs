//! What is copied: the tables in the order their foreign keys need, and each table's columns,
//! found by comparing the two schemas. The PostgreSQL schema decides each column's type; a
//! column of SQLite's that PostgreSQL lacks would be lost, so it stops the migration, and a
//! column only PostgreSQL has is left to its default (`timeline.id`, a serial that numbers
//! the entries in the order they are copied, which is SQLite's insertion order).
//!
//! `event_keys` (PostgreSQL's exactly-once key table) has no SQLite counterpart: it is filled
//! from the copied events (`target.rs`).

use super::MigrateError;
use bytes::BytesMut;
use std::collections::HashMap;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Every SQLite table, referenced tables first, each with the order its rows are read in
/// (the order they were written in, or the key).
pub(super) const TABLES: &[(&str, &str)] = &[
    ("agents", "rowid"),
    ("tokens", "rowid"),
    ("commands", "rowid"),
    ("collection_rows", "command_id, row_no"),
    ("hunts", "rowid"),
    ("hunt_commands", "hunt_id, command_id"),
    ("events", "agent_id, seq"),
    ("incidents", "rowid"),
    ("alerts", "rowid"),
    ("timeline", "rowid"),
    ("rules", "rowid"),
    ("iocs", "kind, value, list"),
    ("ioc_lists", "kind, list"),
    ("playbooks", "rowid"),
    ("runs", "rowid"),
    ("run_steps", "rowid"),
    ("approvals", "rowid"),
    ("principals", "rowid"),
    ("invites", "rowid"),
    ("audit", "seq"),
    ("file_chunks", "command_id, chunk_index"),
    ("fetched_files", "id"),
    ("edge_versions", "agent_id, policy_id"),
];

/// A column's type in PostgreSQL, which says how SQLite's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Int,
    Bool,
    Bytes,
}

impl Kind {
    /// The kind of an `information_schema.columns.data_type`.
    pub(super) fn of(data_type: &str) -> Option<Self> {
        match data_type {
            "text" => Some(Self::Text),
            "bigint" => Some(Self::Int),
            "boolean" => Some(Self::Bool),
            "bytea" => Some(Self::Bytes),
            _ => None,
        }
    }

    /// The type COPY BINARY sends the column as.
    pub(super) fn pg_type(self) -> Type {
        match self {
            Self::Text => Type::TEXT,
            Self::Int => Type::INT8,
            Self::Bool => Type::BOOL,
            Self::Bytes => Type::BYTEA,
        }
    }
}

/// A PostgreSQL column: its name, kind and whether it has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PgColumn {
    pub name: String,
    /// None for a type the migration does not know.
    pub kind: Option<Kind>,
    pub data_type: String,
    pub has_default: bool,
}

/// One table to copy: its name, read order and the columns both schemas have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    pub name: &'static str,
    pub order: &'static str,
    pub columns: Vec<(String, Kind)>,
}

impl Table {
    /// The column list, quoted, for SELECT and COPY.
    pub(super) fn column_list(&self) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect();
        names.join(", ")
    }
}

/// The tables to copy, from PostgreSQL's columns per table and SQLite's table names and
/// columns per table; an error names the first difference that would lose or garble data.
pub(super) fn plan(
    pg: &HashMap<String, Vec<PgColumn>>,
    sqlite: &HashMap<String, Vec<String>>,
) -> Result<Vec<Table>, MigrateError> {
    let drift = |table: &str, detail: String| MigrateError::SchemaDrift {
        table: table.to_string(),
        detail,
    };
    if let Some(extra) = sqlite
        .keys()
        .find(|t| !TABLES.iter().any(|(name, _)| name == t))
    {
        return Err(drift(extra, "no PostgreSQL table to copy it into".into()));
    }
    let mut tables = Vec::with_capacity(TABLES.len());
    for &(name, order) in TABLES {
        let from = sqlite
            .get(name)
            .ok_or_else(|| drift(name, "missing from the SQLite store".into()))?;
        let to = pg
            .get(name)
            .ok_or_else(|| drift(name, "missing from the PostgreSQL schema".into()))?;
        if let Some(lost) = from.iter().find(|c| !to.iter().any(|p| &p.name == *c)) {
            return Err(drift(
                name,
                format!("column {lost} has no PostgreSQL column"),
            ));
        }
        let mut columns = Vec::with_capacity(to.len());
        for c in to {
            match (from.contains(&c.name), c.kind) {
                (true, Some(kind)) => columns.push((c.name.clone(), kind)),
                (true, None) => {
                    let t = &c.data_type;
                    return Err(drift(name, format!("column {} has type {t}", c.name)));
                }
                (false, _) if c.has_default => {}
                (false, _) => {
                    return Err(drift(name, format!("column {} is not in SQLite", c.name)));
                }
            }
        }
        tables.push(Table {
            name,
            order,
            columns,
        });
    }
    Ok(tables)
}

/// One value on its way from SQLite to PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    /// SQLite's value read as `kind`; Err says why it does not fit.
    pub(super) fn read(kind: Kind, v: rusqlite::types::ValueRef<'_>) -> Result<Self, String> {
        use rusqlite::types::ValueRef as V;
        Ok(match (kind, v) {
            (Kind::Text, V::Null) => Self::Text(None),
            (Kind::Text, V::Text(t)) => Self::Text(Some(
                String::from_utf8(t.to_vec()).map_err(|e| format!("text not UTF-8: {e}"))?,
            )),
            (Kind::Int, V::Null) => Self::Int(None),
            (Kind::Int, V::Integer(i)) => Self::Int(Some(i)),
            (Kind::Bool, V::Null) => Self::Bool(None),
            (Kind::Bool, V::Integer(i)) => Self::Bool(Some(i != 0)),
            (Kind::Bytes, V::Null) => Self::Bytes(None),
            (Kind::Bytes, V::Blob(b)) => Self::Bytes(Some(b.to_vec())),
            (kind, v) => {
                return Err(format!(
                    "a {:?} value where {kind:?} belongs",
                    v.data_type()
                ));
            }
        })
    }
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Text(v) => v.to_sql(ty, out),
            Self::Int(v) => v.to_sql(ty, out),
            Self::Bool(v) => v.to_sql(ty, out),
            Self::Bytes(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::TEXT, Type::INT8, Type::BOOL, Type::BYTEA].contains(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::ValueRef;

    fn pg_col(name: &str, data_type: &str, has_default: bool) -> PgColumn {
        PgColumn {
            name: name.into(),
            kind: Kind::of(data_type),
            data_type: data_type.into(),
            has_default,
        }
    }

    /// Both schemas with every table holding one column `id`, then `edit` applied.
    fn schemas(
        edit: impl FnOnce(&mut HashMap<String, Vec<PgColumn>>, &mut HashMap<String, Vec<String>>),
    ) -> Result<Vec<Table>, MigrateError> {
        let mut pg = HashMap::new();
        let mut sqlite = HashMap::new();
        for (t, _) in TABLES {
            pg.insert(t.to_string(), vec![pg_col("id", "text", false)]);
            sqlite.insert(t.to_string(), vec!["id".to_string()]);
        }
        edit(&mut pg, &mut sqlite);
        plan(&pg, &sqlite)
    }

    fn drift(r: Result<Vec<Table>, MigrateError>) -> String {
        match r {
            Err(e @ MigrateError::SchemaDrift { .. }) => e.to_string(),
            other => panic!("expected a schema difference, got {other:?}"),
        }
    }

    #[test]
    fn a_column_only_postgresql_has_is_left_to_its_default() {
        let tables = schemas(|pg, _| {
            let timeline = pg.get_mut("timeline").expect("timeline");
            timeline.insert(0, pg_col("seq_no", "bigint", true));
        })
        .expect("plan");
        let timeline = tables
            .iter()
            .find(|t| t.name == "timeline")
            .expect("timeline");
        assert_eq!(timeline.column_list(), "\"id\"");
    }

    #[test]
    fn differences_that_would_lose_data_stop_the_plan() {
        let lost = drift(schemas(|_, s| {
            s.get_mut("agents").expect("a").push("x".into())
        }));
        assert!(
            lost.contains("agents") && lost.contains("column x"),
            "{lost}"
        );
        let extra = drift(schemas(|_, s| {
            s.insert("notes".into(), vec![]);
        }));
        assert!(extra.contains("notes"), "{extra}");
        let required = drift(schemas(|pg, _| {
            pg.get_mut("rules")
                .expect("r")
                .push(pg_col("y", "text", false));
        }));
        assert!(required.contains("column y"), "{required}");
        let typed = drift(schemas(|pg, _| {
            pg.get_mut("audit").expect("a")[0] = pg_col("id", "jsonb", false);
        }));
        assert!(typed.contains("jsonb"), "{typed}");
        let missing = drift(schemas(|pg, _| {
            pg.remove("invites");
        }));
        assert!(missing.contains("invites"), "{missing}");
    }

    #[test]
    fn sqlite_values_are_read_by_the_postgresql_type() {
        assert_eq!(
            Cell::read(Kind::Bool, ValueRef::Integer(1)),
            Ok(Cell::Bool(Some(true)))
        );
        assert_eq!(
            Cell::read(Kind::Bytes, ValueRef::Blob(&[0, 255])),
            Ok(Cell::Bytes(Some(vec![0, 255])))
        );
        assert_eq!(Cell::read(Kind::Int, ValueRef::Null), Ok(Cell::Int(None)));
        assert!(Cell::read(Kind::Int, ValueRef::Text(b"7")).is_err());
        assert!(Cell::read(Kind::Text, ValueRef::Text(&[0xff])).is_err());
    }
}
