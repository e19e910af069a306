//! The statements of the inspection listing (`entries`, `entry_info`, `expired_count`): every
//! column of a row copied out uninterpreted, so a row another program damaged is reported,
//! not refused.

use std::time::SystemTime;

use dcache_disk::{DbKey, SqlValue};
use rusqlite::Row;
use rusqlite::types::ValueRef;

use crate::clock::from_unix;
use crate::error::Result;
use crate::sql::Db;
use crate::sqlval::Bind;
use crate::tag::Tag;

/// The columns [`ListedRow::read`] reads, in its order; the value only when `?4` is true.
macro_rules! listing {
    ($filter:literal, $order:literal) => {
        concat!(
            "SELECT rowid, key, raw, store_time, expire_time, access_time, access_count, tag, \
             size, mode, filename, CASE WHEN ?4 THEN value END, length(value) FROM Cache \
             WHERE ?1 < rowid AND rowid < ?2",
            $filter,
            " ORDER BY rowid ",
            $order,
            " LIMIT +?3"
        )
    };
}

const PAGE_ASC: &str = listing!("", "ASC");
const PAGE_DESC: &str = listing!("", "DESC");
const TAG_PAGE_ASC: &str = listing!(" AND tag = ?5", "ASC");
const TAG_PAGE_DESC: &str = listing!(" AND tag = ?5", "DESC");

/// The live row of a key, in [`ListedRow::read`]'s columns.
const LISTED_ROW: &str = "SELECT rowid, key, raw, store_time, expire_time, access_time, \
     access_count, tag, size, mode, filename, value, length(value) FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";

const MAX_ROWID: &str = "SELECT MAX(rowid) FROM Cache";

const EXPIRED_COUNT: &str =
    "SELECT COUNT(*) FROM Cache WHERE expire_time IS NOT NULL AND expire_time <= ?1";

/// A column copied out of a row without interpreting it (so bad text is not an error yet).
#[derive(Debug, Clone)]
pub(crate) enum Col {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Col {
    /// Copies a column.
    fn of(v: ValueRef<'_>) -> Col {
        match v {
            ValueRef::Null => Col::Null,
            ValueRef::Integer(i) => Col::Integer(i),
            ValueRef::Real(f) => Col::Real(f),
            ValueRef::Text(t) => Col::Text(t.to_vec()),
            ValueRef::Blob(b) => Col::Blob(b.to_vec()),
        }
    }

    /// As an [`SqlValue`]; `Err` with the bytes for TEXT that is not UTF-8.
    pub(crate) fn into_sql(self) -> std::result::Result<SqlValue, Vec<u8>> {
        Ok(match self {
            Col::Null => SqlValue::Null,
            Col::Integer(i) => SqlValue::Integer(i),
            Col::Real(f) => SqlValue::Real(f),
            Col::Text(t) => SqlValue::Text(
                String::from_utf8(t).map_err(std::string::FromUtf8Error::into_bytes)?,
            ),
            Col::Blob(b) => SqlValue::Blob(b),
        })
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Col::Integer(i) => Some(*i),
            Col::Real(f) => dcache_disk::integral_i64(*f),
            _ => None,
        }
    }

    pub(crate) fn as_time(&self) -> Option<SystemTime> {
        match self {
            Col::Integer(i) => from_unix(*i as f64),
            Col::Real(f) => from_unix(*f),
            _ => None,
        }
    }
}

/// A row as listed: its columns, uninterpreted.
pub(crate) struct ListedRow {
    pub(crate) rowid: i64,
    pub(crate) key: Col,
    pub(crate) raw: Col,
    pub(crate) store_time: Col,
    pub(crate) expire_time: Col,
    pub(crate) access_time: Col,
    pub(crate) access_count: Col,
    pub(crate) tag: Col,
    pub(crate) size: Col,
    pub(crate) mode: Col,
    pub(crate) filename: Col,
    /// NULL when the listing does not read values.
    pub(crate) value: Col,
    pub(crate) inline_len: Col,
}

impl ListedRow {
    /// Reads the columns of [`listing`] and [`LISTED_ROW`].
    fn read(r: &Row<'_>) -> rusqlite::Result<ListedRow> {
        let col = |i: usize| r.get_ref(i).map(Col::of);
        Ok(ListedRow {
            rowid: r.get(0)?,
            key: col(1)?,
            raw: col(2)?,
            store_time: col(3)?,
            expire_time: col(4)?,
            access_time: col(5)?,
            access_count: col(6)?,
            tag: col(7)?,
            size: col(8)?,
            mode: col(9)?,
            filename: col(10)?,
            value: col(11)?,
            inline_len: col(12)?,
        })
    }
}

impl Db<'_> {
    /// A page of rows with `lo < rowid < hi`, at most `limit`, ascending (or descending with
    /// `reverse`), optionally only those tagged `tag`; values only with `values`.
    pub(crate) fn listing_page(
        &self,
        lo: i64,
        hi: i64,
        limit: i64,
        values: bool,
        tag: Option<&Tag>,
        reverse: bool,
    ) -> Result<Vec<ListedRow>> {
        let read = |r: &Row<'_>| ListedRow::read(r).map_err(|e| self.err(e));
        match tag {
            None => {
                let sql = if reverse { PAGE_DESC } else { PAGE_ASC };
                self.all(sql, (lo, hi, limit, values), read)
            }
            Some(tag) => {
                let sql = if reverse { TAG_PAGE_DESC } else { TAG_PAGE_ASC };
                self.all(sql, (lo, hi, limit, values, Bind(tag.as_sql())), read)
            }
        }
    }

    /// The live row of `key` at `now`, with its value.
    pub(crate) fn listed_row(&self, key: &DbKey, now: f64) -> Result<Option<ListedRow>> {
        self.first(LISTED_ROW, (Bind(key.value.as_ref()), key.raw, now), |r| {
            ListedRow::read(r).map_err(|e| self.err(e))
        })
    }

    /// The largest rowid, `None` for an empty table.
    pub(crate) fn max_rowid(&self) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(MAX_ROWID)
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// The number of rows expired at `now`.
    pub(crate) fn expired_count(&self, now: f64) -> Result<i64> {
        self.conn
            .prepare_cached(EXPIRED_COUNT)
            .and_then(|mut s| s.query_row([now], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn col_conversions_keep_bad_text_as_bytes() {
        assert_eq!(
            Col::Text(vec![0xff, b'a']).into_sql(),
            Err(vec![0xff, b'a'])
        );
        assert_eq!(
            Col::Text(b"ok".to_vec()).into_sql(),
            Ok(SqlValue::Text("ok".into()))
        );
        assert_eq!(Col::Real(3.0).as_i64(), Some(3));
        assert_eq!(Col::Real(3.5).as_i64(), None);
        assert_eq!(Col::Text(b"1".to_vec()).as_time(), None);
    }
}
