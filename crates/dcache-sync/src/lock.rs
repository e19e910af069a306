//! `Lock`: mutual exclusion across threads and processes.

use std::fmt;
use std::time::Duration;

use dcache_core::{SetOptions, Storage, Tag, Update, Value};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::wait::{self, Patience};

/// The second element of the fencing counter's key, `(lock key, FENCE_SUFFIX)`.
pub const FENCE_SUFFIX: &str = "dcache-fence";

/// A lock shared by every thread and process that opens the same store: python-diskcache's
/// `Lock` recipe, with per-acquisition ownership, timeouts and guards.
///
/// The lock is one key: present means taken. Each acquisition stores a token of its own
/// (`"<owner id>-<counter>"`, a `str`, see [`owner_id`](crate::owner_id)), and releasing
/// removes the key only if it still holds that token, so a holder whose lock expired never
/// removes somebody else's. python's `Lock` stores `None` under the key; presence is what
/// excludes, so a python `Lock` and this one on the same key exclude each other.
///
/// Give the lock an [`expire`](Self::expire) when a holder may crash: its key then frees
/// itself. Hold it for less than the expiry: past it, another process may take the lock, and
/// the release reports [`Error::LockLost`].
///
/// # Fencing tokens
///
/// An expiring lock is a lease: it guarantees that no two holders overlap *as long as each
/// finishes within the expiry*. A holder that pauses (a GC pause, a swapped-out process, a
/// network partition) can wake up after its lease ended, while somebody else holds the lock,
/// and still believe it holds it: checking [`LockGuard::is_held`] first does not help, since
/// the pause can fall between the check and the write. The lock alone cannot prevent that
/// write; the resource written to can, with a fencing token.
///
/// Every acquisition gets a [`fencing_token`](LockGuard::fencing_token), a number larger
/// than that of every earlier acquisition of the same key, on every store. Send it with each
/// write; the resource remembers the largest token it has seen and refuses writes carrying a
/// smaller one. The late writes of a holder whose lease expired then fail, because a later
/// holder has already written with a larger token.
///
/// The token lives in a companion entry, the key `(key, "dcache-fence")`, without expiry
/// (and with the lock's tag). It is incremented after the lock key is added, and the
/// acquisition counts only if the lock key still holds its token after the increment: so a
/// later acquisition always increments later and gets a larger token. If the companion entry
/// is lost (evicted, cleared, a Redis server restarted without persistence), the counter
/// starts again from the store clock in microseconds since 1970, which is larger than any
/// count reached before as long as the lock was taken less than a million times a second on
/// average and the store's clock did not go back. Tokens are therefore monotonic for as long
/// as the store keeps its data, and in practice across a loss too.
///
/// What `expire` does not guarantee: that a holder is told when its lease ended (only its
/// release reports [`Error::LockLost`]), nor that its writes after that are harmless; only a
/// resource checking fencing tokens refuses them.
///
/// The store must not evict the key: open the cache with eviction policy `none` (see the
/// [crate docs](crate#eviction)).
///
/// A `Lock` is a cheap handle (clone it into each thread); it remembers nothing about
/// acquisitions, which live in their [`LockGuard`]s.
///
/// # Examples
///
/// Threads competing for one lock (python's first example):
///
/// ```
/// use dcache_core::Cache;
/// use dcache_sync::Lock;
///
/// let cache = Cache::temp()?;
/// let lock = Lock::new(cache, "resource_lock");
/// std::thread::scope(|s| {
///     for worker in 0..5 {
///         let lock = &lock;
///         s.spawn(move || -> dcache_sync::Result<()> {
///             let _guard = lock.acquire()?; // released when the guard drops
///             println!("worker {worker} has the lock");
///             Ok(())
///         });
///     }
/// });
/// assert!(!lock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Taking it only if free, with an expiry (python's second example):
///
/// ```
/// use std::time::Duration;
/// use dcache_core::Cache;
/// use dcache_sync::Lock;
///
/// let cache = Cache::temp()?;
/// let lock = Lock::new(cache, "manual_lock").expire(Duration::from_secs(30));
/// if let Some(guard) = lock.try_acquire()? {
///     println!("performing critical section work...");
///     guard.unlock()?; // or let it drop
/// } else {
///     println!("resource is busy");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Lock<S, K = String> {
    store: S,
    key: K,
    opts: SetOptions,
    fencing: bool,
}

impl<S, K: fmt::Debug> fmt::Debug for Lock<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .field("expire", &self.opts.expire)
            .field("tag", &self.opts.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> Lock<S, K> {
    /// A lock on `key` in `store`, without expiry or tag.
    pub fn new(store: S, key: K) -> Self {
        Lock {
            store,
            key,
            opts: SetOptions::new(),
            fencing: true,
        }
    }

    /// Each acquisition expires `ttl` after it is made (default: never), so a lock whose
    /// holder crashed frees itself.
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.opts.expire = Some(ttl);
        self
    }

    /// Acquisitions skip the fencing counter: [`LockGuard::fencing_token`] is then 0. Saves
    /// the counter's increment and the check that follows it (two of a Redis lock cycle's
    /// round trips) for locks whose holders write nothing that needs fencing.
    pub fn without_fencing(mut self) -> Self {
        self.fencing = false;
        self
    }

    /// The lock's key is stored with this tag (default: none), so `evict(tag)` can clear it.
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.opts.tag = Some(tag.into());
        self
    }

    /// The lock's key.
    #[must_use]
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The store holding the lock.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Waits as long as it takes for the lock, then holds it until the guard is dropped or
    /// [unlocked](LockGuard::unlock).
    ///
    /// Waiting threads of this process are woken by a release in this process; a release in
    /// another process is noticed within a few milliseconds (see the [crate docs](crate#waiting)).
    /// The lock is not re-entrant: a thread acquiring a lock it holds waits for itself forever
    /// (use [`RLock`](crate::RLock), or [`acquire_timeout`](Self::acquire_timeout)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails (not when it is merely busy: that is waited out).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "report-123");
    /// let guard = lock.acquire()?;
    /// assert!(lock.locked()?);
    /// drop(guard);
    /// assert!(!lock.locked()?);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<LockGuard<'_, S, K>> {
        wait::required(&self.key, None, |p| self.acquire_with(p))
    }

    /// Takes the lock if it is free now (one look, and one write if it looks free).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or its write lock stays busy for its timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let held = lock.try_acquire()?.expect("free");
    /// assert!(lock.try_acquire()?.is_none());
    /// held.unlock()?;
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<Option<LockGuard<'_, S, K>>> {
        self.acquire_with(Patience::Once)
    }

    /// Waits up to `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] (with the key and the time waited, at least `timeout`) when the lock
    /// stayed taken; [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let _held = lock.acquire()?;
    /// let err = lock.acquire_timeout(Duration::from_millis(20)).unwrap_err();
    /// assert!(err.is_timeout(), "{err}");
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_, S, K>> {
        wait::required(&self.key, Some(timeout), |p| self.acquire_with(p))
    }

    fn acquire_with(&self, patience: Patience) -> Result<Option<LockGuard<'_, S, K>>> {
        let token = wait::new_token();
        let won = wait::acquire(
            || wait::registry_id(&self.key),
            patience,
            || self.looks_free(),
            || self.attempt(&token),
        )?;
        Ok(won.map(|fence| LockGuard {
            lock: self,
            token: Some(token),
            fence,
        }))
    }

    /// Whether the key holds `token`.
    pub(crate) fn holds(&self, token: &str) -> Result<bool> {
        let current = self.store.get_entry::<Value>(&self.key)?;
        Ok(matches!(current, Some(e) if e.value.as_str() == Some(token)))
    }

    /// Whether the lock looks free (a read).
    pub(crate) fn looks_free(&self) -> Result<bool> {
        Ok(self.store.get_entry::<Value>(&self.key)?.is_none())
    }

    /// One attempt to take the lock with `token`: its fencing token if taken.
    pub(crate) fn attempt(&self, token: &str) -> Result<Option<u64>> {
        if !self.store.add(&self.key, token, self.opts.clone())? {
            return Ok(None);
        }
        if !self.fencing {
            return Ok(Some(0));
        }
        // Counted only if still held after the increment: a later holder then
        // increments later, and gets a larger token.
        let fenced = self.next_fence().and_then(|fence| {
            let current = self.store.get_entry::<Value>(&self.key)?;
            let held = matches!(&current, Some(e) if e.value.as_str() == Some(token));
            Ok(held.then_some(fence))
        });
        if fenced.is_err() {
            // The store failed after the lock was taken: give it back rather than
            // leave it held by nobody until it expires (best effort: the store may
            // still be failing).
            if let Err(e) = self.release(token) {
                log::warn!("releasing lock {:?} after a failed acquire: {e}", self.key);
            }
        }
        fenced
    }

    /// The companion key holding the lock's fencing counter.
    fn fence_key(&self) -> (&K, &'static str) {
        (&self.key, FENCE_SUFFIX)
    }

    /// Increments the fencing counter; a missing counter starts from the store clock in
    /// microseconds.
    fn next_fence(&self) -> Result<u64> {
        let seed = self
            .store
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let opts = SetOptions::new().tag_opt(self.opts.tag.clone());
        let fence = self.store.incr(&self.fence_key(), 1, Some(seed), opts)?;
        Ok(u64::try_from(fence).unwrap_or(0))
    }

    /// Whether anyone (any thread, any process, python's `Lock` included) holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// assert!(!lock.locked()?);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn locked(&self) -> Result<bool> {
        Ok(self.store.get_entry::<Value>(&self.key)?.is_some())
    }

    /// Releases the acquisition holding `token` (from [`LockGuard::forget`]), from any thread
    /// or process.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the key no longer holds `token` (the acquisition expired, or
    /// was released already); nothing is removed then. [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let token = lock.acquire()?.forget(); // keep holding past this scope
    /// assert!(lock.locked()?);
    /// lock.release(&token)?;
    /// assert!(lock.release(&token).unwrap_err().to_string().contains("lost"));
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn release(&self, token: &str) -> Result<()> {
        let released = self.store.update::<Value, _, _>(
            &self.key,
            SetOptions::new(),
            |current| match current {
                Some(Value::Str(held)) if held == token => (Update::Delete, true),
                _ => (Update::Keep, false),
            },
        )?;
        if released {
            wait::notify(&self.key);
            Ok(())
        } else {
            Err(Error::LockLost {
                key: wait::describe(&self.key),
            })
        }
    }

    /// Removes the lock whoever holds it (python's `Lock.release`, which checks nothing);
    /// returns whether it was held. For clearing a lock left by a crashed holder that had no
    /// expiry; the holder, if alive, gets [`Error::LockLost`] when it releases.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let guard = lock.acquire()?;
    /// assert!(lock.force_release()?);
    /// assert!(guard.unlock().is_err()); // LockLost
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn force_release(&self) -> Result<bool> {
        let removed = self.store.delete(&self.key)?;
        if removed {
            wait::notify(&self.key);
        }
        Ok(removed)
    }
}

/// One acquisition of a [`Lock`]; releases it when dropped.
///
/// Dropping the guard releases the lock best-effort: a failure (the lock was lost, or the
/// store failed) is logged with the `log` crate at warn level and otherwise ignored. Call
/// [`unlock`](Self::unlock) to see the error.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, S: Storage, K: Serialize + fmt::Debug> {
    lock: &'a Lock<S, K>,
    /// `None` once released or forgotten.
    token: Option<String>,
    /// This acquisition's fencing token.
    fence: u64,
}

impl<S: Storage, K: Serialize + fmt::Debug> fmt::Debug for LockGuard<'_, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.lock.key)
            .field("token", &self.token)
            .field("fencing_token", &self.fence)
            .finish()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> LockGuard<'_, S, K> {
    /// This acquisition's token, as stored under the lock's key.
    #[must_use]
    pub fn token(&self) -> &str {
        self.token.as_deref().unwrap_or_default()
    }

    /// This acquisition's fencing token: larger than that of every earlier acquisition of
    /// this lock's key, in any thread, process or machine sharing the store (see
    /// [Fencing tokens](Lock#fencing-tokens)). Send it with every write made under the lock;
    /// a resource that refuses tokens smaller than the largest it has seen refuses the late
    /// writes of a holder whose lease expired.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let first = lock.acquire()?.fencing_token();
    /// let second = lock.acquire()?.fencing_token();
    /// assert!(second > first);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    #[must_use]
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }

    /// Whether the key still holds this acquisition (false once it expired or was removed).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let guard = lock.acquire()?;
    /// assert!(guard.is_held()?);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn is_held(&self) -> Result<bool> {
        self.lock.holds(self.token())
    }

    /// Releases the lock now.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the acquisition expired or was removed (nothing is removed);
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = dcache_sync::Lock::new(dcache_core::Cache::temp()?, "job");
    /// lock.acquire()?.unlock()?;
    /// assert!(!lock.locked()?);
    /// # Ok::<(), dcache_sync::Error>(())
    /// ```
    pub fn unlock(mut self) -> Result<()> {
        match self.token.take() {
            Some(token) => self.lock.release(&token),
            None => Ok(()),
        }
    }

    /// Keeps the lock held past the guard and returns its token, for
    /// [`Lock::release`] later (from any thread or process). Without a call to `release`,
    /// the lock stays held until it expires.
    #[must_use = "without its token the lock can only expire or be force-released"]
    pub fn forget(mut self) -> String {
        self.token.take().unwrap_or_default()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug> Drop for LockGuard<'_, S, K> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take()
            && let Err(e) = self.lock.release(&token)
        {
            log::warn!("dropping a guard of lock {:?}: {e}", self.lock.key);
        }
    }
}
