//! The pager's statements (`keys`, `items`, `sorted_keys`, `sorted_items`) and the n-th entry
//! in key order: pages by rowid (inclusive bounds) or by key (after the last `(key, raw)`
//! read, bound back exactly as stored), each row's columns read but not decoded.

use dcache_disk::SqlValue;
use rusqlite::Row;

use crate::error::Result;
use crate::iter::PAGE;
use crate::sql::entry::live_row_cols;
use crate::sql::{Db, LiveRow};
use crate::sqlval::{column_err, raw_flag, sql_value};

pub(crate) use crate::iter::Order;

/// The columns of a keys page; `rowid` first, then the key and its `raw` flag.
macro_rules! key_cols {
    () => {
        "rowid, key, raw"
    };
}
/// The columns of an items page: [`LiveRow::read`]'s seven, then the key and `raw`.
macro_rules! item_cols {
    () => {
        concat!(live_row_cols!(), ", key, raw")
    };
}
/// The statements of one column set: by rowid (inclusive bounds, so rowids 0, negative and
/// `i64::MAX` are read like any other) and by key (the first page, then after the last
/// `(key, raw)`; `key IS NULL` rows, which sort first, get statements of their own because
/// `key > NULL` matches nothing, and descending pages after a key end with them).
macro_rules! statements {
    ($cols:expr) => {
        Statements {
            rowid_asc: concat!("SELECT ", $cols, " FROM Cache WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid ASC LIMIT +?3"),
            rowid_desc: concat!("SELECT ", $cols, " FROM Cache WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid DESC LIMIT +?3"),
            key_first_asc: concat!("SELECT ", $cols, " FROM Cache ORDER BY key ASC, raw ASC LIMIT +?1"),
            key_first_desc: concat!("SELECT ", $cols, " FROM Cache ORDER BY key DESC, raw DESC LIMIT +?1"),
            key_next_asc: concat!("SELECT ", $cols, " FROM Cache WHERE key = ?1 AND raw > ?2 OR key > ?1 ORDER BY key ASC, raw ASC LIMIT +?3"),
            key_next_desc: concat!("SELECT ", $cols, " FROM Cache WHERE key = ?1 AND raw < ?2 OR key < ?1 OR key IS NULL ORDER BY key DESC, raw DESC LIMIT +?3"),
            key_after_null_asc: concat!("SELECT ", $cols, " FROM Cache WHERE key IS NULL AND raw > ?1 OR key IS NOT NULL ORDER BY key ASC, raw ASC LIMIT +?2"),
            key_after_null_desc: concat!("SELECT ", $cols, " FROM Cache WHERE key IS NULL AND raw < ?1 ORDER BY key DESC, raw DESC LIMIT +?2"),
        }
    };
}

struct Statements {
    rowid_asc: &'static str,
    rowid_desc: &'static str,
    key_first_asc: &'static str,
    key_first_desc: &'static str,
    key_next_asc: &'static str,
    key_next_desc: &'static str,
    key_after_null_asc: &'static str,
    key_after_null_desc: &'static str,
}

const KEY_STATEMENTS: Statements = statements!(key_cols!());
const ITEM_STATEMENTS: Statements = statements!(item_cols!());

/// One row of a page, its columns read but not decoded.
pub(crate) struct PageRow {
    /// The key column and the `raw` flag, as stored; or why they cannot be read.
    pub(crate) key: Result<(SqlValue, bool)>,
    /// The lookup columns (items pages only); or why they cannot be read.
    pub(crate) found: Option<Result<LiveRow>>,
}

/// Where the next page starts.
#[derive(Debug)]
pub(crate) enum Cursor {
    /// The next rowid to read, inclusive, and the far bound (inclusive); `None` when done.
    Rowid { next: Option<i64>, far: i64 },
    /// The last `(key, raw)` read, as stored.
    Key { last: Option<(AsStored, AsStored)> },
}

/// A column value exactly as stored, text that is not UTF-8 included, so that a cursor can
/// bind it back and compare as SQLite compared it.
#[derive(Debug, Clone)]
pub(crate) enum AsStored {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl AsStored {
    fn of(value: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::ValueRef;
        match value {
            ValueRef::Null => AsStored::Null,
            ValueRef::Integer(i) => AsStored::Integer(i),
            ValueRef::Real(f) => AsStored::Real(f),
            ValueRef::Text(t) => AsStored::Text(t.to_vec()),
            ValueRef::Blob(b) => AsStored::Blob(b.to_vec()),
        }
    }
}

impl rusqlite::ToSql for AsStored {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            AsStored::Null => ValueRef::Null,
            AsStored::Integer(i) => ValueRef::Integer(*i),
            AsStored::Real(f) => ValueRef::Real(*f),
            AsStored::Text(t) => ValueRef::Text(t),
            AsStored::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A row read from a page with where it stands in both orders.
pub(crate) struct Positioned {
    pub(crate) rowid: i64,
    pub(crate) key_as_stored: AsStored,
    pub(crate) raw_as_stored: AsStored,
    pub(crate) row: PageRow,
}

/// Reads a row's columns; only a failure to read the row at all is an error here.
fn read_row(r: &Row<'_>, key_at: usize, raw_at: usize, with_values: bool) -> Result<Positioned> {
    let rowid: i64 = r.get(0).map_err(column_err)?;
    let raw_ref = r.get_ref(raw_at).map_err(column_err)?;
    let key_ref = r.get_ref(key_at).map_err(column_err)?;
    let raw = sql_value(raw_ref).unwrap_or(SqlValue::Null);
    let key = sql_value(key_ref).map(|k| (k, raw_flag(&raw)));
    let found = with_values.then(|| LiveRow::read(r));
    Ok(Positioned {
        rowid,
        key_as_stored: AsStored::of(key_ref),
        raw_as_stored: AsStored::of(raw_ref),
        row: PageRow { key, found },
    })
}

/// Reads the columns `rowid, expire_time, tag, mode, filename, value, size, key, raw` of one
/// row (`nth_sorted_item`).
fn item_row(r: &Row<'_>) -> Result<(LiveRow, SqlValue, bool)> {
    let found = LiveRow::read(r)?;
    let key = sql_value(r.get_ref(7).map_err(column_err)?)?;
    let raw = raw_flag(&sql_value(r.get_ref(8).map_err(column_err)?)?);
    Ok((found, key, raw))
}

const ROWID_BOUNDS: &str = "SELECT MIN(rowid), MAX(rowid) FROM Cache";

// `+expire_time` keeps SQLite off the expire-time index: it must walk the key index in order
// (with that index it sorts the whole table, 20 ms at 100 000 rows).
const NTH_KEY_ASC: &str = "SELECT key, raw FROM Cache WHERE +expire_time IS NULL \
     OR +expire_time > ?1 ORDER BY key ASC, raw ASC LIMIT 1 OFFSET +?2";
const NTH_KEY_DESC: &str = "SELECT key, raw FROM Cache WHERE +expire_time IS NULL \
     OR +expire_time > ?1 ORDER BY key DESC, raw DESC LIMIT 1 OFFSET +?2";
const NTH_ITEM_ASC: &str = concat!(
    "SELECT ",
    item_cols!(),
    " FROM Cache WHERE +expire_time IS NULL OR +expire_time > ?1 \
     ORDER BY key ASC, raw ASC LIMIT 1 OFFSET +?2"
);
const NTH_ITEM_DESC: &str = concat!(
    "SELECT ",
    item_cols!(),
    " FROM Cache WHERE +expire_time IS NULL OR +expire_time > ?1 \
     ORDER BY key DESC, raw DESC LIMIT 1 OFFSET +?2"
);

impl Db<'_> {
    /// The smallest and largest rowid (`None`s for an empty table).
    pub(crate) fn rowid_bounds(&self) -> Result<(Option<i64>, Option<i64>)> {
        self.conn
            .prepare_cached(ROWID_BOUNDS)
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| self.err(e))
    }

    /// The page of up to [`PAGE`] rows after `cursor` in `order`, with the value columns when
    /// `with_values`.
    pub(crate) fn page(
        &self,
        with_values: bool,
        order: Order,
        cursor: &Cursor,
    ) -> Result<Vec<Positioned>> {
        let statements = if with_values {
            &ITEM_STATEMENTS
        } else {
            &KEY_STATEMENTS
        };
        let (key_at, raw_at) = if with_values { (7, 8) } else { (1, 2) };
        let read_page = |sql: &str, args: &[&dyn rusqlite::ToSql]| {
            self.all(sql, args, |r| read_row(r, key_at, raw_at, with_values))
        };
        match (cursor, order) {
            (Cursor::Rowid { next: None, .. }, _) => Ok(Vec::new()),
            (
                Cursor::Rowid {
                    next: Some(next),
                    far,
                },
                Order::Ascending,
            ) => read_page(statements.rowid_asc, &[next, far, &PAGE]),
            (
                Cursor::Rowid {
                    next: Some(next),
                    far,
                },
                Order::Descending,
            ) => read_page(statements.rowid_desc, &[far, next, &PAGE]),
            (Cursor::Key { last: None }, Order::Ascending) => {
                read_page(statements.key_first_asc, &[&PAGE])
            }
            (Cursor::Key { last: None }, Order::Descending) => {
                read_page(statements.key_first_desc, &[&PAGE])
            }
            (
                Cursor::Key {
                    last: Some((AsStored::Null, raw)),
                },
                order,
            ) => read_page(
                if order == Order::Ascending {
                    statements.key_after_null_asc
                } else {
                    statements.key_after_null_desc
                },
                &[raw, &PAGE],
            ),
            (
                Cursor::Key {
                    last: Some((key, raw)),
                },
                order,
            ) => read_page(
                if order == Order::Ascending {
                    statements.key_next_asc
                } else {
                    statements.key_next_desc
                },
                &[key, raw, &PAGE],
            ),
        }
    }

    /// The key and `raw` flag of the `n`-th live entry at `now` in key order (from the end
    /// when `reverse`).
    pub(crate) fn nth_sorted_key(
        &self,
        now: f64,
        n: u64,
        reverse: bool,
    ) -> Result<Option<(SqlValue, bool)>> {
        let sql = if reverse { NTH_KEY_DESC } else { NTH_KEY_ASC };
        let offset = i64::try_from(n).unwrap_or(i64::MAX);
        let read = |r: &Row<'_>| -> rusqlite::Result<(SqlValue, bool)> {
            Ok((
                crate::sqlval::from_rusqlite(r.get(0)?),
                raw_flag(&crate::sqlval::from_rusqlite(r.get(1)?)),
            ))
        };
        self.first_row(sql, (now, offset), read)
    }

    /// The `n`-th live entry at `now` in key order (from the end when `reverse`), with its
    /// key and `raw` flag.
    pub(crate) fn nth_sorted_item(
        &self,
        now: f64,
        n: u64,
        reverse: bool,
    ) -> Result<Option<(LiveRow, SqlValue, bool)>> {
        let sql = if reverse { NTH_ITEM_DESC } else { NTH_ITEM_ASC };
        let offset = i64::try_from(n).unwrap_or(i64::MAX);
        self.first(sql, (now, offset), item_row)
    }
}
