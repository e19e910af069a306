//! The statements of culling, expiry, eviction by tag and clearing (the rows they remove,
//! oldest first), the hit counters' reset, and the cache's volume.

use dcache_disk::DiskFormat;

use crate::cache::Cache;
use crate::error::Result;
use crate::settings::EvictionPolicy;
use crate::sql::{Db, RowidRow};
use crate::sqlval::{Bind, opt_f64};
use crate::tag::Tag;

/// The rows culling removes for a policy, oldest first (`None` culls by expiry only).
pub(crate) fn policy_select(policy: EvictionPolicy) -> Option<&'static str> {
    match policy {
        EvictionPolicy::None => None,
        EvictionPolicy::LeastRecentlyStored => {
            Some("SELECT rowid, filename FROM Cache ORDER BY store_time LIMIT +?1")
        }
        EvictionPolicy::LeastRecentlyUsed => {
            Some("SELECT rowid, filename FROM Cache ORDER BY access_time LIMIT +?1")
        }
        EvictionPolicy::LeastFrequentlyUsed => {
            Some("SELECT rowid, filename FROM Cache ORDER BY access_count LIMIT +?1")
        }
    }
}

/// Expired rows, the soonest expired first.
const SELECT_EXPIRED: &str = "SELECT rowid, filename FROM Cache \
     WHERE expire_time IS NOT NULL AND expire_time < ?1 ORDER BY expire_time LIMIT +?2";

/// Rows of a tag after a rowid, in rowid order.
const SELECT_TAGGED: &str = "SELECT rowid, filename FROM Cache \
     WHERE tag = ?1 AND rowid > ?2 ORDER BY rowid LIMIT +?3";

/// Rows after a rowid, in rowid order.
const SELECT_AFTER: &str =
    "SELECT rowid, filename FROM Cache WHERE rowid > ?1 ORDER BY rowid LIMIT +?2";

/// The number of pages in the database (`PRAGMA page_count`, without its re-prepare per run)
/// and `Settings.size`: what python's `volume()` adds up.
const VOLUME: &str = "SELECT (SELECT page_count FROM pragma_page_count()), \
     (SELECT value FROM Settings WHERE key = 'size')";

/// Zeroes the hit and miss counters.
const RESET_STATS: &str = "UPDATE Settings SET value = 0 WHERE key IN ('hits', 'misses')";

/// A limit as SQLite takes it.
fn sql_limit(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn rowid_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowidRow> {
    Ok(RowidRow {
        rowid: r.get(0)?,
        filename: r.get(1)?,
    })
}

impl Db<'_> {
    fn rowid_rows(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<RowidRow>> {
        self.all(sql, params, |r| rowid_row(r).map_err(|e| self.err(e)))
    }

    /// Up to `limit` rows expired at `now`, the soonest expired first.
    pub(crate) fn expired_rows(&self, now: f64, limit: u64) -> Result<Vec<RowidRow>> {
        self.rowid_rows(SELECT_EXPIRED, (now, sql_limit(limit)))
    }

    /// Up to `limit` rows the policy's `select` ([`policy_select`]) removes first.
    pub(crate) fn policy_rows(&self, select: &str, limit: u64) -> Result<Vec<RowidRow>> {
        self.rowid_rows(select, [sql_limit(limit)])
    }

    /// Up to `limit` rows tagged `tag` after rowid `after`.
    pub(crate) fn tagged_rows(&self, tag: &Tag, after: i64, limit: u64) -> Result<Vec<RowidRow>> {
        self.rowid_rows(SELECT_TAGGED, (Bind(tag.as_sql()), after, sql_limit(limit)))
    }

    /// Up to `limit` rows after rowid `after`.
    pub(crate) fn rows_after(&self, after: i64, limit: u64) -> Result<Vec<RowidRow>> {
        self.rowid_rows(SELECT_AFTER, (after, sql_limit(limit)))
    }

    /// Zeroes the hit and miss counters.
    pub(crate) fn reset_stats(&self) -> Result<()> {
        self.execute_batch(RESET_STATS)
    }
}

impl<D: DiskFormat> Cache<D> {
    /// Bytes the cache occupies, read on `db`: database pages plus value files.
    pub(crate) fn volume_in(&self, db: Db<'_>) -> Result<u64> {
        // One statement for both numbers: this runs inside every write.
        let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, Option<f64>)> {
            Ok((r.get(0)?, opt_f64(r.get_ref(1)?)))
        };
        let (pages, size) = db
            .first_row(VOLUME, [], read)?
            .ok_or_else(|| db.err(rusqlite::Error::QueryReturnedNoRows))?;
        // No `size` row in Settings: as python, an error (a foreign or damaged database).
        let size = size.ok_or_else(|| db.err(rusqlite::Error::QueryReturnedNoRows))?;
        let db = self.inner.page_size.saturating_mul(pages).max(0) as u64;
        Ok(db.saturating_add(size.max(0.0) as u64))
    }
}
