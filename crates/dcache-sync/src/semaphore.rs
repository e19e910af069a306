//! `BoundedSemaphore`: at most N holders across threads and processes.

use std::fmt;
use std::time::Duration;

use dcache_core::{SetOptions, Storage, Tag, Update};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::wait::{self, Patience};

/// A semaphore of `value` permits shared by threads and processes: python-diskcache's
/// `BoundedSemaphore` recipe.
///
/// The key holds the number of free permits as an `int`, exactly as python stores it (a
/// missing key means all `value` are free), so python and Rust processes share one
/// semaphore. Every participant must use the same `value`. Releasing more permits than were
/// acquired is an error ([`Error::OverRelease`]), as in python.
///
/// With [`expire`](Self::expire), every acquire and release sets the key to expire that long
/// after; when it expires, all permits are free again (those held are forgotten, and their
/// releases then report [`Error::OverRelease`]). Choose it longer than any hold.
///
/// The store must not evict the key: open the cache with eviction policy `none` (see the
/// [crate docs](crate#eviction)).
///
/// # Examples
///
/// Ten workers, at most three inside at once (python's example):
///
/// ```
/// use dcache_core::Cache;
/// use dcache_sync::BoundedSemaphore;
///
/// let cache = Cache::temp()?;
/// let semaphore = BoundedSemaphore::new(cache, "db_connections", 3);
/// std::thread::scope(|s| {
///     for worker in 0..10 {
///         let semaphore = &semaphore;
///         s.spawn(move || -> dcache_sync::Result<()> {
///             let _permit = semaphore.acquire()?; // only 3 workers get past this at once
///             println!("worker {worker} connected to the database");
///             Ok(())
///         });
///     }
/// });
/// assert_eq!(semaphore.available()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct BoundedSemaphore<S, K = String> {
    store: S,
    key: K,
    value: u32,
    opts: SetOptions,
}

impl<S, K: fmt::Debug> fmt::Debug for BoundedSemaphore<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("key", &self.key)
            .field("value", &self.value)
            .field("expire", &self.opts.expire)
            .field("tag", &self.opts.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> BoundedSemaphore<S, K> {
    /// A semaphore of `value` permits on `key` in `store` (python's default `value` is 1).
    pub fn new(store: S, key: K, value: u32) -> Self {
        BoundedSemaphore {
            store,
            key,
            value,
            opts: SetOptions::new(),
        }
    }

    /// Every acquire and release sets the key to expire `ttl` later (default: never).
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.opts.expire = Some(ttl);
        self
    }

    /// The key is stored with this tag (default: none).
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.opts.tag = Some(tag.into());
        self
    }

    /// The semaphore's key.
    #[must_use]
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The number of permits.
    #[must_use]
    pub fn value(&self) -> u32 {
        self.value
    }

    /// Waits as long as it takes for a free permit and takes it; the guard gives it back.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or the key holds something other than an
    /// integer.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = dcache_sync::BoundedSemaphore::new(dcache_core::Cache::temp()?, "max-cons", 2);
    /// let a = semaphore.acquire()?;
    /// let b = semaphore.acquire()?;
    /// assert!(semaphore.try_acquire()?.is_none());
    /// drop((a, b));
    /// assert_eq!(semaphore.available()?, 2);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_, S, K>> {
        wait::required(&self.key, None, |p| self.acquire_with(p))
    }

    /// Takes a permit if one is free now.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire); a store whose write lock stays busy for its timeout is an
    /// [`Error::Store`] too.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = dcache_sync::BoundedSemaphore::new(dcache_core::Cache::temp()?, "one", 1);
    /// let held = semaphore.try_acquire()?.expect("free");
    /// assert!(semaphore.try_acquire()?.is_none());
    /// held.release()?;
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<Option<SemaphoreGuard<'_, S, K>>> {
        self.acquire_with(Patience::Once)
    }

    /// Waits up to `timeout` for a permit.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no permit came free in time; otherwise as
    /// [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let semaphore = dcache_sync::BoundedSemaphore::new(dcache_core::Cache::temp()?, "none", 0);
    /// let err = semaphore.acquire_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_, S, K>> {
        wait::required(&self.key, Some(timeout), |p| self.acquire_with(p))
    }

    fn acquire_with(&self, patience: Patience) -> Result<Option<SemaphoreGuard<'_, S, K>>> {
        let won = wait::acquire(
            || wait::registry_id(&self.key),
            patience,
            || Ok(self.free()? > 0),
            || Ok(self.attempt()?.then_some(())),
        )?;
        Ok(won.map(|()| SemaphoreGuard {
            semaphore: self,
            armed: true,
        }))
    }

    /// One attempt to take a permit.
    pub(crate) fn attempt(&self) -> Result<bool> {
        let initial = i64::from(self.value);
        Ok(self
            .store
            .update::<i64, _, _>(&self.key, self.opts.clone(), |current| {
                match current.unwrap_or(initial) {
                    free if free > 0 => (Update::Set(free - 1), true),
                    _ => (Update::Keep, false),
                }
            })?)
    }

    pub(crate) fn free(&self) -> Result<i64> {
        Ok(self
            .store
            .get_entry::<i64>(&self.key)?
            .map_or(i64::from(self.value), |e| e.value))
    }

    /// Gives a permit back (python's `release`). Guards call this when dropped; call it
    /// directly after [`SemaphoreGuard::forget`]. Any thread or process may release.
    ///
    /// # Errors
    ///
    /// [`Error::OverRelease`] when all permits are already free (nothing changes);
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = dcache_sync::BoundedSemaphore::new(dcache_core::Cache::temp()?, "s", 1);
    /// semaphore.acquire()?.forget();
    /// semaphore.release()?;
    /// assert!(semaphore.release().is_err()); // beyond the initial value
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        let initial = i64::from(self.value);
        let released = self
            .store
            .update::<i64, _, _>(&self.key, self.opts.clone(), |current| {
                match current.unwrap_or(initial) {
                    free if free < initial => (Update::Set(free + 1), true),
                    _ => (Update::Keep, false),
                }
            })?;
        if released {
            wait::notify(&self.key);
            Ok(())
        } else {
            Err(Error::OverRelease {
                key: wait::describe(&self.key),
                value: self.value,
            })
        }
    }

    /// The number of free permits now.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or the key holds something other than an
    /// integer.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = dcache_sync::BoundedSemaphore::new(dcache_core::Cache::temp()?, "s", 4);
    /// let _permit = semaphore.acquire()?;
    /// assert_eq!(semaphore.available()?, 3);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn available(&self) -> Result<u32> {
        Ok(u32::try_from(self.free()?.max(0)).unwrap_or(u32::MAX))
    }
}

/// A permit of a [`BoundedSemaphore`]; gives it back when dropped.
///
/// Dropping it releases best-effort (a failure is logged with the `log` crate at warn level);
/// call [`release`](Self::release) to see the error.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a, S: Storage, K: Serialize + fmt::Debug> {
    semaphore: &'a BoundedSemaphore<S, K>,
    armed: bool,
}

impl<S: Storage, K: Serialize + fmt::Debug> fmt::Debug for SemaphoreGuard<'_, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("key", &self.semaphore.key)
            .field("armed", &self.armed)
            .finish()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> SemaphoreGuard<'_, S, K> {
    /// Gives the permit back now.
    ///
    /// # Errors
    ///
    /// As [`BoundedSemaphore::release`] (the key expired meanwhile, say).
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = dcache_sync::BoundedSemaphore::new(dcache_core::Cache::temp()?, "s", 1);
    /// semaphore.acquire()?.release()?;
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        self.armed = false;
        self.semaphore.release()
    }

    /// Keeps the permit past the guard; give it back later with [`BoundedSemaphore::release`].
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> Drop for SemaphoreGuard<'_, S, K> {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.semaphore.release()
        {
            log::warn!(
                "dropping a permit of semaphore {:?}: {e}",
                self.semaphore.key
            );
        }
    }
}
