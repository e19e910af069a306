//! Iteration by key-set pages: no connection or read transaction is held between pages, so
//! memory stays flat for any cache size and checkpoints are never starved.

use std::collections::VecDeque;
use std::marker::PhantomData;

use dcache_disk::{DiskFormat, SqlValue};
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::error::Result;
use crate::sqlval::{Bind, from_rusqlite};

/// Rows fetched per page.
pub(crate) const PAGE: i64 = 100;

/// Direction of iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Ascending,
    Descending,
}

/// Keys in insertion order (or reverse), as [`Cache::keys`] and [`Cache::keys_rev`] return
/// them. Yields `Result`s: a page read or a key decode may fail.
///
/// Entries added after the iterator was created are not yielded (python's behaviour); entries
/// removed meanwhile are skipped; expired entries are included.
pub struct Keys<K, D: DiskFormat> {
    cache: Cache<D>,
    order: Order,
    /// Exclusive bound on the far side (`MAX(rowid) + 1` when ascending).
    bound: Option<i64>,
    /// The last rowid yielded.
    cursor: i64,
    page: VecDeque<(i64, SqlValue, bool)>,
    started: bool,
    done: bool,
    _key: PhantomData<fn() -> K>,
}

impl<K, D: DiskFormat> std::fmt::Debug for Keys<K, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("order", &self.order)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned, D: DiskFormat> Keys<K, D> {
    fn new(cache: &Cache<D>, order: Order) -> Result<Self> {
        // Snapshot the last rowid now: rows inserted later are not yielded.
        let max: Option<i64> = cache.read_sql(|c| {
            c.prepare_cached("SELECT MAX(rowid) FROM Cache")?
                .query_row([], |r| r.get(0))
        })?;
        let (bound, cursor, done) = match (max, order) {
            (None, _) => (None, 0, true),
            (Some(m), Order::Ascending) => (Some(m.saturating_add(1)), 0, false),
            (Some(m), Order::Descending) => (Some(0), m.saturating_add(1), false),
        };
        Ok(Keys {
            cache: cache.clone(),
            order,
            bound,
            cursor,
            page: VecDeque::new(),
            started: true,
            done,
            _key: PhantomData,
        })
    }

    fn fill(&mut self) -> Result<()> {
        let Some(bound) = self.bound else {
            self.done = true;
            return Ok(());
        };
        let (sql, args) = match self.order {
            Order::Ascending => (
                "SELECT rowid, key, raw FROM Cache WHERE ?1 < rowid AND rowid < ?2 ORDER BY rowid ASC LIMIT +?3",
                (self.cursor, bound, PAGE),
            ),
            Order::Descending => (
                "SELECT rowid, key, raw FROM Cache WHERE ?1 < rowid AND rowid < ?2 ORDER BY rowid DESC LIMIT +?3",
                (bound, self.cursor, PAGE),
            ),
        };
        let rows: Vec<(i64, SqlValue, bool)> = self.cache.read_sql(|c| {
            c.prepare_cached(sql)?
                .query_map(args, |r| {
                    Ok((
                        r.get(0)?,
                        from_rusqlite(r.get(1)?),
                        r.get::<_, Option<bool>>(2)?.unwrap_or(false),
                    ))
                })?
                .collect()
        })?;
        if rows.is_empty() {
            self.done = true;
        }
        self.page.extend(rows);
        Ok(())
    }
}

impl<K: DeserializeOwned, D: DiskFormat> Iterator for Keys<K, D> {
    type Item = Result<K>;

    fn next(&mut self) -> Option<Result<K>> {
        debug_assert!(self.started);
        if self.page.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        let (rowid, key, raw) = self.page.pop_front()?;
        self.cursor = rowid;
        Some(
            self.cache
                .state()
                .disk
                .get(key.as_ref(), raw)
                .map_err(Into::into),
        )
    }
}

/// Keys in SQLite's key order, as [`Cache::sorted_keys`] returns them.
pub struct SortedKeys<K, D: DiskFormat> {
    cache: Cache<D>,
    reverse: bool,
    last: Option<(SqlValue, bool)>,
    page: VecDeque<(SqlValue, bool)>,
    done: bool,
    _key: PhantomData<fn() -> K>,
}

impl<K, D: DiskFormat> std::fmt::Debug for SortedKeys<K, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedKeys")
            .field("reverse", &self.reverse)
            .finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned, D: DiskFormat> SortedKeys<K, D> {
    fn fill(&mut self) -> Result<()> {
        let rows: Vec<(SqlValue, bool)> = self.cache.read_sql(|c| {
            let map = |r: &rusqlite::Row<'_>| Ok((from_rusqlite(r.get(0)?), r.get::<_, Option<bool>>(1)?.unwrap_or(false)));
            match (&self.last, self.reverse) {
                (None, false) => c.prepare_cached("SELECT key, raw FROM Cache ORDER BY key ASC, raw ASC LIMIT +?1")?.query_map([PAGE], map)?.collect(),
                (None, true) => c.prepare_cached("SELECT key, raw FROM Cache ORDER BY key DESC, raw DESC LIMIT +?1")?.query_map([PAGE], map)?.collect(),
                (Some((key, raw)), false) => c
                    .prepare_cached("SELECT key, raw FROM Cache WHERE key = ?1 AND raw > ?2 OR key > ?1 ORDER BY key ASC, raw ASC LIMIT +?3")?
                    .query_map((Bind(key.as_ref()), raw, PAGE), map)?
                    .collect(),
                (Some((key, raw)), true) => c
                    .prepare_cached("SELECT key, raw FROM Cache WHERE key = ?1 AND raw < ?2 OR key < ?1 ORDER BY key DESC, raw DESC LIMIT +?3")?
                    .query_map((Bind(key.as_ref()), raw, PAGE), map)?
                    .collect(),
            }
        })?;
        if rows.is_empty() {
            self.done = true;
        }
        self.page.extend(rows);
        Ok(())
    }
}

impl<K: DeserializeOwned, D: DiskFormat> Iterator for SortedKeys<K, D> {
    type Item = Result<K>;

    fn next(&mut self) -> Option<Result<K>> {
        if self.page.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        let (key, raw) = self.page.pop_front()?;
        let decoded = self
            .cache
            .state()
            .disk
            .get(key.as_ref(), raw)
            .map_err(Into::into);
        self.last = Some((key, raw));
        Some(decoded)
    }
}

impl<D: DiskFormat> Cache<D> {
    /// The keys in insertion order, oldest first (python's `iter(cache)`); overwriting a key
    /// keeps its position. Reads a page of 100 rows at a time.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`](crate::Error::Sqlite) reading the first row id; later errors come
    /// through the iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// for k in ["a", "b", "c"] {
    ///     cache.set(k, 0)?;
    /// }
    /// let keys: Vec<String> = cache.keys()?.collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["a", "b", "c"]);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn keys<K: DeserializeOwned>(&self) -> Result<Keys<K, D>> {
        Keys::new(self, Order::Ascending)
    }

    /// The keys newest first (python's `reversed(cache)`).
    ///
    /// # Errors
    ///
    /// As [`keys`](Self::keys).
    pub fn keys_rev<K: DeserializeOwned>(&self) -> Result<Keys<K, D>> {
        Keys::new(self, Order::Descending)
    }

    /// The keys in SQLite's order of the `key` column (python's `iterkeys`): numbers, then
    /// text (by bytes), then blobs (pickled keys among them).
    #[must_use]
    pub fn sorted_keys<K: DeserializeOwned>(&self, reverse: bool) -> SortedKeys<K, D> {
        SortedKeys {
            cache: self.clone(),
            reverse,
            last: None,
            page: VecDeque::new(),
            done: false,
            _key: PhantomData,
        }
    }
}
