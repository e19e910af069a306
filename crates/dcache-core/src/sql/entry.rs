//! The statements on one entry, each beside the row it reads: a key's live row (whole, or
//! its value columns for a read), its row for a write, insert, update, delete, touch, and
//! `incr`'s counter.

use dcache_disk::{DbKey, DiskFormat, Mode, SqlRef, SqlValue, StoredRef};
use rusqlite::Row;

use crate::cache::Cache;
use crate::clock::from_unix;
use crate::conn::Tx;
use crate::error::Result;
use crate::options::Entry;
use crate::settings::EvictionPolicy;
use crate::sql::Db;
use crate::sqlval::{Bind, column_err, from_rusqlite, opt_f64, sql_ref, sql_value};

/// Column `i` of a row of this file's statements; a type python-diskcache never writes there
/// is a decode error ([`column_err`]).
fn column<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> Result<T> {
    row.get(i).map_err(column_err)
}

/// Column `i`, borrowed, as [`column`] reads it.
fn column_ref<'r>(row: &'r Row<'_>, i: usize) -> Result<rusqlite::types::ValueRef<'r>> {
    row.get_ref(i).map_err(column_err)
}
use crate::tag::Tag;

/// The columns [`LiveRow::read`] reads, in its order; statements elsewhere (the pager, the
/// queue) select them first and their own columns after.
macro_rules! live_row_cols {
    () => {
        "rowid, expire_time, tag, mode, filename, value, size"
    };
}
pub(crate) use live_row_cols;

/// A key's live row (`expire_time IS NULL OR expire_time > now`).
const SELECT_LIVE: &str = concat!(
    "SELECT ",
    live_row_cols!(),
    " FROM Cache WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)"
);

/// A row with everything an operation returns about its entry.
pub(crate) struct LiveRow {
    pub(crate) rowid: i64,
    pub(crate) expire_time: Option<f64>,
    pub(crate) tag: Option<Tag>,
    pub(crate) mode: Mode,
    pub(crate) filename: Option<String>,
    pub(crate) value: SqlValue,
    pub(crate) size: u64,
}

impl LiveRow {
    /// Reads the columns of [`live_row_cols`], the first of `row`.
    pub(crate) fn read(row: &Row<'_>) -> Result<LiveRow> {
        let mode = Mode::from_column(column::<i64>(row, 3)?)?;
        Ok(LiveRow {
            rowid: column(row, 0)?,
            expire_time: opt_f64(column_ref(row, 1)?),
            tag: Tag::from_sql(sql_ref(column_ref(row, 2)?)?),
            mode,
            filename: column(row, 4)?,
            value: sql_value(column_ref(row, 5)?)?,
            size: size_column(column::<Option<i64>>(row, 6)?),
        })
    }

    /// The stored value, for the disk to decode.
    pub(crate) fn stored(&self) -> StoredRef<'_> {
        StoredRef {
            size: self.size,
            mode: self.mode,
            filename: self.filename.as_deref(),
            value: self.value.as_ref(),
        }
    }

    /// The entry of this row with its decoded value.
    pub(crate) fn entry<V>(self, value: V) -> Entry<V> {
        Entry {
            value,
            expire_time: self.expire_time.and_then(from_unix),
            tag: self.tag,
        }
    }
}

/// The `size` column as a byte count (NULL or negative: 0).
fn size_column(size: Option<i64>) -> u64 {
    u64::try_from(size.unwrap_or(0)).unwrap_or(0)
}

/// The value columns of a key's live row, for a read that needs nothing else.
const SELECT_HIT_VALUE: &str = "SELECT mode, filename, value, size FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
/// The same value columns, then the rowid, expiry time and tag.
const SELECT_HIT_ENTRY: &str = "SELECT mode, filename, value, size, rowid, expire_time, tag \
     FROM Cache WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";

/// A live row read by a lookup, its value decoded or its file still to read.
pub(crate) struct Hit<T> {
    /// 0 unless the entry's columns were asked for.
    pub(crate) rowid: i64,
    pub(crate) expire_time: Option<f64>,
    pub(crate) tag: Option<Tag>,
    pub(crate) value: HitValue<T>,
}

/// The value of a [`Hit`].
pub(crate) enum HitValue<T> {
    /// An inline value, decoded from the borrowed column.
    Decoded(std::result::Result<T, dcache_disk::Error>),
    /// A value file, read once the statement is done.
    File {
        mode: Mode,
        filename: String,
        size: u64,
        value: SqlValue,
    },
}

impl<T> Hit<T> {
    /// Reads a row of [`SELECT_HIT_VALUE`], or of [`SELECT_HIT_ENTRY`] with `entry`, decoding
    /// an inline value in place.
    fn read(
        row: &Row<'_>,
        entry: bool,
        decode: impl FnOnce(StoredRef<'_>) -> std::result::Result<T, dcache_disk::Error>,
    ) -> Result<Hit<T>> {
        let mode = Mode::from_column(column::<i64>(row, 0)?)?;
        let size = size_column(column::<Option<i64>>(row, 3)?);
        let filename = match sql_ref(column_ref(row, 1)?)? {
            SqlRef::Null => None,
            SqlRef::Text(name) => Some(name),
            other => return Err(column_err(format!("filename is {}", other.storage_class()))),
        };
        let value = sql_ref(column_ref(row, 2)?)?;
        let value = match filename {
            None => HitValue::Decoded(decode(StoredRef {
                size,
                mode,
                filename: None,
                value,
            })),
            Some(name) => HitValue::File {
                mode,
                filename: name.to_owned(),
                size,
                value: value.to_owned(),
            },
        };
        if !entry {
            return Ok(Hit {
                rowid: 0,
                expire_time: None,
                tag: None,
                value,
            });
        }
        Ok(Hit {
            rowid: column(row, 4)?,
            expire_time: opt_f64(column_ref(row, 5)?),
            tag: Tag::from_sql(sql_ref(column_ref(row, 6)?)?),
            value,
        })
    }
}

/// A key's row, live or expired, as a write finds it.
const SELECT_ROW: &str =
    "SELECT rowid, filename, expire_time FROM Cache WHERE key = ?1 AND raw = ?2";

/// A row of [`SELECT_ROW`].
pub(crate) struct KeyRow {
    pub(crate) rowid: i64,
    pub(crate) filename: Option<String>,
    pub(crate) expire_time: Option<f64>,
}

/// The rowid and value file of a key's live row.
const SELECT_LIVE_ROWID: &str = "SELECT rowid, filename FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";

/// A row of [`SELECT_LIVE_ROWID`].
pub(crate) struct RowidRow {
    pub(crate) rowid: i64,
    pub(crate) filename: Option<String>,
}

/// The columns a write stores besides the key and the times.
pub(crate) struct Columns<'a> {
    pub(crate) expire_time: Option<f64>,
    pub(crate) tag: SqlRef<'a>,
    pub(crate) stored: StoredRef<'a>,
}

const INSERT_ROW: &str = "INSERT INTO Cache(key, raw, store_time, expire_time, \
     access_time, access_count, tag, size, mode, filename, value) \
     VALUES (?1, ?2, ?3, ?4, ?3, 0, ?5, ?6, ?7, ?8, ?9)";
const UPDATE_ROW: &str = "UPDATE Cache SET store_time = ?1, expire_time = ?2, \
     access_time = ?1, access_count = 0, tag = ?3, size = ?4, mode = ?5, filename = ?6, \
     value = ?7 WHERE rowid = ?8";
const DELETE_ROWID: &str = "DELETE FROM Cache WHERE rowid = ?1";

/// python's read-then-update of `touch` in one statement: only a live entry is touched.
const TOUCH: &str = "UPDATE Cache SET expire_time = ?1 WHERE key = ?2 AND raw = ?3 \
     AND (expire_time IS NULL OR expire_time > ?4)";

/// The row `incr` reads: live or expired, with its value.
const SELECT_COUNTER: &str =
    "SELECT rowid, expire_time, filename, value, mode FROM Cache WHERE key = ?1 AND raw = ?2";

/// A row of [`SELECT_COUNTER`].
pub(crate) struct CounterRow {
    pub(crate) rowid: i64,
    pub(crate) expire_time: Option<f64>,
    pub(crate) filename: Option<String>,
    pub(crate) value: SqlValue,
    /// The raw `mode` column (a bad one is reported with the value, not refused).
    pub(crate) mode: i64,
}

/// `incr`'s update of a counter in place, with the access bookkeeping of each policy.
fn store_counter_sql(policy: EvictionPolicy) -> &'static str {
    match policy {
        EvictionPolicy::LeastRecentlyUsed => {
            "UPDATE Cache SET store_time = ?1, value = ?2, access_time = ?1 WHERE rowid = ?3"
        }
        EvictionPolicy::LeastFrequentlyUsed => {
            "UPDATE Cache SET store_time = ?1, value = ?2, access_count = access_count + 1 \
             WHERE rowid = ?3"
        }
        _ => "UPDATE Cache SET store_time = ?1, value = ?2 WHERE rowid = ?3",
    }
}

const RECORD_ACCESS_TIME: &str = "UPDATE Cache SET access_time = ?1 WHERE rowid = ?2";
const RECORD_ACCESS_COUNT: &str =
    "UPDATE Cache SET access_count = access_count + 1 WHERE rowid = ?1";

impl Db<'_> {
    /// The live row of `key` at `now`.
    pub(crate) fn live_row(&self, key: &DbKey, now: f64) -> Result<Option<LiveRow>> {
        self.first(
            SELECT_LIVE,
            (Bind(key.value.as_ref()), key.raw, now),
            LiveRow::read,
        )
    }

    /// The live row of `key` at `now` for a read: its value decoded by `decode` when inline,
    /// and with `entry`, its rowid, expiry time and tag.
    pub(crate) fn live_hit<T>(
        &self,
        key: &DbKey,
        now: f64,
        entry: bool,
        decode: impl FnOnce(StoredRef<'_>) -> std::result::Result<T, dcache_disk::Error>,
    ) -> Result<Option<Hit<T>>> {
        let sql = if entry {
            SELECT_HIT_ENTRY
        } else {
            SELECT_HIT_VALUE
        };
        self.first(sql, (Bind(key.value.as_ref()), key.raw, now), |row| {
            Hit::read(row, entry, decode)
        })
    }

    /// The row of `key`, live or expired.
    pub(crate) fn key_row(&self, key: &DbKey) -> Result<Option<KeyRow>> {
        self.first_row(SELECT_ROW, (Bind(key.value.as_ref()), key.raw), |r| {
            Ok(KeyRow {
                rowid: r.get(0)?,
                filename: r.get(1)?,
                expire_time: opt_f64(r.get_ref(2)?),
            })
        })
    }

    /// The rowid and value file of the live row of `key` at `now`.
    pub(crate) fn live_rowid(&self, key: &DbKey, now: f64) -> Result<Option<RowidRow>> {
        self.first_row(
            SELECT_LIVE_ROWID,
            (Bind(key.value.as_ref()), key.raw, now),
            |r| {
                Ok(RowidRow {
                    rowid: r.get(0)?,
                    filename: r.get(1)?,
                })
            },
        )
    }

    /// Inserts a row for a key known to be absent.
    pub(crate) fn insert_row(&self, key: &DbKey, now: f64, c: &Columns<'_>) -> Result<()> {
        self.execute(
            INSERT_ROW,
            (
                Bind(key.value.as_ref()),
                key.raw,
                now,
                c.expire_time,
                Bind(c.tag),
                c.stored.size as i64,
                i64::from(c.stored.mode.0),
                c.stored.filename,
                Bind(c.stored.value),
            ),
        )
        .map(drop)
    }

    /// Rewrites a row in place (rowid kept, so its position in iteration order too).
    pub(crate) fn update_row(&self, rowid: i64, now: f64, c: &Columns<'_>) -> Result<()> {
        self.execute(
            UPDATE_ROW,
            (
                now,
                c.expire_time,
                Bind(c.tag),
                c.stored.size as i64,
                i64::from(c.stored.mode.0),
                c.stored.filename,
                Bind(c.stored.value),
                rowid,
            ),
        )
        .map(drop)
    }

    /// Deletes a row (its value file is the caller's: see [`Cache::delete_rowid`]).
    pub(crate) fn delete_row(&self, rowid: i64) -> Result<()> {
        self.execute(DELETE_ROWID, [rowid]).map(drop)
    }

    /// Sets the expiry of the live row of `key` at `now`; returns whether there was one.
    pub(crate) fn touch(&self, key: &DbKey, now: f64, expire_time: Option<f64>) -> Result<bool> {
        let touched = self.execute(TOUCH, (expire_time, Bind(key.value.as_ref()), key.raw, now))?;
        Ok(touched == 1)
    }

    /// The row of `key` as `incr` reads it.
    pub(crate) fn counter_row(&self, key: &DbKey) -> Result<Option<CounterRow>> {
        self.first_row(SELECT_COUNTER, (Bind(key.value.as_ref()), key.raw), |r| {
            Ok(CounterRow {
                rowid: r.get(0)?,
                expire_time: opt_f64(r.get_ref(1)?),
                filename: r.get(2)?,
                value: from_rusqlite(r.get(3)?),
                mode: r.get(4)?,
            })
        })
    }

    /// Stores `incr`'s new `value` in the row in place, recording the access as `policy` does.
    pub(crate) fn store_counter(
        &self,
        policy: EvictionPolicy,
        rowid: i64,
        now: f64,
        value: i64,
    ) -> Result<()> {
        self.execute(store_counter_sql(policy), (now, value, rowid))
            .map(drop)
    }

    /// Records a read of the row for the policies that track reads (LRU, LFU).
    pub(crate) fn record_access(&self, policy: EvictionPolicy, rowid: i64, now: f64) -> Result<()> {
        match policy {
            EvictionPolicy::LeastRecentlyUsed => {
                self.execute(RECORD_ACCESS_TIME, (now, rowid))?;
            }
            EvictionPolicy::LeastFrequentlyUsed => {
                self.execute(RECORD_ACCESS_COUNT, [rowid])?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl<D: DiskFormat> Cache<D> {
    /// Deletes a row; its value file, if any, is removed once the transaction commits.
    pub(crate) fn delete_rowid(
        &self,
        tx: &Tx<'_>,
        rowid: i64,
        filename: Option<String>,
    ) -> Result<()> {
        tx.db().delete_row(rowid)?;
        if let Some(name) = filename {
            tx.remove_after_commit(&self.inner.files, name);
        }
        Ok(())
    }
}

/// Describes a stored value for error messages ("an inline pickle", "text", …).
pub(crate) fn describe_stored(mode: i64, value: SqlRef<'_>) -> String {
    match (mode, value) {
        (1, v) => format!("raw {}", v.storage_class().to_ascii_lowercase()),
        (2, _) => "bytes value file".to_owned(),
        (3, _) => "text value file".to_owned(),
        (4, _) => "pickled value".to_owned(),
        (5, _) => "MessagePack value".to_owned(),
        (m, _) => format!("value of mode {m}"),
    }
}
