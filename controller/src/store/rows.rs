//! Reading a result row the same way in both backends: the row mappers (`agents::from_row`,
//! `alerts::alert_row`, ...) are written once against `Cols`, which SQLite's and
//! PostgreSQL's rows both implement, each failing with its own driver's error.

/// A value both drivers can read from a column (text, integers as i64, booleans, bytes, the
/// status enums, and `Option`s of them).
pub(super) trait Value:
    rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>
{
}

impl<T> Value for T where T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

/// A result row of either backend.
pub(super) trait Cols {
    type Error;

    /// Column `i` (from 0).
    fn col<T: Value>(&self, i: usize) -> Result<T, Self::Error>;
}

impl Cols for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn col<T: Value>(&self, i: usize) -> Result<T, rusqlite::Error> {
        self.get(i)
    }
}

impl Cols for tokio_postgres::Row {
    type Error = tokio_postgres::Error;

    fn col<T: Value>(&self, i: usize) -> Result<T, tokio_postgres::Error> {
        self.try_get(i)
    }
}
