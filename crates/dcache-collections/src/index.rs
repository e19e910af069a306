//! [`Index`]: python-diskcache's persistent `Index`, an insertion-ordered mapping.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::path::Path;

use dcache_core::{Cache, Disk, DiskFormat, EvictionPolicy, Memoized, PushOptions, QueueKey, Side};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{Error, Result, TxError};

/// A persistent mapping in a directory that remembers insertion order, shared safely by
/// threads and processes (python-diskcache's `Index`, on the same files).
///
/// Entries are the entries of a [`Cache`] opened with the eviction policy `none`. Order is
/// insertion order (the row id); replacing a value keeps the entry's place, as in python's
/// `Index` and Rust's ordered maps. Keys are looked up by their encoded form (see
/// [`Disk`]): `"a"` and `b"a"` differ, `1` and `1.0` are the same key.
///
/// `K` and `V` are the key and value types: anything `serde` can write and read. As in
/// [`HashMap`](std::collections::HashMap), keys are passed borrowed (`&str` for `String`
/// keys) and values by value ([`insert`](Index::insert), [`setdefault`](Index::setdefault),
/// [`push`](Index::push)). Data that cannot be read as `K` or `V` is [`Error::WrongType`].
/// Python's `peekitem`/`popitem` are [`peek_item`](Index::peek_item)/[`pop_item`](Index::pop_item)
/// with a [`Side`]; `index == mapping` is [`eq_map`](Index::eq_map),
/// [`eq_pairs`](Index::eq_pairs) or [`eq_items`](Index::eq_items).
///
/// The handle is cheap to clone (a clone shares the directory), `Send` and `Sync`. Like
/// python's `Index`, operations wait for the write lock as long as it takes instead of
/// failing with a timeout.
///
/// # Examples
///
/// ```
/// use dcache_collections::Index;
/// use dcache_core::Side;
///
/// let dir = tempfile::tempdir()?;
/// let index: Index<String, u32> = Index::open(dir.path())?;
/// index.insert("b", 2)?;
/// index.insert("a", 1)?;
/// index.insert("b", 20)?; // keeps its place
/// assert_eq!(index.get("b")?, Some(20));
///
/// let keys: Vec<String> = index.keys().collect::<Result<_, _>>()?;
/// assert_eq!(keys, ["b", "a"]);
/// assert_eq!(index.pop_item(Side::Back)?, Some(("a".to_owned(), 1)));
/// assert_eq!(index.setdefault("c", 3)?, 3);
/// assert!(index.eq_map(&std::collections::HashMap::from([("b".to_owned(), 20), ("c".to_owned(), 3)]))?);
/// assert_eq!(index.len()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Index<K, V, D: DiskFormat = Disk> {
    cache: Cache<D>,
    _entry: PhantomData<fn() -> (K, V)>,
}

impl<K, V, D: DiskFormat> Clone for Index<K, V, D> {
    fn clone(&self) -> Self {
        Index {
            cache: self.cache.clone(),
            _entry: PhantomData,
        }
    }
}

impl<K, V, D: DiskFormat> std::fmt::Debug for Index<K, V, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("directory", &self.cache.directory())
            .finish()
    }
}

impl<K, V> Index<K, V, Disk> {
    /// Opens (creating if needed) the index in `dir`, with the default [`Disk`]. The cache's
    /// eviction policy is set to `none` and persisted, as python's `Index` does.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] with the errors of [`Cache::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index = dcache_collections::Index::<String, i64>::open(dir.path())?;
    /// index.insert("a", 1)?;
    /// let again = dcache_collections::Index::<String, i64>::open(dir.path())?;
    /// assert_eq!(again.get("a")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open(dir)?;
        Ok(Index::from_cache(cache))
    }

    /// Opens an index in a new temporary directory, removed when the last handle on it drops.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<i64, String>::temp()?;
    /// index.insert(&1, "one".to_owned())?;
    /// assert!(index.contains(&1)?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn temp() -> Result<Self> {
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open_temp()?;
        Ok(Index::from_cache(cache))
    }
}

impl<K: Serialize, V: Serialize> Index<K, V, Disk> {
    /// Opens (creating if needed) the index in `dir` and stores `pairs`, in order, in one
    /// transaction (python's `Index(directory, mapping)`, which updates what the directory
    /// already holds).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`try_extend`](Self::try_extend); on an error while
    /// storing, nothing is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::Index;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let index: Index<String, i64> =
    ///     Index::open_with_items(dir.path(), [("b".to_owned(), 2), ("a".to_owned(), 1)])?;
    /// assert!(index.eq_pairs([("b".to_owned(), 2), ("a".to_owned(), 1)])?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with_items<I, A, B>(dir: impl AsRef<Path>, pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (A, B)>,
        A: Borrow<K>,
        B: Borrow<V>,
    {
        let index = Index::open(dir)?;
        index.try_extend(pairs)?;
        Ok(index)
    }
}

impl<K, V, D: DiskFormat> Index<K, V, D> {
    /// An index on an open cache (python's `Index.fromcache`): every entry of the cache is an
    /// entry of the index. Open the cache with [`EvictionPolicy::None`] unless entries may be
    /// culled. Writes nothing; the index works through [`cache.retrying()`](Cache::retrying).
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::Index;
    /// use dcache_core::{Cache, EvictionPolicy};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::builder().eviction_policy(EvictionPolicy::None).open(dir.path())?;
    /// cache.set("a", 1)?;
    /// let index: Index<String, i64> = Index::from_cache(cache);
    /// assert_eq!(index.get("a")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // takes the cache over, as python's `fromcache`
    pub fn from_cache(cache: Cache<D>) -> Self {
        Index {
            cache: cache.retrying(),
            _entry: PhantomData,
        }
    }

    /// The cache holding the entries (a retrying handle).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert_eq!(index.cache().get::<i64>("a")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache(&self) -> &Cache<D> {
        &self.cache
    }

    /// The index's directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// assert!(index.directory().join("cache.db").exists());
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn directory(&self) -> &Path {
        self.cache.directory()
    }

    /// The number of entries.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the database cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert_eq!(index.len()?, 1);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn len(&self) -> Result<u64> {
        Ok(self.cache.len()?)
    }

    /// Whether the index has no entries.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// assert!(index.is_empty()?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry (in batches of 100, each its own transaction, as python).
    ///
    /// # Errors
    ///
    /// [`Error::Cache`]; entries removed so far stay removed.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// index.clear()?;
    /// assert!(index.is_empty()?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.cache.clear()?;
        Ok(())
    }

    /// Runs `f` in one write transaction: every operation on this index (or its cache) that
    /// `f` makes on this thread joins it; it commits when `f` returns `Ok` and rolls back when
    /// `f` returns `Err` or panics. Readers are never blocked; keep `f` short.
    ///
    /// # Errors
    ///
    /// `f`'s error, or a cache error converted into `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::{Error, Index};
    ///
    /// let index = Index::<String, i64>::temp()?;
    /// index.insert("balance", 10)?;
    /// index.transact(|ix| -> Result<(), Error> {
    ///     let balance = ix.get("balance")?.unwrap_or(0);
    ///     ix.insert("balance", balance - 3)
    /// })?;
    /// assert_eq!(index.get("balance")?, Some(7));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn transact<R, E: From<Error>>(
        &self,
        f: impl FnOnce(&Self) -> Result<R, E>,
    ) -> Result<R, E> {
        self.cache
            .transact(|_| f(self).map_err(TxError::User))
            .map_err(TxError::into_user)
    }

    /// A memoizer storing results in this index (python's `Index.memoize`); see
    /// [`Memoized`]. Its keys are tuples, not `K`s: read them through the cache.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// let double = index.memoize("double");
    /// let v: i64 = double.call(&(21,), || -> dcache_core::Result<i64> { Ok(42) })?;
    /// assert_eq!(v, 42);
    /// assert_eq!(index.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memoize(&self, name: impl Into<String>) -> Memoized<Cache<D>> {
        self.cache.memoize(name)
    }

    /// Whether `key` has an entry.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the key cannot be encoded or the database read.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert!(index.contains("a")?);
    /// assert!(!index.contains("b")?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn contains<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        Ok(self.cache.contains(key)?)
    }

    /// Removes the entry for `key`; returns whether there was one (python's `del index[key]`,
    /// which raises `KeyError` instead of returning false).
    ///
    /// # Errors
    ///
    /// [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert!(index.remove("a")?);
    /// assert!(!index.remove("a")?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__delitem__")]
    pub fn remove<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        Ok(self.cache.delete(key)?)
    }
}

impl<K, V: Serialize, D: DiskFormat> Index<K, V, D> {
    /// Stores `value` under `key` (python's `index[key] = value`). A new key goes last; an
    /// existing one keeps its place. As in [`HashMap::insert`](std::collections::HashMap::insert)
    /// the value is taken by value; the key is borrowed (`&str` for `String` keys).
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the key or value cannot be encoded or the cache fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, Vec<u8>>::temp()?;
    /// index.insert("blob", vec![1u8, 2, 3])?;
    /// assert_eq!(index.get("blob")?, Some(vec![1, 2, 3]));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__setitem__")]
    pub fn insert<Q>(&self, key: &Q, value: V) -> Result<()>
    where
        Q: Serialize + ?Sized,
        K: Borrow<Q>,
    {
        Ok(self.cache.set(key, &value)?)
    }

    /// Stores every pair of `pairs`, in order, in one transaction (python's `update`). On an
    /// error nothing is stored. Takes owned pairs or borrowed ones (iterating a `&HashMap` or
    /// `&BTreeMap` gives `(&K, &V)`).
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::BTreeMap;
    ///
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.try_extend([("b".to_owned(), 2), ("a".to_owned(), 1)])?;
    /// let more = BTreeMap::from([("c".to_owned(), 3)]);
    /// index.try_extend(&more)?;
    /// assert_eq!(index.len()?, 3);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "update")]
    pub fn try_extend<I, A, B>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (A, B)>,
        A: Borrow<K>,
        B: Borrow<V>,
        K: Serialize,
    {
        self.transact(|ix| {
            for (key, value) in pairs {
                ix.cache.set(key.borrow(), value.borrow())?;
            }
            Ok(())
        })
    }

    /// Pushes `value` onto the queue `prefix` of the index (python's `Index.push`): integer
    /// keys without a prefix, `"<prefix>-<15 digits>"` with one; returns the key.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`], e.g. [`dcache_core::Error::NotAQueueKey`] when a key in the queue's
    /// range is not a queue key.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{QueueKey, Side};
    ///
    /// let index = dcache_collections::Index::<String, String>::temp()?;
    /// let key = index.push("job".to_owned(), Some("jobs"), Side::Back)?;
    /// assert_eq!(key, QueueKey::Text("jobs-500000000000000".into()));
    /// assert_eq!(index.get("jobs-500000000000000")?.as_deref(), Some("job"));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn push(&self, value: V, prefix: Option<&str>, side: Side) -> Result<QueueKey> {
        let mut opts = PushOptions::new().side(side);
        if let Some(p) = prefix {
            opts = opts.prefix(p);
        }
        Ok(self.cache.push_with(&value, opts)?)
    }
}

impl<K: Serialize, V: Serialize + DeserializeOwned, D: DiskFormat> Index<K, V, D> {
    /// The value of `key`, or stores and returns `default` when `key` has no entry (python's
    /// `setdefault`), in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if the stored value cannot be read as `V`; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// assert_eq!(index.setdefault("a", 1)?, 1);
    /// assert_eq!(index.setdefault("a", 2)?, 1);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn setdefault<Q: Serialize + ?Sized>(&self, key: &Q, default: V) -> Result<V>
    where
        K: Borrow<Q>,
    {
        self.transact(|ix| {
            if let Some(value) = ix.cache.get::<V>(key)? {
                return Ok(value);
            }
            ix.cache.set(key, &default)?;
            Ok(default)
        })
    }
}

impl<K, V: DeserializeOwned, D: DiskFormat> Index<K, V, D> {
    /// The value of `key`, or `None`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if the value cannot be read as `V`; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert_eq!(index.get("a")?, Some(1));
    /// assert_eq!(index.get("b")?, None);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn get<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        Ok(self.cache.get(key)?)
    }

    /// Removes the entry for `key` and returns its value, or `None` (python's `pop`; use
    /// `pop(key)?.unwrap_or(default)` for python's default).
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if the value cannot be read as `V` (the entry is then kept);
    /// [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert_eq!(index.pop("a")?, Some(1));
    /// assert_eq!(index.pop("a")?.unwrap_or(-1), -1);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn pop<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        Ok(self.cache.pop(key)?)
    }

    /// Removes and returns the entry at `prefix`'s queue `side` (python's `Index.pull`), or
    /// `None` when that queue is empty.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] (the entry is then kept); [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{QueueKey, Side};
    ///
    /// let index = dcache_collections::Index::<i64, String>::temp()?;
    /// index.push("a".to_owned(), None, Side::Back)?;
    /// index.push("b".to_owned(), None, Side::Back)?;
    /// assert_eq!(
    ///     index.pull(None, Side::Front)?,
    ///     Some((QueueKey::Int(500_000_000_000_000), "a".to_owned()))
    /// );
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn pull(&self, prefix: Option<&str>, side: Side) -> Result<Option<(QueueKey, V)>> {
        Ok(self
            .cache
            .pull::<V>(prefix, side)?
            .map(|(key, entry)| (key, entry.value)))
    }

    /// The entry at `prefix`'s queue `side`, left in place (python's `Cache.peek`).
    ///
    /// # Errors
    ///
    /// As [`pull`](Self::pull).
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::Side;
    ///
    /// let index = dcache_collections::Index::<String, String>::temp()?;
    /// index.push("a".to_owned(), Some("q"), Side::Back)?;
    /// assert!(index.peek(Some("q"), Side::Front)?.is_some());
    /// assert_eq!(index.len()?, 1);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn peek(&self, prefix: Option<&str>, side: Side) -> Result<Option<(QueueKey, V)>> {
        Ok(self
            .cache
            .peek::<V>(prefix, side)?
            .map(|(key, entry)| (key, entry.value)))
    }

    /// The values in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("b", 2)?;
    /// index.insert("a", 1)?;
    /// let values: Vec<i64> = index.values().collect::<Result<_, _>>()?;
    /// assert_eq!(values, [2, 1]);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn values(&self) -> Values<V, D> {
        Values {
            inner: Started::new(self.cache.items()),
        }
    }

    /// The values in reverse insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("b", 2)?;
    /// index.insert("a", 1)?;
    /// let values: Vec<i64> = index.values_rev().collect::<Result<_, _>>()?;
    /// assert_eq!(values, [1, 2]);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn values_rev(&self) -> Values<V, D> {
        Values {
            inner: Started::new(self.cache.items_rev()),
        }
    }
}

impl<K: DeserializeOwned, V, D: DiskFormat> Index<K, V, D> {
    /// The keys in insertion order (python's `iter(index)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("b", 2)?;
    /// index.insert("a", 1)?;
    /// let keys: Vec<String> = index.keys().collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["b", "a"]);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn keys(&self) -> Keys<K, D> {
        Keys {
            inner: Started::new(self.cache.keys()),
        }
    }

    /// The keys in reverse insertion order (python's `reversed(index)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("b", 2)?;
    /// index.insert("a", 1)?;
    /// let keys: Vec<String> = index.keys_rev().collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["a", "b"]);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn keys_rev(&self) -> Keys<K, D> {
        Keys {
            inner: Started::new(self.cache.keys_rev()),
        }
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Index<K, V, D> {
    /// The oldest ([`Side::Front`]) or newest ([`Side::Back`]) entry in insertion order, left
    /// in place; `None` when the index is empty. Python's `peekitem(last=True)` is
    /// `peek_item(Side::Back)`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`]; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::Side;
    ///
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// index.insert("b", 2)?;
    /// assert_eq!(index.peek_item(Side::Back)?, Some(("b".to_owned(), 2)));
    /// assert_eq!(index.peek_item(Side::Front)?, Some(("a".to_owned(), 1)));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "peekitem")]
    pub fn peek_item(&self, side: Side) -> Result<Option<(K, V)>> {
        Ok(self
            .cache
            .peek_item::<K, V>(side)?
            .map(|(key, entry)| (key, entry.value)))
    }

    /// Removes and returns the newest ([`Side::Back`], a stack) or oldest ([`Side::Front`], a
    /// queue) entry in insertion order, in one transaction; `None` when the index is empty.
    /// Python's `popitem(last=True)` is `pop_item(Side::Back)`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] (the entry is then kept); [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::Side;
    ///
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// index.insert("b", 2)?;
    /// assert_eq!(index.pop_item(Side::Front)?, Some(("a".to_owned(), 1)));
    /// assert_eq!(index.pop_item(Side::Back)?, Some(("b".to_owned(), 2)));
    /// assert_eq!(index.pop_item(Side::Back)?, None);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "popitem")]
    pub fn pop_item(&self, side: Side) -> Result<Option<(K, V)>> {
        Ok(self
            .cache
            .pop_item::<K, V>(side)?
            .map(|(key, entry)| (key, entry.value)))
    }

    /// The entries in insertion order, keys with values, one query per page of 100.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("b", 2)?;
    /// index.insert("a", 1)?;
    /// let items: Vec<(String, i64)> = index.items().collect::<Result<_, _>>()?;
    /// assert_eq!(items, [("b".to_owned(), 2), ("a".to_owned(), 1)]);
    /// for item in &index {
    ///     let (key, value) = item?;
    ///     assert_eq!(index.get(&key)?, Some(value));
    /// }
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn items(&self) -> Items<K, V, D> {
        Items {
            inner: Started::new(self.cache.items()),
        }
    }

    /// The entries in insertion order: the same as [`items`](Self::items), the way Rust's
    /// maps iterate (python's `iter(index)` gives the keys: see [`keys`](Self::keys)).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// assert_eq!(index.iter().count(), 1);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn iter(&self) -> Items<K, V, D> {
        self.items()
    }

    /// The entries in reverse insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("b", 2)?;
    /// index.insert("a", 1)?;
    /// let first = index.items_rev().next().transpose()?;
    /// assert_eq!(first, Some(("a".to_owned(), 1)));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    #[doc(alias = "__reversed__")]
    pub fn items_rev(&self) -> Items<K, V, D> {
        Items {
            inner: Started::new(self.cache.items_rev()),
        }
    }

    /// Whether both indexes hold equal entries in the same order (python's `==` between two
    /// `Index`es, which is order-sensitive).
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] or [`Error::Cache`] from either index.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::Index;
    ///
    /// let (a, b) = (Index::<String, i64>::temp()?, Index::<String, i64>::temp()?);
    /// a.insert("x", 1)?;
    /// a.insert("y", 2)?;
    /// b.insert("y", 2)?;
    /// b.insert("x", 1)?;
    /// assert!(!a.eq_items(&b)?, "same entries, other order");
    /// b.remove("y")?;
    /// b.insert("y", 2)?;
    /// assert!(a.eq_items(&b)?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn eq_items<D2: DiskFormat>(&self, other: &Index<K, V, D2>) -> Result<bool>
    where
        K: PartialEq,
        V: PartialEq,
    {
        let (mut mine, mut theirs) = (self.items(), other.items());
        loop {
            match (mine.next().transpose()?, theirs.next().transpose()?) {
                (None, None) => return Ok(true),
                (Some(a), Some(b)) if a == b => {}
                _ => return Ok(false),
            }
        }
    }

    /// Whether the entries equal `pairs` in the same order: python's `index == ordered_dict`,
    /// which is order-sensitive. Pass owned pairs or borrowed ones (a `&Vec<(K, V)>` is
    /// `.iter().map(|(k, v)| (k, v))`).
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if an entry cannot be read as `K` and `V`; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// index.insert("b", 2)?;
    /// assert!(index.eq_pairs([("a".to_owned(), 1), ("b".to_owned(), 2)])?);
    /// assert!(!index.eq_pairs([("b".to_owned(), 2), ("a".to_owned(), 1)])?);
    /// assert!(!index.eq_pairs([("a".to_owned(), 1)])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__eq__")]
    pub fn eq_pairs<I, A, B>(&self, pairs: I) -> Result<bool>
    where
        I: IntoIterator<Item = (A, B)>,
        A: Borrow<K>,
        B: Borrow<V>,
        K: PartialEq,
        V: PartialEq,
    {
        let mut mine = self.items();
        for (key, value) in pairs {
            match mine.next().transpose()? {
                Some((k, v)) if k == *key.borrow() && v == *value.borrow() => {}
                _ => return Ok(false),
            }
        }
        Ok(mine.next().transpose()?.is_none())
    }
}

impl<K: Serialize, V: DeserializeOwned + PartialEq, D: DiskFormat> Index<K, V, D> {
    /// Whether the index holds exactly the entries of `map`, in any order: python's
    /// `index == mapping` for a mapping that is not ordered (a `dict`). `map` yields
    /// `(key, value)` pairs with distinct keys: a `&HashMap<K, V>`, a `&BTreeMap<K, V>`, or
    /// owned pairs; a key given twice makes the comparison false.
    ///
    /// One lookup per entry of `map` (each a query), not a read of the whole index.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if a stored value cannot be read as `V`; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// let index = dcache_collections::Index::<String, i64>::temp()?;
    /// index.insert("a", 1)?;
    /// index.insert("b", 2)?;
    /// let map = HashMap::from([("b".to_owned(), 2), ("a".to_owned(), 1)]);
    /// assert!(index.eq_map(&map)?);
    /// assert!(!index.eq_map(&HashMap::from([("a".to_owned(), 1)]))?);
    /// assert!(!index.eq_map([("a".to_owned(), 1), ("b".to_owned(), 3)])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__eq__")]
    pub fn eq_map<I, A, B>(&self, map: I) -> Result<bool>
    where
        I: IntoIterator<Item = (A, B)>,
        A: Borrow<K>,
        B: Borrow<V>,
    {
        let len = self.len()?;
        let mut rows = std::collections::HashSet::new();
        for (key, value) in map {
            // The row id tells a key given twice from two keys.
            let Some(info) = self.cache.entry_info(key.borrow())? else {
                return Ok(false);
            };
            if !rows.insert(info.rowid) || u64::try_from(rows.len()).unwrap_or(u64::MAX) > len {
                return Ok(false);
            }
            match self.cache.get::<V>(key.borrow())? {
                Some(v) if v == *value.borrow() => {}
                _ => return Ok(false),
            }
        }
        Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX) == len)
    }
}

/// An iterator whose first query may fail: the failure is yielded once, then nothing.
enum Started<I> {
    Running(I),
    Failed(Option<dcache_core::Error>),
}

impl<I> Started<I> {
    fn new(started: dcache_core::Result<I>) -> Self {
        match started {
            Ok(iter) => Started::Running(iter),
            Err(e) => Started::Failed(Some(e)),
        }
    }
}

impl<T, I: Iterator<Item = dcache_core::Result<T>>> Iterator for Started<I> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match self {
            Started::Running(iter) => iter.next().map(|r| r.map_err(Error::from)),
            Started::Failed(e) => e.take().map(|e| Err(Error::from(e))),
        }
    }
}

impl<I: std::fmt::Debug> std::fmt::Debug for Started<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Started::Running(iter) => iter.fmt(f),
            Started::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

/// The keys of an [`Index`] in insertion order (or reverse), as [`Index::keys`] returns them.
/// Keys added after the iterator was created are not yielded; removed ones are skipped;
/// expired ones (only python's `Cache` API can give an entry an expiry) are included, as in
/// python. Yields `Result`s; iteration goes on after an error.
#[derive(Debug)]
pub struct Keys<K, D: DiskFormat = Disk> {
    inner: Started<dcache_core::Keys<K, D>>,
}

impl<K: DeserializeOwned, D: DiskFormat> Iterator for Keys<K, D> {
    type Item = Result<K>;

    fn next(&mut self) -> Option<Result<K>> {
        self.inner.next()
    }
}

/// The values of an [`Index`] in insertion order (or reverse), as [`Index::values`] returns
/// them. Reads pages of 100 entries, one query each.
#[derive(Debug)]
pub struct Values<V, D: DiskFormat = Disk> {
    inner: Started<dcache_core::Items<IgnoredAny, V, D>>,
}

impl<V: DeserializeOwned, D: DiskFormat> Iterator for Values<V, D> {
    type Item = Result<V>;

    fn next(&mut self) -> Option<Result<V>> {
        self.inner.next().map(|r| r.map(|(_, value)| value))
    }
}

/// The entries of an [`Index`] in insertion order (or reverse), as [`Index::items`] returns
/// them. Reads pages of 100 entries, one query each, holding nothing between pages: entries
/// added after the iterator was created are not yielded, entries removed before their page is
/// read are skipped.
#[derive(Debug)]
pub struct Items<K, V, D: DiskFormat = Disk> {
    inner: Started<dcache_core::Items<K, V, D>>,
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> Iterator for Items<K, V, D> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Result<(K, V)>> {
        self.inner.next()
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned, D: DiskFormat> IntoIterator for &Index<K, V, D> {
    type Item = Result<(K, V)>;
    type IntoIter = Items<K, V, D>;

    fn into_iter(self) -> Items<K, V, D> {
        self.items()
    }
}
