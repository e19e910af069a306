//! Binding dcache-disk's SQL values to rusqlite and reading them back.

use dcache_disk::{Format, SqlRef, SqlValue};
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::{Error, Result};

/// Binds a borrowed SQL value as a statement parameter.
pub(crate) struct Bind<'a>(pub(crate) SqlRef<'a>);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            SqlRef::Null => ValueRef::Null,
            SqlRef::Integer(i) => ValueRef::Integer(i),
            SqlRef::Real(f) => ValueRef::Real(f),
            SqlRef::Text(s) => ValueRef::Text(s.as_bytes()),
            SqlRef::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Reads a column as a borrowed SQL value; text must be UTF-8.
pub(crate) fn sql_ref(value: ValueRef<'_>) -> Result<SqlRef<'_>> {
    Ok(match value {
        ValueRef::Null => SqlRef::Null,
        ValueRef::Integer(i) => SqlRef::Integer(i),
        ValueRef::Real(f) => SqlRef::Real(f),
        ValueRef::Text(t) => SqlRef::Text(std::str::from_utf8(t).map_err(|e| {
            Error::Disk(dcache_disk::Error::Decode {
                format: Format::Raw,
                reason: format!("stored text is not UTF-8: {e}"),
            })
        })?),
        ValueRef::Blob(b) => SqlRef::Blob(b),
    })
}

/// Reads a column as an owned SQL value.
pub(crate) fn sql_value(value: ValueRef<'_>) -> Result<SqlValue> {
    sql_ref(value).map(SqlRef::to_owned)
}

/// Reads an optional REAL column (`expire_time`); integers are accepted (SQLite may hand back
/// an integral REAL as INTEGER when another program wrote it).
pub(crate) fn opt_f64(value: ValueRef<'_>) -> Option<f64> {
    match value {
        ValueRef::Real(f) => Some(f),
        ValueRef::Integer(i) => Some(i as f64),
        _ => None,
    }
}

/// Converts an owned rusqlite value.
pub(crate) fn from_rusqlite(v: rusqlite::types::Value) -> SqlValue {
    use rusqlite::types::Value;
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

/// The error for a column of the `Cache` table holding a type python-diskcache never writes.
pub(crate) fn column_err(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::from(dcache_disk::Error::Decode {
        format: dcache_disk::Format::Raw,
        reason: format!(
            "unexpected column type in the Cache table: {e}; another program wrote this row: \
             delete the entry and store it again"
        ),
    })
}

/// python's truthiness of the `raw` column (python tests `if raw:`), so a row with an odd
/// flag reads as python reads it.
pub(crate) fn raw_flag(raw: &SqlValue) -> bool {
    match raw {
        SqlValue::Null => false,
        SqlValue::Integer(i) => *i != 0,
        SqlValue::Real(f) => *f != 0.0,
        SqlValue::Text(t) => !t.is_empty(),
        SqlValue::Blob(b) => !b.is_empty(),
    }
}
