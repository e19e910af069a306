//! `RLock`: a re-entrant lock owned by one thread of one process.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use dcache_core::{SetOptions, Storage, Tag, Update};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::wait::{self, Patience};

/// What python's `RLock` stores: `(owner id, depth)`.
type Stored = (String, i64);

/// Whether `me` may take the lock stored as `held`: it is free (depth 0 or below, as a python
/// over-release may leave it) or already `me`'s.
fn may_take((owner, depth): &Stored, me: &str) -> bool {
    owner == me || *depth <= 0
}

/// A re-entrant lock shared by threads and processes: python-diskcache's `RLock` recipe.
///
/// The owner is a thread of a process; it may acquire the lock again while holding it, and
/// must release it as often as it acquired it. The key holds the pickled tuple
/// `('<owner id>', depth)`, as python stores it (python's id is
/// `'<pid>-<threading.get_ident()>'`, ours is [`owner_id`](crate::owner_id)'s, which adds 128
/// random bits per process so ids stay unique across machines and containers), so python and
/// Rust owners share one `RLock`, see each other's ownership and never take each other's ids.
/// Releasing to depth 0 stores `(owner, 0)`, as python does; the key stays.
///
/// [`expire`](Self::expire) makes each acquire and release reset the key's expiry, so a lock
/// whose owner crashed frees itself that long after the owner's last call.
///
/// The store must not evict the key: open the cache with eviction policy `none` (see the
/// [crate docs](crate#eviction)).
///
/// # Examples
///
/// A recursive function taking the lock at each level (python's example):
///
/// ```
/// use dcache_core::{Cache, Storage};
/// use dcache_sync::RLock;
///
/// fn recursive<S: Storage>(rlock: &RLock<S, &str>, depth: u32) -> dcache_sync::Result<()> {
///     if depth == 0 {
///         return Ok(());
///     }
///     let _guard = rlock.acquire()?; // the same thread may take it again
///     println!("acquired lock at depth {depth}");
///     recursive(rlock, depth - 1)
/// }
///
/// let cache = Cache::temp()?;
/// let rlock = RLock::new(cache, "reentrant_lock");
/// recursive(&rlock, 3)?;
/// assert!(!rlock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct RLock<S, K = String> {
    store: S,
    key: K,
    opts: SetOptions,
}

impl<S, K: fmt::Debug> fmt::Debug for RLock<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("key", &self.key)
            .field("expire", &self.opts.expire)
            .field("tag", &self.opts.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> RLock<S, K> {
    /// A re-entrant lock on `key` in `store`, without expiry or tag.
    pub fn new(store: S, key: K) -> Self {
        RLock {
            store,
            key,
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

    /// The lock's key.
    #[must_use]
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Waits as long as it takes until the lock is free or held by this thread, then takes
    /// it (one level deeper); the guard releases that level.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or the key holds something other than python's
    /// `(str, int)` tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "user-123");
    /// let outer = rlock.acquire()?;
    /// let inner = rlock.acquire()?;
    /// assert_eq!(rlock.owner()?, Some((dcache_sync::owner_id(), 2)));
    /// drop(inner);
    /// drop(outer);
    /// assert!(!rlock.locked()?);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<RLockGuard<'_, S, K>> {
        wait::required(&self.key, None, |p| self.acquire_with(p))
    }

    /// Takes the lock if it is free or held by this thread now.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire); a store whose write lock stays busy for its timeout is an
    /// [`Error::Store`] too.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "k");
    /// let _held = rlock.acquire()?;
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| rlock.try_acquire().map(|g| g.is_some()));
    ///     assert!(!other.join().unwrap().unwrap()); // another thread cannot enter
    /// });
    /// assert!(rlock.try_acquire()?.is_some()); // this one can
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<Option<RLockGuard<'_, S, K>>> {
        self.acquire_with(Patience::Once)
    }

    /// Waits up to `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when another owner held it throughout; otherwise as
    /// [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "k");
    /// let _guard = rlock.acquire_timeout(Duration::from_secs(1))?;
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_, S, K>> {
        wait::required(&self.key, Some(timeout), |p| self.acquire_with(p))
    }

    fn acquire_with(&self, patience: Patience) -> Result<Option<RLockGuard<'_, S, K>>> {
        let me = wait::owner_id();
        let won = wait::acquire(
            || wait::registry_id(&self.key),
            patience,
            || self.looks_free_for(&me),
            || Ok(self.attempt_as(&me)?.then_some(())),
        )?;
        Ok(won.map(|()| RLockGuard {
            rlock: self,
            armed: true,
            not_send: PhantomData,
        }))
    }

    /// Whether `me` may take the lock (a read).
    pub(crate) fn looks_free_for(&self, me: &str) -> Result<bool> {
        Ok(self
            .store
            .get_entry::<Stored>(&self.key)?
            .is_none_or(|e| may_take(&e.value, me)))
    }

    /// One attempt to take (or enter again) the lock as owner `me`.
    pub(crate) fn attempt_as(&self, me: &str) -> Result<bool> {
        let taken =
            self.store
                .update::<Stored, _, _>(
                    &self.key,
                    self.opts.clone(),
                    |current| match current {
                        Some((owner, depth)) if owner == me => match depth.max(0).checked_add(1) {
                            Some(deeper) => (Update::Set((owner, deeper)), Ok(true)),
                            None => (Update::Keep, Err(dcache_core::Error::Overflow)),
                        },
                        Some(held) if !may_take(&held, me) => (Update::Keep, Ok(false)),
                        _ => (Update::Set((me.to_owned(), 1)), Ok(true)),
                    },
                )??;
        Ok(taken)
    }

    /// Releases one level of this thread's hold (python's `release`); at depth 0 the lock is
    /// free. Guards call this when dropped; call it directly after
    /// [`RLockGuard::forget`].
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`] when this thread does not hold the lock (another owner does, or
    /// nobody: one release too many); nothing changes then. [`Error::Store`] when the store
    /// fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "k");
    /// rlock.acquire()?.forget();
    /// rlock.release()?;
    /// assert!(matches!(rlock.release(), Err(dcache_sync::Error::NotOwner { .. })));
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.release_as(&wait::owner_id())
    }

    /// Releases one level of owner `me`'s hold.
    pub(crate) fn release_as(&self, me: &str) -> Result<()> {
        let outcome = self.store.update::<Stored, _, _>(
            &self.key,
            self.opts.clone(),
            |current| match current {
                Some((owner, depth)) if owner == me && depth > 0 => {
                    (Update::Set((owner, depth - 1)), Ok(depth - 1))
                }
                Some((owner, depth)) if depth > 0 => (Update::Keep, Err(Some(owner))),
                _ => (Update::Keep, Err(None)),
            },
        )?;
        match outcome {
            Ok(0) => {
                wait::notify(&self.key);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(holder) => Err(Error::NotOwner {
                key: wait::describe(&self.key),
                caller: me.to_owned(),
                holder,
            }),
        }
    }

    /// Whether anyone holds the lock (depth above 0).
    ///
    /// # Errors
    ///
    /// As [`owner`](Self::owner).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "k");
    /// assert!(!rlock.locked()?);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn locked(&self) -> Result<bool> {
        Ok(self.owner()?.is_some())
    }

    /// The owner id holding the lock and its depth, if anyone holds it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or the key holds something other than python's
    /// `(str, int)` tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "k");
    /// let _g = rlock.acquire()?;
    /// assert_eq!(rlock.owner()?, Some((dcache_sync::owner_id(), 1)));
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn owner(&self) -> Result<Option<(String, u64)>> {
        Ok(self.store.get_entry::<Stored>(&self.key)?.and_then(|e| {
            u64::try_from(e.value.1)
                .ok()
                .filter(|d| *d > 0)
                .map(|d| (e.value.0, d))
        }))
    }
}

/// One level of an [`RLock`] hold by the current thread; releases that level when dropped.
///
/// The guard is neither `Send` nor `Sync`: the hold belongs to the thread that took it.
/// Dropping it releases best-effort (a failure is logged with the `log` crate at warn level);
/// call [`unlock`](Self::unlock) to see the error.
///
/// ```compile_fail
/// fn send<T: Send>() {}
/// send::<dcache_sync::RLockGuard<'static, dcache_core::Cache, String>>();
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, S: Storage, K: Serialize + fmt::Debug> {
    rlock: &'a RLock<S, K>,
    armed: bool,
    not_send: PhantomData<*const ()>,
}

impl<S: Storage, K: Serialize + fmt::Debug> fmt::Debug for RLockGuard<'_, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("key", &self.rlock.key)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> RLockGuard<'_, S, K> {
    /// Releases this level now.
    ///
    /// # Errors
    ///
    /// As [`RLock::release`] (the lock expired and another owner took it, say).
    ///
    /// # Examples
    ///
    /// ```
    /// let rlock = dcache_sync::RLock::new(dcache_core::Cache::temp()?, "k");
    /// rlock.acquire()?.unlock()?;
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn unlock(mut self) -> Result<()> {
        self.armed = false;
        self.rlock.release()
    }

    /// Keeps this level held past the guard; release it later with [`RLock::release`] from
    /// this same thread.
    pub fn forget(mut self) {
        self.armed = false;
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> Drop for RLockGuard<'_, S, K> {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.rlock.release()
        {
            log::warn!("dropping a guard of rlock {:?}: {e}", self.rlock.key);
        }
    }
}
