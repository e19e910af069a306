//! Iteration by key-set pages: no connection or read transaction is held between pages, so
//! memory stays flat for any cache size and checkpoints are never starved.
//!
//! The four iterators share one [`Pager`]: it reads pages of [`PAGE`] rows in insertion
//! (`rowid`) or key (`key, raw`) order, with or without the value columns, and hands out each
//! row's columns as read. Decoding happens per row, so a row another program damaged (an
//! impossible mode, a NULL key, text that is not UTF-8) is an error for that row alone and
//! iteration goes on past it.

use std::collections::VecDeque;
use std::marker::PhantomData;

use dcache_disk::DiskFormat;
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::error::Result;
use crate::sql::{Cursor, PageRow};
use crate::sqlval::column_err;

/// Rows fetched per page.
pub(crate) const PAGE: i64 = 100;

/// The direction of a sorted listing ([`Cache::sorted_keys`], [`Cache::nth_sorted_key`], …).
///
/// Python's `reverse=False` is [`Order::Ascending`], `reverse=True` [`Order::Descending`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Order {
    /// Smallest first.
    Ascending,
    /// Largest first (python's `reverse=True`).
    Descending,
}
/// Reads pages of rows in one order, holding nothing between pages.
struct Pager<D: DiskFormat> {
    cache: Cache<D>,
    order: Order,
    with_values: bool,
    cursor: Cursor,
    page: VecDeque<PageRow>,
    /// The clock reading of the last page: entries expired at that time are skipped.
    now: f64,
    done: bool,
}

impl<D: DiskFormat> Pager<D> {
    /// A pager in rowid order over the rows that exist now (rows inserted later, with larger
    /// rowids, are not read: python's behaviour).
    fn by_rowid(cache: &Cache<D>, order: Order, with_values: bool) -> Result<Self> {
        let bounds = cache.read_with(|db| db.rowid_bounds())?;
        let (cursor, done) = match (bounds, order) {
            ((Some(min), Some(max)), Order::Ascending) => (
                Cursor::Rowid {
                    next: Some(min),
                    far: max,
                },
                false,
            ),
            ((Some(min), Some(max)), Order::Descending) => (
                Cursor::Rowid {
                    next: Some(max),
                    far: min,
                },
                false,
            ),
            _ => (Cursor::Rowid { next: None, far: 0 }, true),
        };
        Ok(Self::new(cache, order, with_values, cursor, done))
    }

    /// A pager in key order.
    fn by_key(cache: &Cache<D>, order: Order, with_values: bool) -> Self {
        Self::new(cache, order, with_values, Cursor::Key { last: None }, false)
    }

    fn new(cache: &Cache<D>, order: Order, with_values: bool, cursor: Cursor, done: bool) -> Self {
        Pager {
            cache: cache.clone(),
            order,
            with_values,
            cursor,
            page: VecDeque::new(),
            now: 0.0,
            done,
        }
    }

    /// The next row, reading a page when the last one is used up. `Some(Err)` for a page that
    /// cannot be read ends the iteration (there is no position to go on from).
    fn next_row(&mut self) -> Option<Result<PageRow>> {
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fill()
        {
            self.done = true;
            return Some(Err(e));
        }
        self.page.pop_front().map(Ok)
    }

    fn fill(&mut self) -> Result<()> {
        let rows = self
            .cache
            .read_with(|db| db.page(self.with_values, self.order, &self.cursor))?;
        self.now = self.cache.now();
        let Some(last) = rows.last() else {
            self.done = true;
            return Ok(());
        };
        match &mut self.cursor {
            Cursor::Rowid { next, .. } => {
                *next = match self.order {
                    Order::Ascending => last.rowid.checked_add(1),
                    Order::Descending => last.rowid.checked_sub(1),
                };
            }
            Cursor::Key { last: position } => {
                // As stored, a key that cannot be decoded included: the next page starts
                // right after it.
                *position = Some((last.key_as_stored.clone(), last.raw_as_stored.clone()));
            }
        }
        self.page.extend(rows.into_iter().map(|r| r.row));
        Ok(())
    }
}

impl<D: DiskFormat> Pager<D> {
    /// The next key, decoded as `K`.
    fn next_key<K: DeserializeOwned>(&mut self) -> Option<Result<K>> {
        let row = match self.next_row()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        Some(row.key.and_then(|(key, raw)| {
            self.cache
                .state()
                .disk
                .get(key.as_ref(), raw)
                .map_err(Into::into)
        }))
    }

    /// The next live item, decoded as `(K, V)`; expired entries and entries whose value file
    /// is missing or truncated are skipped (they read as misses).
    fn next_item<K: DeserializeOwned, V: DeserializeOwned>(&mut self) -> Option<Result<(K, V)>> {
        loop {
            let row = match self.next_row()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            };
            match self.decode_item(row) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Decodes an item row, or `None` when it has expired or its value file is missing or
    /// truncated (python's `cache[key]` raises `KeyError` for both, and its iterators skip the
    /// entry).
    fn decode_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        row: PageRow,
    ) -> Result<Option<(K, V)>> {
        let found = row
            .found
            .unwrap_or_else(|| Err(column_err("an items page without value columns")))?;
        if found.expire_time.is_some_and(|t| t <= self.now) {
            return Ok(None);
        }
        let (key, raw) = row.key?;
        let state = self.cache.state();
        let key: K = state.disk.get(key.as_ref(), raw)?;
        match state.disk.fetch::<V>(found.stored(), self.cache.files()) {
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

impl<D: DiskFormat> std::fmt::Debug for Pager<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("order", &self.order)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// Keys in insertion order (or reverse), as [`Cache::keys`] and [`Cache::keys_rev`] return
/// them. Yields `Result`s: a page read or a key decode may fail, and iteration goes on past a
/// key that cannot be decoded.
///
/// Entries added after the iterator was created are not yielded (python's behaviour); entries
/// removed meanwhile are skipped; expired entries are included.
pub struct Keys<K, D: DiskFormat> {
    pager: Pager<D>,
    _key: PhantomData<fn() -> K>,
}

impl<K: DeserializeOwned, D: DiskFormat> Iterator for Keys<K, D> {
    type Item = Result<K>;

    fn next(&mut self) -> Option<Result<K>> {
        self.pager.next_key()
    }
}

/// Keys in SQLite's key order, as [`Cache::sorted_keys`] returns them; iteration goes on past
/// a key that cannot be decoded.
pub struct SortedKeys<K, D: DiskFormat> {
    pager: Pager<D>,
    _key: PhantomData<fn() -> K>,
}

impl<K: DeserializeOwned, D: DiskFormat> Iterator for SortedKeys<K, D> {
    type Item = Result<K>;

    fn next(&mut self) -> Option<Result<K>> {
        self.pager.next_key()
    }
}

/// Live entries with their values in insertion order (or reverse), as [`Cache::items`] and
/// [`Cache::items_rev`] return them. Yields `Result`s: a page read or a decode may fail, and
/// iteration goes on after an error for one entry.
///
/// Like [`Keys`], it reads pages of 100 rows and holds no connection between pages; entries
/// added after the iterator was created are not yielded. Each page, values included, is read
/// in one query: an entry removed before its page is read is skipped, one removed after is
/// still yielded. Unlike [`Keys`], expired entries and entries whose value file is missing are
/// skipped (they read as misses).
pub struct Items<K, V, D: DiskFormat> {
    pager: Pager<D>,
    _item: PhantomData<fn() -> (K, V)>,
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Iterator for Items<K, V, D> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Result<(K, V)>> {
        self.pager.next_item()
    }
}

/// Live entries with their values in SQLite's key order, as [`Cache::sorted_items`] returns
/// them (python's `Deque` iterates this way). Yields `Result`s; iteration goes on after an
/// error for one entry.
///
/// Pages of 100 rows by key set, each read in one query, no connection held between pages:
/// entries removed before their page is read are skipped, entries added beyond the current
/// position are yielded. Expired entries and entries whose value file is missing are skipped.
pub struct SortedItems<K, V, D: DiskFormat> {
    pager: Pager<D>,
    _item: PhantomData<fn() -> (K, V)>,
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Iterator for SortedItems<K, V, D> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Result<(K, V)>> {
        self.pager.next_item()
    }
}

/// `Debug` for the iterators without asking it of the key and value types.
macro_rules! debug_via_pager {
    ($($name:ident<$($param:ident),+>),+) => {$(
        impl<$($param,)+ D: DiskFormat> std::fmt::Debug for $name<$($param,)+ D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("pager", &self.pager).finish()
            }
        }
    )+};
}

debug_via_pager!(Keys<K>, SortedKeys<K>, Items<K, V>, SortedItems<K, V>);

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
        Ok(Keys {
            pager: Pager::by_rowid(self, Order::Ascending, false)?,
            _key: PhantomData,
        })
    }

    /// The keys newest first (python's `reversed(cache)`).
    ///
    /// # Errors
    ///
    /// As [`keys`](Self::keys).
    #[doc(alias = "__reversed__")]
    pub fn keys_rev<K: DeserializeOwned>(&self) -> Result<Keys<K, D>> {
        Ok(Keys {
            pager: Pager::by_rowid(self, Order::Descending, false)?,
            _key: PhantomData,
        })
    }

    /// The keys in SQLite's order of the `key` column (python's `iterkeys(reverse)`):
    /// numbers, then text (by bytes), then blobs (pickled keys among them).
    #[must_use]
    #[doc(alias = "iterkeys")]
    pub fn sorted_keys<K: DeserializeOwned>(&self, order: Order) -> SortedKeys<K, D> {
        SortedKeys {
            pager: Pager::by_key(self, order, false),
            _key: PhantomData,
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
        Ok(Items {
            pager: Pager::by_rowid(self, Order::Ascending, true)?,
            _item: PhantomData,
        })
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
        Ok(Items {
            pager: Pager::by_rowid(self, Order::Descending, true)?,
            _item: PhantomData,
        })
    }

    /// The live entries with their values in SQLite's order of the `key` column (the order of
    /// [`sorted_keys`](Self::sorted_keys)); python's `Deque` iterates a cache this way.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::Order;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set(3, "c")?;
    /// cache.set(1, "a")?;
    /// let items: Vec<(i64, String)> =
    ///     cache.sorted_items(Order::Ascending).collect::<Result<_, _>>()?;
    /// assert_eq!(items, [(1, "a".to_owned()), (3, "c".to_owned())]);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    #[must_use]
    pub fn sorted_items<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        order: Order,
    ) -> SortedItems<K, V, D> {
        SortedItems {
            pager: Pager::by_key(self, order, true),
            _item: PhantomData,
        }
    }

    /// The key of the `n`-th live entry (from 0) in SQLite's key order, counted from the
    /// largest with [`Order::Descending`]; `None` when there are `n` live entries or fewer. One query
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
    /// use dcache_core::Order;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// for k in [30, 10, 20] {
    ///     cache.set(k, "x")?;
    /// }
    /// assert_eq!(cache.nth_sorted_key::<i64>(1, Order::Ascending)?, Some(20));
    /// assert_eq!(cache.nth_sorted_key::<i64>(0, Order::Descending)?, Some(30));
    /// assert_eq!(cache.nth_sorted_key::<i64>(3, Order::Ascending)?, None);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn nth_sorted_key<K: DeserializeOwned>(&self, n: u64, order: Order) -> Result<Option<K>> {
        let now = self.now();
        let row = self.read_with(|db| db.nth_sorted_key(now, n, order == Order::Descending))?;
        row.map(|(key, raw)| self.state().disk.get(key.as_ref(), raw).map_err(Into::into))
            .transpose()
    }

    /// The `n`-th live entry (from 0) in SQLite's key order with its value, counted from the
    /// largest with [`Order::Descending`]; `None` when there are `n` live entries or fewer. One query, like
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
    /// use dcache_core::Order;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// for k in [30, 10, 20] {
    ///     cache.set(k, k * 2)?;
    /// }
    /// assert_eq!(cache.nth_sorted_item::<i64, i64>(0, Order::Ascending)?, Some((10, 20)));
    /// assert_eq!(cache.nth_sorted_item::<i64, i64>(1, Order::Descending)?, Some((20, 40)));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn nth_sorted_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        n: u64,
        order: Order,
    ) -> Result<Option<(K, V)>> {
        let now = self.now();
        let row = self.read_with(|db| db.nth_sorted_item(now, n, order == Order::Descending))?;
        let Some((found, key, raw)) = row else {
            return Ok(None);
        };
        let state = self.state();
        let key: K = state.disk.get(key.as_ref(), raw)?;
        let value: V = state.disk.fetch(found.stored(), self.files())?;
        Ok(Some((key, value)))
    }
}
