//! The statements of `check`: SQLite's integrity check, the rows that name value files, and
//! the true count and size the counters are compared with.

use dcache_disk::SqlValue;

use crate::error::Result;
use crate::sql::Db;
use crate::sqlval::from_rusqlite;

const INTEGRITY_CHECK: &str = "PRAGMA integrity_check";
const VACUUM: &str = "VACUUM";

/// The rows that name a value file.
const FILE_ROWS: &str = "SELECT rowid, size, filename FROM Cache WHERE filename IS NOT NULL";

/// A row of [`FILE_ROWS`], its columns as stored (a damaged row may hold any type).
pub(crate) struct FileRow {
    pub(crate) rowid: i64,
    pub(crate) size: SqlValue,
    pub(crate) filename: SqlValue,
}

const SET_SIZE: &str = "UPDATE Cache SET size = ?1 WHERE rowid = ?2";

/// Every row counts, NULL keys included: `Settings.count` is kept by triggers on every
/// insert and delete, and python stores a NaN key as NULL. (Python counts `COUNT(key)`, so
/// its `check(fix=True)` sets the count too low on such a cache, and `len()` later goes
/// negative.)
const ROW_COUNT: &str = "SELECT COUNT(*) FROM Cache";
/// TOTAL, not SUM: SUM fails on an integer overflow, which damaged sizes can cause.
const TOTAL_SIZE: &str = "SELECT TOTAL(size) FROM Cache";

impl Db<'_> {
    /// SQLite's `PRAGMA integrity_check` lines (`["ok"]` for a sound database).
    pub(crate) fn integrity_check(&self) -> Result<Vec<String>> {
        self.conn
            .prepare(INTEGRITY_CHECK)
            .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(|e| self.err(e))
    }

    /// Rebuilds the database file (`VACUUM`).
    pub(crate) fn vacuum(&self) -> Result<()> {
        self.execute_batch(VACUUM)
    }

    /// Every row that names a value file.
    pub(crate) fn file_rows(&self) -> Result<Vec<FileRow>> {
        self.conn
            .prepare(FILE_ROWS)
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(FileRow {
                        rowid: r.get(0)?,
                        size: from_rusqlite(r.get(1)?),
                        filename: from_rusqlite(r.get(2)?),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Records a row's value file size.
    pub(crate) fn set_size(&self, rowid: i64, size: i64) -> Result<()> {
        self.execute(SET_SIZE, (size, rowid)).map(drop)
    }

    /// The number of rows.
    pub(crate) fn row_count(&self) -> Result<i64> {
        self.conn
            .query_row(ROW_COUNT, [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The total of the `size` column, clamped to `0..=i64::MAX`.
    pub(crate) fn total_size(&self) -> Result<i64> {
        let total: f64 = self
            .conn
            .query_row(TOTAL_SIZE, [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(total.clamp(0.0, i64::MAX as f64) as i64)
    }
}
