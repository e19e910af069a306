//! Iteration by key-set pages: no connection or read transaction is held between pages, so
//! memory stays flat for any cache size and checkpoints are never starved.

use std::collections::VecDeque;
use std::marker::PhantomData;

use dcache_disk::{DiskFormat, SqlValue};
use serde::de::DeserializeOwned;

use crate::cache::{Cache, Found};
use crate::error::Result;
use crate::sqlval::{Bind, from_rusqlite, sql_value};

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
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fill()
        {
            self.done = true;
            return Some(Err(e));
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
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fill()
        {
            self.done = true;
            return Some(Err(e));
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

/// A row read with its value: the lookup columns, the key and its `raw` flag.
type ItemRow = (Found, SqlValue, bool);

/// Reads the columns `rowid, expire_time, tag, mode, filename, value, size, key, raw`.
fn item_row(r: &rusqlite::Row<'_>) -> Result<ItemRow> {
    let found = Found::from_row(r)?;
    let key = sql_value(r.get_ref(7).map_err(crate::sqlval::column_err)?)?;
    let raw = r
        .get::<_, Option<bool>>(8)
        .map_err(crate::sqlval::column_err)?
        .unwrap_or(false);
    Ok((found, key, raw))
}

impl<D: DiskFormat> Cache<D> {
    /// Decodes an item row, or `None` when it has expired at `now` or its value file is
    /// missing or truncated (python's `cache[key]` raises `KeyError` for both, and its
    /// iterators skip the entry).
    fn decode_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        (found, key, raw): ItemRow,
        now: f64,
    ) -> Result<Option<(K, V)>> {
        if found.expire_time.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        let state = self.state();
        let key: K = state.disk.get(key.as_ref(), raw)?;
        match state.disk.fetch::<V>(found.stored(), self.files()) {
            Ok(value) => Ok(Some((key, value))),
            Err(
                e @ (dcache_disk::Error::MissingFile { .. }
                | dcache_disk::Error::SizeMismatch { .. }),
            ) => {
                log::warn!("dcache: skipping an entry whose value file is damaged: {e}");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Live entries with their values in insertion order (or reverse), as [`Cache::items`] and
/// [`Cache::items_rev`] return them. Yields `Result`s: a page read or a decode may fail, and
/// iteration goes on after an error.
///
/// Like [`Keys`], it reads pages of 100 rows and holds no connection between pages; entries
/// added after the iterator was created are not yielded. Each page, values included, is read
/// in one query: an entry removed before its page is read is skipped, one removed after is
/// still yielded. Unlike [`Keys`], expired entries and entries whose value file is missing are
/// skipped (they read as misses).
pub struct Items<K, V, D: DiskFormat> {
    cache: Cache<D>,
    order: Order,
    /// Exclusive bound on the far side (`MAX(rowid) + 1` when ascending).
    bound: Option<i64>,
    /// The last rowid read.
    cursor: i64,
    page: VecDeque<ItemRow>,
    /// The clock reading of the last page: entries expired at that time are skipped.
    now: f64,
    done: bool,
    _item: PhantomData<fn() -> (K, V)>,
}

impl<K, V, D: DiskFormat> std::fmt::Debug for Items<K, V, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items")
            .field("order", &self.order)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Items<K, V, D> {
    fn new(cache: &Cache<D>, order: Order) -> Result<Self> {
        let max: Option<i64> = cache.read_sql(|c| {
            c.prepare_cached("SELECT MAX(rowid) FROM Cache")?
                .query_row([], |r| r.get(0))
        })?;
        let (bound, cursor, done) = match (max, order) {
            (None, _) => (None, 0, true),
            (Some(m), Order::Ascending) => (Some(m.saturating_add(1)), 0, false),
            (Some(m), Order::Descending) => (Some(0), m.saturating_add(1), false),
        };
        Ok(Items {
            cache: cache.clone(),
            order,
            bound,
            cursor,
            page: VecDeque::new(),
            now: 0.0,
            done,
            _item: PhantomData,
        })
    }

    fn fill(&mut self) -> Result<()> {
        let Some(bound) = self.bound else {
            self.done = true;
            return Ok(());
        };
        let (sql, args) = match self.order {
            Order::Ascending => (
                "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw FROM Cache \
                 WHERE ?1 < rowid AND rowid < ?2 ORDER BY rowid ASC LIMIT +?3",
                (self.cursor, bound, PAGE),
            ),
            Order::Descending => (
                "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw FROM Cache \
                 WHERE ?1 < rowid AND rowid < ?2 ORDER BY rowid DESC LIMIT +?3",
                (bound, self.cursor, PAGE),
            ),
        };
        let rows = self.cache.read_with(|c| {
            let mut stmt = c.prepare_cached(sql).map_err(self.cache.sql_err())?;
            let mut rows = stmt.query(args).map_err(self.cache.sql_err())?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(self.cache.sql_err())? {
                out.push(item_row(r)?);
            }
            Ok(out)
        })?;
        self.now = self.cache.now();
        match rows.last() {
            None => self.done = true,
            Some((found, _, _)) => self.cursor = found.rowid,
        }
        self.page.extend(rows);
        Ok(())
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Iterator for Items<K, V, D> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Result<(K, V)>> {
        loop {
            if self.page.is_empty()
                && !self.done
                && let Err(e) = self.fill()
            {
                self.done = true;
                return Some(Err(e));
            }
            let row = self.page.pop_front()?;
            match self.cache.decode_item(row, self.now) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Live entries with their values in SQLite's key order, as [`Cache::sorted_items`] returns
/// them (python's `Deque` iterates this way). Yields `Result`s; iteration goes on after an
/// error.
///
/// Pages of 100 rows by key set, each read in one query, no connection held between pages:
/// entries removed before their page is read are skipped, entries added beyond the current
/// position are yielded. Expired entries and entries whose value file is missing are skipped.
pub struct SortedItems<K, V, D: DiskFormat> {
    cache: Cache<D>,
    reverse: bool,
    last: Option<(SqlValue, bool)>,
    page: VecDeque<ItemRow>,
    now: f64,
    done: bool,
    _item: PhantomData<fn() -> (K, V)>,
}

impl<K, V, D: DiskFormat> std::fmt::Debug for SortedItems<K, V, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedItems")
            .field("reverse", &self.reverse)
            .finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> SortedItems<K, V, D> {
    fn fill(&mut self) -> Result<()> {
        let rows = self.cache.read_with(|c| {
            let err = self.cache.sql_err();
            let mut stmt;
            let mut rows = match (&self.last, self.reverse) {
                (None, false) => {
                    stmt = c
                        .prepare_cached(
                            "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw \
                             FROM Cache ORDER BY key ASC, raw ASC LIMIT +?1",
                        )
                        .map_err(&err)?;
                    stmt.query([PAGE]).map_err(&err)?
                }
                (None, true) => {
                    stmt = c
                        .prepare_cached(
                            "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw \
                             FROM Cache ORDER BY key DESC, raw DESC LIMIT +?1",
                        )
                        .map_err(&err)?;
                    stmt.query([PAGE]).map_err(&err)?
                }
                (Some((key, raw)), false) => {
                    stmt = c
                        .prepare_cached(
                            "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw \
                             FROM Cache WHERE key = ?1 AND raw > ?2 OR key > ?1 \
                             ORDER BY key ASC, raw ASC LIMIT +?3",
                        )
                        .map_err(&err)?;
                    stmt.query((Bind(key.as_ref()), raw, PAGE)).map_err(&err)?
                }
                (Some((key, raw)), true) => {
                    stmt = c
                        .prepare_cached(
                            "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw \
                             FROM Cache WHERE key = ?1 AND raw < ?2 OR key < ?1 \
                             ORDER BY key DESC, raw DESC LIMIT +?3",
                        )
                        .map_err(&err)?;
                    stmt.query((Bind(key.as_ref()), raw, PAGE)).map_err(&err)?
                }
            };
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(&err)? {
                out.push(item_row(r)?);
            }
            Ok(out)
        })?;
        self.now = self.cache.now();
        match rows.last() {
            None => self.done = true,
            Some((_, key, raw)) => self.last = Some((key.clone(), *raw)),
        }
        self.page.extend(rows);
        Ok(())
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Iterator for SortedItems<K, V, D> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Result<(K, V)>> {
        loop {
            if self.page.is_empty()
                && !self.done
                && let Err(e) = self.fill()
            {
                self.done = true;
                return Some(Err(e));
            }
            let row = self.page.pop_front()?;
            match self.cache.decode_item(row, self.now) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<D: DiskFormat> Cache<D> {
    /// The live entries with their values, oldest first (python's `cache.items()` of an
    /// `Index`): one query per page of 100 rows instead of a lookup per key.
    ///
    /// Expired entries and entries whose value file is missing are skipped; see [`Items`].
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`](crate::Error::Sqlite) reading the first row id; later errors, such as a
    /// value of another type than `V` ([`dcache_disk::Error::WrongType`]), come through the
    /// iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set("b", 2)?;
    /// cache.set("a", 1)?;
    /// let items: Vec<(String, i64)> = cache.items()?.collect::<Result<_, _>>()?;
    /// assert_eq!(items, [("b".to_owned(), 2), ("a".to_owned(), 1)]);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn items<K: DeserializeOwned, V: DeserializeOwned>(&self) -> Result<Items<K, V, D>> {
        Items::new(self, Order::Ascending)
    }

    /// The live entries with their values, newest first.
    ///
    /// # Errors
    ///
    /// As [`items`](Self::items).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set("b", 2)?;
    /// cache.set("a", 1)?;
    /// let first: Option<(String, i64)> = cache.items_rev()?.next().transpose()?;
    /// assert_eq!(first, Some(("a".to_owned(), 1)));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn items_rev<K: DeserializeOwned, V: DeserializeOwned>(&self) -> Result<Items<K, V, D>> {
        Items::new(self, Order::Descending)
    }

    /// The live entries with their values in SQLite's order of the `key` column (the order of
    /// [`sorted_keys`](Self::sorted_keys)); python's `Deque` iterates a cache this way.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set(3, "c")?;
    /// cache.set(1, "a")?;
    /// let items: Vec<(i64, String)> = cache.sorted_items(false).collect::<Result<_, _>>()?;
    /// assert_eq!(items, [(1, "a".to_owned()), (3, "c".to_owned())]);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    #[must_use]
    pub fn sorted_items<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        reverse: bool,
    ) -> SortedItems<K, V, D> {
        SortedItems {
            cache: self.clone(),
            reverse,
            last: None,
            page: VecDeque::new(),
            now: 0.0,
            done: false,
            _item: PhantomData,
        }
    }

    /// The key of the `n`-th live entry (from 0) in SQLite's key order, from the end when
    /// `reverse`; `None` when there are `n` live entries or fewer. One query
    /// (`ORDER BY key LIMIT 1 OFFSET n`): SQLite walks the key index, nothing is decoded on the
    /// way. This is how a `Deque` finds its element at an index.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`](crate::Error::Disk) if the key cannot be read as `K`,
    /// [`Error::Sqlite`](crate::Error::Sqlite).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// for k in [30, 10, 20] {
    ///     cache.set(k, "x")?;
    /// }
    /// assert_eq!(cache.nth_sorted_key::<i64>(1, false)?, Some(20));
    /// assert_eq!(cache.nth_sorted_key::<i64>(0, true)?, Some(30));
    /// assert_eq!(cache.nth_sorted_key::<i64>(3, false)?, None);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn nth_sorted_key<K: DeserializeOwned>(&self, n: u64, reverse: bool) -> Result<Option<K>> {
        // `+expire_time` keeps SQLite off the expire-time index: it must walk the key index
        // in order (with that index it sorts the whole table, 20 ms at 100 000 rows).
        let sql = if reverse {
            "SELECT key, raw FROM Cache WHERE +expire_time IS NULL OR +expire_time > ?1 \
             ORDER BY key DESC, raw DESC LIMIT 1 OFFSET +?2"
        } else {
            "SELECT key, raw FROM Cache WHERE +expire_time IS NULL OR +expire_time > ?1 \
             ORDER BY key ASC, raw ASC LIMIT 1 OFFSET +?2"
        };
        let now = self.now();
        let offset = i64::try_from(n).unwrap_or(i64::MAX);
        let row: Option<(SqlValue, bool)> = self.read_sql(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query((now, offset))?;
            rows.next()?
                .map(|r| {
                    Ok((
                        from_rusqlite(r.get(0)?),
                        r.get::<_, Option<bool>>(1)?.unwrap_or(false),
                    ))
                })
                .transpose()
        })?;
        row.map(|(key, raw)| self.state().disk.get(key.as_ref(), raw).map_err(Into::into))
            .transpose()
    }

    /// The `n`-th live entry (from 0) in SQLite's key order with its value, from the end when
    /// `reverse`; `None` when there are `n` live entries or fewer. One query, like
    /// [`nth_sorted_key`](Self::nth_sorted_key).
    ///
    /// # Errors
    ///
    /// [`Error::Disk`](crate::Error::Disk) if the key or value cannot be read as `K` or `V`, or the
    /// value file is missing or damaged; [`Error::Sqlite`](crate::Error::Sqlite).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// for k in [30, 10, 20] {
    ///     cache.set(k, k * 2)?;
    /// }
    /// assert_eq!(cache.nth_sorted_item::<i64, i64>(0, false)?, Some((10, 20)));
    /// assert_eq!(cache.nth_sorted_item::<i64, i64>(1, true)?, Some((20, 40)));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn nth_sorted_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        n: u64,
        reverse: bool,
    ) -> Result<Option<(K, V)>> {
        // `+expire_time`: see `nth_sorted_key`.
        let sql = if reverse {
            "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw FROM Cache \
             WHERE +expire_time IS NULL OR +expire_time > ?1 \
             ORDER BY key DESC, raw DESC LIMIT 1 OFFSET +?2"
        } else {
            "SELECT rowid, expire_time, tag, mode, filename, value, size, key, raw FROM Cache \
             WHERE +expire_time IS NULL OR +expire_time > ?1 \
             ORDER BY key ASC, raw ASC LIMIT 1 OFFSET +?2"
        };
        let now = self.now();
        let offset = i64::try_from(n).unwrap_or(i64::MAX);
        let row = self.read_with(|c| {
            let mut stmt = c.prepare_cached(sql).map_err(self.sql_err())?;
            let mut rows = stmt.query((now, offset)).map_err(self.sql_err())?;
            rows.next()
                .map_err(self.sql_err())?
                .map(item_row)
                .transpose()
        })?;
        let Some((found, key, raw)) = row else {
            return Ok(None);
        };
        let state = self.state();
        let key: K = state.disk.get(key.as_ref(), raw)?;
        let value: V = state.disk.fetch(found.stored(), self.files())?;
        Ok(Some((key, value)))
    }
}
