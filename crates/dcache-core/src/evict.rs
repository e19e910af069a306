//! Culling, expiry, eviction by tag, clearing, and the cache's volume.

use dcache_disk::DiskFormat;

use crate::cache::Cache;
use crate::conn::Tx;
use crate::error::Result;
use crate::sql::{RowidRow, policy_select};
use crate::state::State;

impl<D: DiskFormat> Cache<D> {
    /// python's `_cull`, run inside writes: removes up to `limit` expired entries, then, if the
    /// cache is at or over its size limit, up to the rest of `limit` entries by policy.
    pub(crate) fn cull_in_tx(
        &self,
        tx: &Tx<'_>,
        state: &State<D>,
        now: f64,
        limit: u64,
    ) -> Result<()> {
        if limit == 0 {
            return Ok(());
        }
        let db = tx.db();
        let expired = db.expired_rows(now, limit)?;
        let removed = expired.len() as u64;
        self.delete_rows(tx, expired)?;
        let remaining = limit - removed.min(limit);
        if remaining == 0 {
            return Ok(());
        }
        let Some(select) = policy_select(state.settings.eviction_policy) else {
            return Ok(());
        };
        if self.volume_in(db)? < state.settings.size_limit {
            return Ok(());
        }
        self.delete_rows(tx, db.policy_rows(select, remaining)?)
    }

    /// Deletes rows, their value files once the transaction commits.
    fn delete_rows(&self, tx: &Tx<'_>, rows: Vec<RowidRow>) -> Result<()> {
        for row in rows {
            self.delete_rowid(tx, row.rowid, row.filename)?;
        }
        Ok(())
    }

    /// Bytes the cache occupies: database pages plus value files (python's `volume()`).
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`](crate::Error::Sqlite).
    pub fn volume(&self) -> Result<u64> {
        self.read_with(|db| self.volume_in(db))
    }
}

/// Rows removed per transaction by the bulk operations, so none holds the write lock long.
const BATCH: u64 = 100;

/// python's `cull()` deletes this many policy rows per transaction.
const CULL_BATCH: u64 = 10;

impl<D: DiskFormat> Cache<D> {
    /// Removes expired entries, then entries by the eviction policy until the cache's volume
    /// is at most its size limit (python's `cull`). Returns the number removed.
    ///
    /// Works in short transactions, so other writers interleave.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) (entries removed so far stay removed),
    /// [`Error::Sqlite`](crate::Error::Sqlite).
    pub fn cull(&self) -> Result<u64> {
        let mut count = self.expire()?;
        let state = self.state();
        let Some(select) = policy_select(state.settings.eviction_policy) else {
            return Ok(count);
        };
        while self.volume()? > state.settings.size_limit {
            let removed = self.write_freeing(|tx| {
                let rows = tx.db().policy_rows(select, CULL_BATCH)?;
                let n = rows.len() as u64;
                self.delete_rows(tx, rows)?;
                Ok(n)
            })?;
            if removed == 0 {
                break;
            }
            count += removed;
        }
        Ok(count)
    }

    /// Removes every entry that has expired (python's `expire`). Returns the number removed.
    ///
    /// # Errors
    ///
    /// As [`cull`](Self::cull).
    pub fn expire(&self) -> Result<u64> {
        let now = self.now();
        // Each batch deletes what it selected, so no lower bound is needed (python's bound on
        // the last expire time skips entries that share it across a batch boundary).
        self.delete_batches(|tx, _| tx.db().expired_rows(now, BATCH))
    }

    /// Removes every entry tagged `tag`, expired or not (python's `evict`). Returns the
    /// number removed. Fast with [`create_tag_index`](Self::create_tag_index).
    ///
    /// # Errors
    ///
    /// As [`cull`](Self::cull).
    pub fn evict(&self, tag: impl Into<crate::Tag>) -> Result<u64> {
        let tag = tag.into();
        self.delete_batches(|tx, after| tx.db().tagged_rows(&tag, after, BATCH))
    }

    /// Removes every entry (python's `clear`). Returns the number removed.
    ///
    /// # Errors
    ///
    /// As [`cull`](Self::cull).
    pub fn clear(&self) -> Result<u64> {
        self.delete_batches(|tx, after| tx.db().rows_after(after, BATCH))
    }

    /// Deletes the rows `select(tx, last_rowid)` returns, one transaction per batch, until a
    /// batch is empty.
    fn delete_batches(
        &self,
        select: impl Fn(&Tx<'_>, i64) -> Result<Vec<RowidRow>>,
    ) -> Result<u64> {
        let mut count = 0;
        let mut after = 0;
        loop {
            let (removed, last) = self.write_freeing(|tx| {
                let rows = select(tx, after)?;
                let last = rows.last().map_or(after, |row| row.rowid);
                let n = rows.len() as u64;
                self.delete_rows(tx, rows)?;
                Ok((n, last))
            })?;
            if removed == 0 {
                return Ok(count);
            }
            count += removed;
            after = last;
        }
    }

    /// Creates the `(tag, rowid)` index and records `tag_index = 1` (python's
    /// `create_tag_index`).
    ///
    /// # Errors
    ///
    /// The errors of a write.
    pub fn create_tag_index(&self) -> Result<()> {
        self.write(|tx| tx.db().execute_batch(crate::schema::CREATE_TAG_INDEX))?;
        self.reset("tag_index", 1).map(drop)
    }

    /// Drops the tag index and records `tag_index = 0` (python's `drop_tag_index`).
    ///
    /// # Errors
    ///
    /// The errors of a write.
    pub fn drop_tag_index(&self) -> Result<()> {
        self.write(|tx| tx.db().execute_batch(crate::schema::DROP_TAG_INDEX))?;
        self.reset("tag_index", 0).map(drop)
    }

    /// The hit and miss counts recorded so far. Only reads: whether statistics are recorded
    /// stays as it is ([`set_statistics`](Self::set_statistics) changes that).
    ///
    /// Python's `stats()` also turns statistics on; here that is `set_statistics(true)`.
    /// `stats(reset=True)` is [`reset_stats`](Self::reset_stats), `stats(enable=False)` is
    /// `set_statistics(false)`.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`](crate::Error::Sqlite) reading the counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set_statistics(true)?;
    /// cache.get::<i64>("missing")?;
    /// assert_eq!(cache.stats()?.misses, 1);
    /// assert!(cache.settings().statistics); // reading left them on
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        Ok(Stats {
            hits: u64::try_from(self.metadata("hits")?).unwrap_or(0),
            misses: u64::try_from(self.metadata("misses")?).unwrap_or(0),
        })
    }

    /// Returns the hit and miss counts and zeroes them, in one write transaction (python's
    /// `stats(reset=True)`, without its turning statistics on). Whether statistics are
    /// recorded is unchanged.
    ///
    /// # Errors
    ///
    /// The errors of a write.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set_statistics(true)?;
    /// cache.get::<i64>("missing")?;
    /// assert_eq!(cache.reset_stats()?.misses, 1);
    /// assert_eq!(cache.stats()?.misses, 0);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    #[doc(alias = "stats")]
    pub fn reset_stats(&self) -> Result<Stats> {
        self.write(|tx| {
            let db = tx.db();
            let stats = Stats {
                hits: u64::try_from(db.counter("hits")?).unwrap_or(0),
                misses: u64::try_from(db.counter("misses")?).unwrap_or(0),
            };
            db.reset_stats()?;
            Ok(stats)
        })
    }

    /// Turns the recording of hits and misses on or off and stores the setting (python's
    /// `stats(enable=…)` and `reset('statistics', …)`); the counts are kept.
    ///
    /// While on, every lookup is a write transaction.
    ///
    /// # Errors
    ///
    /// The errors of a write.
    #[doc(alias = "stats")]
    pub fn set_statistics(&self, enabled: bool) -> Result<()> {
        if self.state().settings.statistics != enabled {
            self.reset("statistics", i64::from(enabled))?;
        }
        Ok(())
    }
}

/// Hit and miss counts, as [`Cache::stats`] and [`Cache::reset_stats`] return them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}
