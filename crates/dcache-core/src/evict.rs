//! Culling, expiry, eviction by tag, clearing, and the cache's volume.

use dcache_disk::DiskFormat;
use rusqlite::OptionalExtension;

use crate::cache::{Cache, State};
use crate::conn::Tx;
use crate::error::Result;
use crate::settings::EvictionPolicy;

/// The rows culling removes for a policy, oldest first (`None` culls by expiry only).
fn policy_select(policy: EvictionPolicy) -> Option<&'static str> {
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

const SELECT_EXPIRED: &str = "SELECT rowid, filename FROM Cache \
     WHERE expire_time IS NOT NULL AND expire_time < ?1 ORDER BY expire_time LIMIT +?2";

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
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let expired = self.select_rows(tx, SELECT_EXPIRED, (now, limit_sql))?;
        let removed = expired.len() as u64;
        for (rowid, filename) in expired {
            self.delete_rowid(tx, rowid, filename)?;
        }
        let remaining = limit - removed.min(limit);
        if remaining == 0 {
            return Ok(());
        }
        let Some(select) = policy_select(state.settings.eviction_policy) else {
            return Ok(());
        };
        if self.volume_in(tx.sql)? < state.settings.size_limit {
            return Ok(());
        }
        for (rowid, filename) in
            self.select_rows(tx, select, [i64::try_from(remaining).unwrap_or(i64::MAX)])?
        {
            self.delete_rowid(tx, rowid, filename)?;
        }
        Ok(())
    }

    fn select_rows(
        &self,
        tx: &Tx<'_>,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(i64, Option<String>)>> {
        tx.sql
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(self.sql_err())
    }

    /// Bytes the cache occupies: database pages plus value files (python's `volume()`).
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`](crate::Error::Sqlite).
    pub fn volume(&self) -> Result<u64> {
        self.read_with(|c| self.volume_in(c))
    }

    pub(crate) fn volume_in(&self, c: &rusqlite::Connection) -> Result<u64> {
        // One statement for both numbers: this runs inside every write.
        let (pages, size): (i64, Option<f64>) = c
            .prepare_cached(crate::schema::VOLUME)
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok((r.get(0)?, crate::sqlval::opt_f64(r.get_ref(1)?)))
                })
            })
            .map_err(self.sql_err())?;
        // No `size` row in Settings: as python, an error (a foreign or damaged database).
        let size = size.ok_or_else(|| self.sql_err()(rusqlite::Error::QueryReturnedNoRows))?;
        let db = self.inner.page_size.saturating_mul(pages).max(0) as u64;
        Ok(db.saturating_add(size.max(0.0) as u64))
    }
}

/// Rows removed per transaction by the bulk operations, so none holds the write lock long.
const BATCH: i64 = 100;

/// python's `cull()` deletes this many policy rows per transaction.
const CULL_BATCH: i64 = 10;

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
                let rows = self.select_rows(tx, select, [CULL_BATCH])?;
                let n = rows.len() as u64;
                for (rowid, filename) in rows {
                    self.delete_rowid(tx, rowid, filename)?;
                }
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
        self.delete_batches(|tx, _| {
            self.select_rows(
                tx,
                "SELECT rowid, filename FROM Cache WHERE expire_time IS NOT NULL \
                 AND expire_time < ?1 ORDER BY expire_time LIMIT +?2",
                (now, BATCH),
            )
        })
    }

    /// Removes every entry tagged `tag`, expired or not (python's `evict`). Returns the
    /// number removed. Fast with [`create_tag_index`](Self::create_tag_index).
    ///
    /// # Errors
    ///
    /// As [`cull`](Self::cull).
    pub fn evict(&self, tag: impl Into<crate::Tag>) -> Result<u64> {
        let tag = tag.into();
        self.delete_batches(|tx, after| {
            self.select_rows(
                tx,
                "SELECT rowid, filename FROM Cache WHERE tag = ?1 AND rowid > ?2 ORDER BY rowid LIMIT +?3",
                (crate::sqlval::Bind(tag.as_sql()), after, BATCH),
            )
        })
    }

    /// Removes every entry (python's `clear`). Returns the number removed.
    ///
    /// # Errors
    ///
    /// As [`cull`](Self::cull).
    pub fn clear(&self) -> Result<u64> {
        self.delete_batches(|tx, after| {
            self.select_rows(
                tx,
                "SELECT rowid, filename FROM Cache WHERE rowid > ?1 ORDER BY rowid LIMIT +?2",
                (after, BATCH),
            )
        })
    }

    /// Deletes the rows `select(tx, last_rowid)` returns, one transaction per batch, until a
    /// batch is empty.
    fn delete_batches(
        &self,
        select: impl Fn(&Tx<'_>, i64) -> Result<Vec<(i64, Option<String>)>>,
    ) -> Result<u64> {
        let mut count = 0;
        let mut after = 0;
        loop {
            let (removed, last) = self.write_freeing(|tx| {
                let rows = select(tx, after)?;
                let last = rows.last().map_or(after, |(rowid, _)| *rowid);
                let n = rows.len() as u64;
                for (rowid, filename) in rows {
                    self.delete_rowid(tx, rowid, filename)?;
                }
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
        self.write(|tx| {
            tx.sql
                .execute_batch(crate::schema::CREATE_TAG_INDEX)
                .map_err(self.sql_err())
        })?;
        self.reset("tag_index", 1).map(drop)
    }

    /// Drops the tag index and records `tag_index = 0` (python's `drop_tag_index`).
    ///
    /// # Errors
    ///
    /// The errors of a write.
    pub fn drop_tag_index(&self) -> Result<()> {
        self.write(|tx| {
            tx.sql
                .execute_batch(crate::schema::DROP_TAG_INDEX)
                .map_err(self.sql_err())
        })?;
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
            let count = |name: &str| -> Result<u64> {
                let value = tx
                    .sql
                    .prepare_cached(crate::schema::SETTING_VALUE)
                    .and_then(|mut s| {
                        s.query_row([name], |r| Ok(crate::sqlval::opt_f64(r.get_ref(0)?)))
                            .optional()
                    })
                    .map_err(self.sql_err())?
                    .flatten();
                Ok(value.map_or(0, |v| v as u64))
            };
            let stats = Stats {
                hits: count("hits")?,
                misses: count("misses")?,
            };
            tx.sql
                .execute_batch("UPDATE Settings SET value = 0 WHERE key IN ('hits', 'misses')")
                .map_err(self.sql_err())?;
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
