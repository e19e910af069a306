//! [`Deque`]: python-diskcache's persistent `Deque`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use dcache_core::{Cache, Disk, DiskFormat, EvictionPolicy, Order, PushOptions, Side, SortedItems};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{Error, Result, TxError};

/// A persistent double-ended queue in a directory, shared safely by threads and processes
/// (python-diskcache's `Deque`, on the same files).
///
/// Elements are the entries of a [`Cache`] opened with the eviction policy `none`: each is an
/// entry of the cache's unprefixed queue, with python's integer keys (`push_back` gives
/// 500000000000000, 500000000000001, …, `push_front` 499999999999999, …). Order is the order
/// of the keys, as in python, so python's `Deque` on the same directory sees the same
/// sequence. Every operation but `clear` (batches of 100, as python's) is atomic, one
/// transaction, including `extend`, `rotate`, `reverse`, `remove` and the index operations,
/// which python does step by step.
///
/// `T` is the element type: anything `serde` can write and read (python sees `str`, `bytes`,
/// `int` and `float` natively, other types as pickles). A stored element that cannot be read as
/// `T` is [`Error::WrongType`]; nothing is removed in that case. The disk `D` must read the
/// queue's raw integer keys: [`Disk`] and `MsgpackDisk` do; `JsonDisk`, which encodes every key
/// as compressed JSON, only supports the operations at the ends (as python's `JSONDisk`).
///
/// The names are [`VecDeque`](std::collections::VecDeque)'s: python's `append`, `appendleft`,
/// `pop`, `popleft`, `peek`, `peekleft` and `extendleft` are [`push_back`](Self::push_back),
/// [`push_front`](Self::push_front), [`pop_back`](Self::pop_back),
/// [`pop_front`](Self::pop_front), [`back`](Self::back), [`front`](Self::front) and
/// [`extend_front`](Self::extend_front) (each has its python name as a search alias). As in
/// `VecDeque`, an empty deque or an index past the end is `Ok(None)`, not an error.
///
/// The handle is cheap to clone (a clone shares the directory and starts with the same
/// `maxlen`, which it can then change on its own), `Send` and `Sync`. Like python's `Deque`,
/// operations wait for the write lock as long as it takes (python passes `retry=True` to every
/// call) instead of failing with a timeout.
///
/// # Examples
///
/// ```
/// use dcache_collections::Deque;
///
/// let dir = tempfile::tempdir()?;
/// let deque: Deque<String> = Deque::open(dir.path())?;
/// deque.push_back("b")?;
/// deque.push_back("c")?;
/// deque.push_front("a")?;
/// assert!(deque.eq_items(["a", "b", "c"].map(String::from))?);
/// assert_eq!(deque.get(-1)?.as_deref(), Some("c"));
///
/// deque.rotate(1)?;
/// assert_eq!(deque.pop_front()?.as_deref(), Some("c"));
///
/// // A bounded deque: `maxlen` belongs to the handle (python does not store it either).
/// let last_two = deque.clone().with_maxlen(Some(2))?;
/// last_two.push_back("z")?;
/// assert!(deque.eq_items(["b", "z"].map(String::from))?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Deque<T, D: DiskFormat = Disk> {
    cache: Cache<D>,
    /// This handle's `maxlen`: set through `&self` like every other operation.
    maxlen: Mutex<Option<u64>>,
    _element: PhantomData<fn() -> T>,
}

impl<T, D: DiskFormat> Clone for Deque<T, D> {
    fn clone(&self) -> Self {
        Deque {
            cache: self.cache.clone(),
            maxlen: Mutex::new(self.maxlen()),
            _element: PhantomData,
        }
    }
}

impl<T, D: DiskFormat> std::fmt::Debug for Deque<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deque")
            .field("directory", &self.cache.directory())
            .field("maxlen", &self.maxlen())
            .finish()
    }
}

impl<T> Deque<T, Disk> {
    /// Opens (creating if needed) the deque in `dir`, with the default [`Disk`]. The cache's
    /// eviction policy is set to `none` and persisted, as python's `Deque` does, so elements
    /// are never culled.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] with the errors of [`Cache::open`]: an unusable directory, a
    /// `cache.db` that is not a cache, a timeout while other processes hold the database.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let deque = dcache_collections::Deque::<i64>::open(dir.path())?;
    /// deque.push_back(&1)?;
    /// let again = dcache_collections::Deque::<i64>::open(dir.path())?;
    /// assert_eq!(again.back()?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open(dir)?;
        Ok(Deque::from_cache(cache))
    }

    /// Opens a deque in a new temporary directory, removed when the last handle on it drops
    /// (python keeps its temporary directories).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<String>::temp()?;
    /// deque.extend(["a", "b"].map(String::from))?;
    /// assert_eq!(deque.len()?, 2);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn temp() -> Result<Self> {
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open_temp()?;
        Ok(Deque::from_cache(cache))
    }
}

impl<T: Serialize> Deque<T, Disk> {
    /// Opens (creating if needed) the deque in `dir` and adds `values` at the back, in one
    /// transaction (python's `Deque(iterable, directory)`, which also appends to what the
    /// directory already holds).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`extend`](Self::extend); on an error while adding,
    /// nothing is added.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let deque = dcache_collections::Deque::open_with_items(dir.path(), [1, 2, 3])?;
    /// assert!(deque.eq_items([1, 2, 3])?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with_items<I>(dir: impl AsRef<Path>, values: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let deque = Deque::open(dir)?;
        deque.extend(values)?;
        Ok(deque)
    }
}

impl<T, D: DiskFormat> Deque<T, D> {
    /// A deque on an open cache (python's `Deque.fromcache`), e.g. one with another disk.
    /// Every entry of the cache is an element: use a cache of its own, opened with
    /// [`EvictionPolicy::None`] unless elements may be culled. Writes nothing.
    ///
    /// The deque works through [`cache.retrying()`](Cache::retrying): its operations never
    /// time out waiting for the write lock, as python's.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::Deque;
    /// use dcache_core::{Cache, EvictionPolicy, MsgpackDisk};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::builder()
    ///     .disk(MsgpackDisk::new())
    ///     .eviction_policy(EvictionPolicy::None)
    ///     .open(dir.path())?;
    /// let deque: Deque<(u8, String), MsgpackDisk> = Deque::from_cache(cache);
    /// deque.push_back(&(1, "one".to_owned()))?;
    /// assert_eq!(deque.pop_back()?, Some((1, "one".to_owned())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // takes the cache over, as python's `fromcache`
    pub fn from_cache(cache: Cache<D>) -> Self {
        Deque {
            cache: cache.retrying(),
            maxlen: Mutex::new(None),
            _element: PhantomData,
        }
    }

    /// The cache holding the elements (a retrying handle).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.push_back(&1)?;
    /// assert_eq!(deque.cache().len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache(&self) -> &Cache<D> {
        &self.cache
    }

    /// The deque's directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// assert!(deque.directory().join("cache.db").exists());
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn directory(&self) -> &Path {
        self.cache.directory()
    }

    /// The most elements this handle keeps (`None`, the default: unbounded). It is not
    /// stored: each handle, in Rust or python, has its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// assert_eq!(deque.maxlen(), None);
    /// assert_eq!(deque.with_maxlen(Some(5))?.maxlen(), Some(5));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn maxlen(&self) -> Option<u64> {
        *self.maxlen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets this handle's `maxlen` and removes elements from the front while the deque is
    /// longer (python's `maxlen` setter), in one transaction. From then on, adding elements
    /// through this handle removes as many from the other end as needed to stay within it.
    /// Takes `&self` like every other operation; clones made earlier keep their own `maxlen`.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the cache fails; [`Error::WrongType`] if a key of the cache is not
    /// an element's integer key (the cache is not a deque's).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend(0..5)?;
    /// deque.set_maxlen(Some(3))?;
    /// assert!(deque.eq_items([2, 3, 4])?);
    /// deque.push_back(&5)?;
    /// assert!(deque.eq_items([3, 4, 5])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn set_maxlen(&self, maxlen: Option<u64>) -> Result<()> {
        *self.maxlen.lock().unwrap_or_else(PoisonError::into_inner) = maxlen;
        self.cache
            .transact(|_| self.trim(Side::Front))
            .map_err(TxError::into_user)
    }

    /// This deque with `maxlen` set (see [`set_maxlen`](Self::set_maxlen)): a builder-style
    /// form for `Deque::open(dir)?.with_maxlen(Some(100))?`.
    ///
    /// # Errors
    ///
    /// As [`set_maxlen`](Self::set_maxlen).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?.with_maxlen(Some(2))?;
    /// deque.extend([1, 2, 3])?;
    /// assert!(deque.eq_items([2, 3])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn with_maxlen(self, maxlen: Option<u64>) -> Result<Self> {
        self.set_maxlen(maxlen)?;
        Ok(self)
    }

    /// Removes elements at `side` while the deque is longer than `maxlen`. Runs inside a
    /// transaction of the caller.
    fn trim(&self, side: Side) -> Result<(), TxError<Error>> {
        let Some(max) = self.maxlen() else {
            return Ok(());
        };
        for _ in 0..self.cache.len()?.saturating_sub(max) {
            let Some(key) = self
                .cache
                .nth_sorted_key::<i64>(0, order_from(side))
                .map_err(|e| TxError::User(Error::from(e)))?
            else {
                break; // only expired rows are left: they are not elements
            };
            if !self.cache.delete(key)? {
                break;
            }
        }
        Ok(())
    }

    /// The number of elements (python's `len`: every entry of the cache).
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the database cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// assert_eq!(deque.len()?, 2);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn len(&self) -> Result<u64> {
        Ok(self.cache.len()?)
    }

    /// Whether the deque has no elements.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// assert!(deque.is_empty()?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every element (in batches of 100, each its own transaction, as python; inside
    /// [`transact`](Self::transact) all at once).
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the cache fails; elements removed so far stay removed.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend(0..300)?;
    /// deque.clear()?;
    /// assert!(deque.is_empty()?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.cache.clear()?;
        Ok(())
    }

    /// Rotates the deque `steps` places to the right: the last `steps` elements move to the
    /// front; a negative `steps` rotates left. `steps` is taken modulo the length.
    ///
    /// One transaction of a few statements whatever `steps` is: the moved elements get new
    /// keys in place ([`Cache::rotate_queue`]); their values are not read or rewritten. Python
    /// pops and pushes one element per step, each in its own transaction; the resulting keys
    /// are the same.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`]: a failing cache, or [`dcache_core::Error::QueueExhausted`] after about
    /// 5 × 10¹⁴ rotations in one direction.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend(0..5)?;
    /// deque.rotate(2)?;
    /// assert!(deque.eq_items([3, 4, 0, 1, 2])?);
    /// deque.rotate(-3)?;
    /// assert!(deque.eq_items([1, 2, 3, 4, 0])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn rotate(&self, steps: i64) -> Result<()> {
        Ok(self.cache.rotate_queue(steps)?)
    }

    /// Reverses the deque in place, in one transaction: elements swap keys
    /// ([`Cache::reverse_queue`]), values are not read or rewritten. (Python copies the deque
    /// to a temporary one and back.)
    ///
    /// # Errors
    ///
    /// As [`rotate`](Self::rotate).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 3])?;
    /// deque.reverse()?;
    /// assert!(deque.eq_items([3, 2, 1])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn reverse(&self) -> Result<()> {
        Ok(self.cache.reverse_queue()?)
    }

    /// Runs `f` in one write transaction: every operation on this deque (or its cache) that
    /// `f` makes on this thread joins it. It commits when `f` returns `Ok` and rolls back when
    /// `f` returns `Err` or panics; other threads and processes see all of it or nothing.
    /// Readers are never blocked; keep `f` short, it holds the write lock.
    ///
    /// # Errors
    ///
    /// `f`'s error, or a cache error converted into `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::{Deque, Error};
    ///
    /// let deque = Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 3])?;
    /// // Move the front element to the back, atomically.
    /// deque.transact(|d| -> Result<(), Error> {
    ///     if let Some(first) = d.pop_front()? {
    ///         d.push_back(&first)?;
    ///     }
    ///     Ok(())
    /// })?;
    /// assert!(deque.eq_items([2, 3, 1])?);
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

    /// Resolves `index` (negative from the back) to an offset from one end.
    fn offset(index: i64) -> (u64, Order) {
        if index >= 0 {
            (index.unsigned_abs(), Order::Ascending)
        } else {
            (index.unsigned_abs() - 1, Order::Descending)
        }
    }

    fn out_of_range(&self, index: i64) -> Error {
        match self.len() {
            Ok(len) => Error::IndexOutOfRange { index, len },
            Err(e) => e,
        }
    }
}

impl<T: Serialize, D: DiskFormat> Deque<T, D> {
    /// Adds `value` at the back (python's `append`). With a `maxlen`, removes elements from
    /// the front while the deque is longer, in the same transaction.
    ///
    /// `value` is the element or a borrowed form of it: `&i64` for `Deque<i64>`, `&str` for
    /// `Deque<String>`.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if the value cannot be encoded or the cache fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<String>::temp()?;
    /// deque.push_back("x")?;
    /// assert_eq!(deque.back()?.as_deref(), Some("x"));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "append")]
    pub fn push_back<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        self.push(value, Side::Back)
    }

    /// Adds `value` at the front (python's `appendleft`). With a `maxlen`, removes elements
    /// from the back while the deque is longer.
    ///
    /// # Errors
    ///
    /// As [`push_back`](Self::push_back).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.push_back(&2)?;
    /// deque.push_front(&1)?;
    /// assert!(deque.eq_items([1, 2])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "appendleft")]
    pub fn push_front<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        self.push(value, Side::Front)
    }

    fn push<Q: Serialize + ?Sized>(&self, value: &Q, side: Side) -> Result<()> {
        self.cache
            .transact(|c| {
                c.push_with(value, PushOptions::new().side(side))?;
                self.trim(opposite(side))
            })
            .map_err(TxError::into_user)
    }

    /// Adds every element of `values` at the back, in order, in one transaction (python's
    /// `extend` uses one per element). With a `maxlen`, the front is trimmed once at the end,
    /// which leaves the deque as element-by-element trimming would.
    ///
    /// # Errors
    ///
    /// As [`push_back`](Self::push_back); on an error nothing is added.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// deque.extend(&vec![3, 4])?;
    /// assert!(deque.eq_items([1, 2, 3, 4])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn extend<I>(&self, values: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        self.push_all(values, Side::Back)
    }

    /// Adds every element of `values` at the front, one after the other, so they end up in
    /// reverse order (python's `extendleft`), in one transaction.
    ///
    /// # Errors
    ///
    /// As [`extend`](Self::extend).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend_front([1, 2, 3])?;
    /// assert!(deque.eq_items([3, 2, 1])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "extendleft")]
    pub fn extend_front<I>(&self, values: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        self.push_all(values, Side::Front)
    }

    fn push_all<I>(&self, values: I, side: Side) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        self.cache
            .transact(|c| {
                for value in values {
                    c.push_with(value.borrow(), PushOptions::new().side(side))?;
                }
                self.trim(opposite(side))
            })
            .map_err(TxError::into_user)
    }

    /// Replaces the element at `index` (negative counts from the back: -1 is the last), in
    /// one transaction (python's `deque[index] = value`).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`] (replacing needs an element there), and [`Error::Cache`] if
    /// the cache fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 3])?;
    /// deque.set(-1, &30)?;
    /// deque.set(0, &10)?;
    /// assert!(deque.eq_items([10, 2, 30])?);
    /// assert!(deque.set(3, &0).is_err());
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn set<Q: Serialize + ?Sized>(&self, index: i64, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        let (n, order) = Self::offset(index);
        self.transact(|d| {
            let key = d
                .cache
                .nth_sorted_key::<i64>(n, order)?
                .ok_or_else(|| d.out_of_range(index))?;
            d.cache.set(key, value)?;
            Ok(())
        })
    }
}

impl<T: DeserializeOwned, D: DiskFormat> Deque<T, D> {
    /// Removes and returns the last element (python's `pop`); `None` when the deque is empty.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if the element cannot be read as `T` (it is then kept);
    /// [`Error::Cache`] if the cache fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// assert_eq!(deque.pop_back()?, Some(2));
    /// assert_eq!(deque.pop_back()?, Some(1));
    /// assert_eq!(deque.pop_back()?, None);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "pop")]
    pub fn pop_back(&self) -> Result<Option<T>> {
        self.end(Side::Back, true)
    }

    /// Removes and returns the first element (python's `popleft`); `None` when the deque is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`pop_back`](Self::pop_back).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// assert_eq!(deque.pop_front()?, Some(1));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "popleft")]
    pub fn pop_front(&self) -> Result<Option<T>> {
        self.end(Side::Front, true)
    }

    /// The last element, left in place (python's `peek`); `None` when the deque is empty.
    ///
    /// # Errors
    ///
    /// As [`pop_back`](Self::pop_back).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// assert_eq!(deque.back()?, None);
    /// deque.extend([1, 2])?;
    /// assert_eq!(deque.back()?, Some(2));
    /// assert_eq!(deque.len()?, 2);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "peek")]
    pub fn back(&self) -> Result<Option<T>> {
        self.end(Side::Back, false)
    }

    /// The first element, left in place (python's `peekleft`); `None` when the deque is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`pop_back`](Self::pop_back).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// assert_eq!(deque.front()?, Some(1));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "peekleft")]
    pub fn front(&self) -> Result<Option<T>> {
        self.end(Side::Front, false)
    }

    fn end(&self, side: Side, remove: bool) -> Result<Option<T>> {
        let found = if remove {
            self.cache.pull::<T>(None, side)?
        } else {
            self.cache.peek::<T>(None, side)?
        };
        Ok(found.map(|(_, entry)| entry.value))
    }

    /// The element at `index`; negative indexes count from the back (-1 is the last). `None`
    /// when the index is outside `-len..len`, like [`VecDeque::get`](std::collections::VecDeque::get)
    /// (python raises `IndexError`). One query whatever the index (SQLite skips `index` keys
    /// of its key index).
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`]; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<String>::temp()?;
    /// deque.extend(["a", "b", "c"].map(String::from))?;
    /// assert_eq!(deque.get(1)?.as_deref(), Some("b"));
    /// assert_eq!(deque.get(-3)?.as_deref(), Some("a"));
    /// assert_eq!(deque.get(3)?, None);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__getitem__")]
    pub fn get(&self, index: i64) -> Result<Option<T>> {
        let (n, order) = Self::offset(index);
        Ok(self
            .cache
            .nth_sorted_item::<IgnoredAny, T>(n, order)?
            .map(|(_, value)| value))
    }

    /// Removes and returns the element at `index` (python's `del deque[index]`), in one
    /// transaction; `None` (nothing removed) when the index is outside `-len..len`, like
    /// [`VecDeque::remove`](std::collections::VecDeque::remove).
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if the element cannot be read as `T` (it is then kept);
    /// [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 3, 4])?;
    /// assert_eq!(deque.remove_at(1)?, Some(2));
    /// assert_eq!(deque.remove_at(-1)?, Some(4));
    /// assert_eq!(deque.remove_at(2)?, None);
    /// assert!(deque.eq_items([1, 3])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__delitem__")]
    pub fn remove_at(&self, index: i64) -> Result<Option<T>> {
        let (n, order) = Self::offset(index);
        self.transact(|d| {
            let Some((key, value)) = d.cache.nth_sorted_item::<i64, T>(n, order)? else {
                return Ok(None);
            };
            d.cache.delete(key)?;
            Ok(Some(value))
        })
    }

    /// The elements from front to back. Reads pages of 100 elements, one query each, holding
    /// nothing between pages: elements removed meanwhile (before their page is read) are
    /// skipped, and iteration never fails because of concurrent changes.
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 3])?;
    /// let all: Vec<i64> = deque.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(all, [1, 2, 3]);
    /// for element in &deque {
    ///     assert!(element? > 0);
    /// }
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    pub fn iter(&self) -> Iter<T, D> {
        Iter {
            inner: self.cache.sorted_items(Order::Ascending),
        }
    }

    /// The elements from back to front (python's `reversed(deque)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 3])?;
    /// let back: Vec<i64> = deque.iter_rev().collect::<Result<_, _>>()?;
    /// assert_eq!(back, [3, 2, 1]);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[must_use]
    #[doc(alias = "__reversed__")]
    pub fn iter_rev(&self) -> Iter<T, D> {
        Iter {
            inner: self.cache.sorted_items(Order::Descending),
        }
    }

    /// Whether an element equals `value`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if an element cannot be read as `T`; [`Error::Cache`].
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<String>::temp()?;
    /// deque.push_back("a")?;
    /// assert!(deque.contains("a")?);
    /// assert!(!deque.contains("b")?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn contains<Q: ?Sized>(&self, value: &Q) -> Result<bool>
    where
        T: PartialEq<Q>,
    {
        for element in self {
            if element? == *value {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The number of elements equal to `value`.
    ///
    /// # Errors
    ///
    /// As [`contains`](Self::contains).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 1])?;
    /// assert_eq!(deque.count(&1)?, 2);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn count<Q: ?Sized>(&self, value: &Q) -> Result<u64>
    where
        T: PartialEq<Q>,
    {
        let mut n = 0;
        for element in self {
            if element? == *value {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes the first element equal to `value`; returns whether there was one (python's
    /// `remove`, which raises `ValueError` instead of returning false). One transaction.
    ///
    /// # Errors
    ///
    /// As [`contains`](Self::contains).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2, 1])?;
    /// assert!(deque.remove(&1)?);
    /// assert!(deque.eq_items([2, 1])?);
    /// assert!(!deque.remove(&5)?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn remove<Q: ?Sized>(&self, value: &Q) -> Result<bool>
    where
        T: PartialEq<Q>,
    {
        self.transact(|d| {
            for item in d.cache.sorted_items::<i64, T>(Order::Ascending) {
                let (key, element) = item?;
                if element == *value {
                    return Ok(d.cache.delete(key)?);
                }
            }
            Ok(false)
        })
    }

    /// Whether the elements equal `other`'s, in order (python's `deque == sequence`).
    ///
    /// # Errors
    ///
    /// As [`contains`](Self::contains).
    ///
    /// # Examples
    ///
    /// ```
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// assert!(deque.eq_items([1, 2])?);
    /// assert!(deque.eq_items(&[1, 2])?);
    /// assert!(!deque.eq_items(vec![1, 2, 3])?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    #[doc(alias = "__eq__")]
    pub fn eq_items<I>(&self, other: I) -> Result<bool>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
        T: PartialEq,
    {
        let mut mine = self.iter();
        for theirs in other {
            match mine.next() {
                Some(element) => {
                    if element? != *theirs.borrow() {
                        return Ok(false);
                    }
                }
                None => return Ok(false),
            }
        }
        Ok(mine.next().transpose()?.is_none())
    }

    /// Compares the elements with `other`'s lexicographically, as python's `<`, `<=`, `>`,
    /// `>=` between sequences do; `None` when two elements are not comparable (NaN).
    ///
    /// # Errors
    ///
    /// As [`contains`](Self::contains).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cmp::Ordering;
    ///
    /// let deque = dcache_collections::Deque::<i64>::temp()?;
    /// deque.extend([1, 2])?;
    /// assert_eq!(deque.cmp_items([1, 3])?, Some(Ordering::Less));
    /// assert_eq!(deque.cmp_items([1])?, Some(Ordering::Greater));
    /// assert_eq!(deque.cmp_items([1, 2])?, Some(Ordering::Equal));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn cmp_items<I>(&self, other: I) -> Result<Option<Ordering>>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
        T: PartialOrd,
    {
        let mut mine = self.iter();
        for theirs in other {
            match mine.next() {
                Some(element) => match element?.partial_cmp(theirs.borrow()) {
                    Some(Ordering::Equal) => {}
                    other => return Ok(other),
                },
                None => return Ok(Some(Ordering::Less)),
            }
        }
        Ok(Some(if mine.next().transpose()?.is_some() {
            Ordering::Greater
        } else {
            Ordering::Equal
        }))
    }

    /// Whether two deques hold equal elements in the same order (on any disks).
    ///
    /// # Errors
    ///
    /// As [`contains`](Self::contains), for either deque.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_collections::Deque;
    ///
    /// let (a, b) = (Deque::<i64>::temp()?, Deque::<i64>::temp()?);
    /// a.extend([1, 2])?;
    /// b.extend_front([2, 1])?;
    /// assert!(a.eq_deque(&b)?);
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn eq_deque<D2: DiskFormat>(&self, other: &Deque<T, D2>) -> Result<bool>
    where
        T: PartialEq,
    {
        Ok(self.cmp_deque_by(
            other,
            |a, b| {
                if a == b { Some(Ordering::Equal) } else { None }
            },
        )? == Some(Ordering::Equal))
    }

    /// Compares two deques lexicographically (see [`cmp_items`](Self::cmp_items)).
    ///
    /// # Errors
    ///
    /// As [`eq_deque`](Self::eq_deque).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cmp::Ordering;
    /// use dcache_collections::Deque;
    ///
    /// let (a, b) = (Deque::<i64>::temp()?, Deque::<i64>::temp()?);
    /// a.extend([1, 2])?;
    /// b.extend([1, 2, 0])?;
    /// assert_eq!(a.cmp_deque(&b)?, Some(Ordering::Less));
    /// # Ok::<(), dcache_collections::Error>(())
    /// ```
    pub fn cmp_deque<D2: DiskFormat>(&self, other: &Deque<T, D2>) -> Result<Option<Ordering>>
    where
        T: PartialOrd,
    {
        self.cmp_deque_by(other, PartialOrd::partial_cmp)
    }

    fn cmp_deque_by<D2: DiskFormat>(
        &self,
        other: &Deque<T, D2>,
        cmp: impl Fn(&T, &T) -> Option<Ordering>,
    ) -> Result<Option<Ordering>> {
        let (mut mine, mut theirs) = (self.iter(), other.iter());
        loop {
            match (mine.next().transpose()?, theirs.next().transpose()?) {
                (None, None) => return Ok(Some(Ordering::Equal)),
                (None, Some(_)) => return Ok(Some(Ordering::Less)),
                (Some(_), None) => return Ok(Some(Ordering::Greater)),
                (Some(a), Some(b)) => match cmp(&a, &b) {
                    Some(Ordering::Equal) => {}
                    other => return Ok(other),
                },
            }
        }
    }
}

/// The key order that starts at `side`.
fn order_from(side: Side) -> Order {
    match side {
        Side::Front => Order::Ascending,
        Side::Back => Order::Descending,
    }
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Front => Side::Back,
        Side::Back => Side::Front,
    }
}

/// The elements of a [`Deque`] in order, as [`Deque::iter`] and [`Deque::iter_rev`] return
/// them. Yields `Result`s: a page read or an element's decoding may fail; iteration goes on
/// after an error.
pub struct Iter<T, D: DiskFormat = Disk> {
    inner: SortedItems<IgnoredAny, T, D>,
}

impl<T, D: DiskFormat> std::fmt::Debug for Iter<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("inner", &self.inner).finish()
    }
}

impl<T: DeserializeOwned, D: DiskFormat> Iterator for Iter<T, D> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.inner
            .next()
            .map(|r| r.map(|(_, value)| value).map_err(Error::from))
    }
}

impl<T: DeserializeOwned, D: DiskFormat> IntoIterator for &Deque<T, D> {
    type Item = Result<T>;
    type IntoIter = Iter<T, D>;

    fn into_iter(self) -> Iter<T, D> {
        self.iter()
    }
}
