//! `Averager`: a running average kept by threads and processes together.

use std::fmt;
use std::time::Duration;

use dcache_core::{SetOptions, Storage, Tag, Update};
use serde::Serialize;

use crate::error::Result;

/// What python's `Averager` stores: `(total, count)`.
type Stored = (f64, i64);

/// A running average that threads and processes add to together: python-diskcache's
/// `Averager` recipe.
///
/// The key holds the pickled tuple `(total, count)` (a `float` and an `int`), exactly as
/// python stores it, so python and Rust processes share one average. Every [`add`](Self::add)
/// is one atomic read-modify-write of the key; none is lost.
///
/// With [`expire`](Self::expire), every add sets the key to expire that long after; an average
/// nobody adds to then disappears. The store must not evict the key (see the
/// [crate docs](crate#eviction)).
///
/// # Examples
///
/// Five workers recording response times (python's example):
///
/// ```
/// use dcache_core::Cache;
/// use dcache_sync::Averager;
///
/// let cache = Cache::temp()?;
/// let avg = Averager::new(cache, "response_time_avg");
/// std::thread::scope(|s| {
///     for worker in 0..5 {
///         let avg = &avg;
///         s.spawn(move || -> dcache_sync::Result<()> {
///             for i in 0..10 {
///                 avg.add(f64::from(worker * 10 + i))?; // 0, 1, ..., 49
///             }
///             Ok(())
///         });
///     }
/// });
/// assert_eq!(avg.get()?, Some(24.5));
/// assert_eq!(avg.pop()?, Some(24.5)); // gets the average and clears it
/// assert_eq!(avg.get()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Averager<S, K = String> {
    store: S,
    key: K,
    opts: SetOptions,
}

impl<S, K: fmt::Debug> fmt::Debug for Averager<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Averager")
            .field("key", &self.key)
            .field("expire", &self.opts.expire)
            .field("tag", &self.opts.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Storage, K: Serialize> Averager<S, K> {
    /// A running average under `key` in `store`, without expiry or tag.
    pub fn new(store: S, key: K) -> Self {
        Averager {
            store,
            key,
            opts: SetOptions::new(),
        }
    }

    /// Every add sets the key to expire `ttl` later (default: never).
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.opts.expire = Some(ttl);
        self
    }

    /// The key is stored with this tag (default: none).
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.opts.tag = Some(tag.into());
        self
    }

    /// The average's key.
    #[must_use]
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Adds `value` to the average, atomically across threads and processes.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails, the key holds something
    /// other than python's `(float, int)` tuple, or the count would overflow.
    ///
    /// # Examples
    ///
    /// ```
    /// let ave = dcache_sync::Averager::new(dcache_core::Cache::temp()?, "latency");
    /// ave.add(0.080)?;
    /// ave.add(0.120)?;
    /// assert_eq!(ave.get()?, Some(0.1));
    /// ave.add(0.160)?;
    /// assert_eq!(ave.pop()?, Some(0.12));
    /// assert_eq!(ave.get()?, None);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn add(&self, value: f64) -> Result<()> {
        self.store
            .update::<Stored, _, _>(&self.key, self.opts.clone(), |current| {
                let (total, count) = current.unwrap_or((0.0, 0));
                match count.checked_add(1) {
                    Some(count) => (Update::Set((total + value, count)), Ok(())),
                    None => (Update::Keep, Err(dcache_core::Error::Overflow)),
                }
            })??;
        Ok(())
    }

    /// The average (`total / count`), or `None` when nothing was added.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails or the key holds something
    /// other than python's `(float, int)` tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// let ave = dcache_sync::Averager::new(dcache_core::Cache::temp()?, "empty");
    /// assert_eq!(ave.get()?, None);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn get(&self) -> Result<Option<f64>> {
        Ok(self
            .store
            .get_entry::<Stored>(&self.key)?
            .and_then(|e| mean(e.value)))
    }

    /// The average, removing it (python's `pop`): the next add starts a new one.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let ave = dcache_sync::Averager::new(dcache_core::Cache::temp()?, "period");
    /// ave.add(3.0)?;
    /// assert_eq!(ave.pop()?, Some(3.0));
    /// assert_eq!(ave.pop()?, None);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn pop(&self) -> Result<Option<f64>> {
        Ok(self.store.update::<Stored, _, _>(
            &self.key,
            SetOptions::new(),
            |current| match current {
                Some(stored) => (Update::Delete, mean(stored)),
                None => (Update::Keep, None),
            },
        )?)
    }
}

fn mean((total, count): Stored) -> Option<f64> {
    // Counts are far below 2^53: the conversion is exact.
    (count != 0).then(|| total / count as f64)
}
