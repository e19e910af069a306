//! `Barrier`: one call at a time across threads and processes.

use std::fmt;
use std::time::Duration;

use dcache_core::{SetOptions, Storage, Tag};
use dcache_sync::{Lock, RLock};

use crate::error::Result;

/// A lock a [`Barrier`] makes and holds around each call: python's `lock_factory`.
///
/// Implemented by [`Lock`] (one holder at a time; a call that re-enters the barrier from
/// inside waits for itself forever) and [`RLock`] (the holding thread may re-enter). Implement
/// it for a lock of your own, or to make one of these with other settings (python's custom
/// factory example):
///
/// ```
/// use std::time::Duration;
/// use dcache_core::{Cache, SetOptions, Storage};
/// use dcache_recipes::{Barrier, BarrierLock};
/// use dcache_sync::RLock;
///
/// /// An RLock that expires after two minutes and is tagged "custom" unless told otherwise.
/// struct LongLock<S>(RLock<S>);
///
/// impl<S: Storage> BarrierLock<S> for LongLock<S> {
///     fn make(store: S, key: String, opts: SetOptions) -> Self {
///         let expire = opts.expire.unwrap_or(Duration::from_secs(120));
///         let tag = opts.tag.unwrap_or_else(|| "custom".into());
///         LongLock(RLock::new(store, key).expire(expire).tag(tag))
///     }
///
///     fn hold<T>(&self, f: impl FnOnce() -> T) -> dcache_recipes::Result<T> {
///         self.0.hold(f)
///     }
/// }
///
/// let cache = Cache::temp()?;
/// let barrier = Barrier::<_, LongLock<_>>::with_lock(cache, "critical_ops");
/// let done = barrier.call(|| Ok::<_, dcache_recipes::Error>("operation completed"))?;
/// assert_eq!(done, "operation completed");
/// # Ok::<(), dcache_recipes::Error>(())
/// ```
pub trait BarrierLock<S: Storage>: Sized {
    /// Makes the lock on `key` in `store` with the barrier's expiry and tag (python calls
    /// `lock_factory(cache, key, expire=expire, tag=tag)`).
    fn make(store: S, key: String, opts: SetOptions) -> Self;

    /// Runs `f` while holding the lock; releases it afterwards (also when `f` panics).
    ///
    /// # Errors
    ///
    /// When the lock cannot be taken or released; `f` has run when the release fails.
    fn hold<T>(&self, f: impl FnOnce() -> T) -> Result<T>;
}

impl<S: Storage> BarrierLock<S> for Lock<S> {
    fn make(store: S, key: String, opts: SetOptions) -> Self {
        let mut lock = Lock::new(store, key);
        if let Some(ttl) = opts.expire {
            lock = lock.expire(ttl);
        }
        if let Some(tag) = opts.tag {
            lock = lock.tag(tag);
        }
        lock
    }

    /// Takes the lock (waiting as long as it takes), runs `f`, releases the lock.
    ///
    /// # Errors
    ///
    /// [`dcache_sync::Error::LockLost`] (as [`Error::Sync`](crate::Error::Sync)) when the lock
    /// expired while `f` ran: `f` was not protected for all its run. A store error otherwise.
    fn hold<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let guard = self.acquire()?;
        let out = f();
        guard.unlock()?;
        Ok(out)
    }
}

impl<S: Storage> BarrierLock<S> for RLock<S> {
    fn make(store: S, key: String, opts: SetOptions) -> Self {
        let mut lock = RLock::new(store, key);
        if let Some(ttl) = opts.expire {
            lock = lock.expire(ttl);
        }
        if let Some(tag) = opts.tag {
            lock = lock.tag(tag);
        }
        lock
    }

    /// Takes one level of the lock (waiting while another thread holds it), runs `f`,
    /// releases that level.
    ///
    /// # Errors
    ///
    /// [`dcache_sync::Error::NotOwner`] (as [`Error::Sync`](crate::Error::Sync)) when the lock
    /// expired while `f` ran and another thread took it. A store error otherwise.
    fn hold<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let guard = self.acquire()?;
        let out = f();
        guard.unlock()?;
        Ok(out)
    }
}

/// Runs calls one at a time across every thread and process sharing the store:
/// python-diskcache's `barrier` recipe.
///
/// Each call runs under a lock on the barrier's name, made by the lock type `L`
/// ([`BarrierLock`]): [`Lock`] by default ([`Barrier::new`]), [`RLock`] for functions that
/// re-enter ([`Barrier::reentrant`]), or a lock of your own ([`Barrier::with_lock`]). The
/// lock's key holds what python's lock stores, so a python `barrier` with the same lock type
/// and name excludes this one and the other way round.
///
/// Give the barrier an [`expire`](Self::expire) longer than a call takes when a process may
/// crash inside a call: its lock then frees itself. Keep the store from evicting the key (see
/// `dcache_sync`'s notes on eviction).
///
/// # Examples
///
/// Five threads writing one file, one at a time (python's example):
///
/// ```
/// use std::time::Duration;
/// use dcache_core::Cache;
/// use dcache_recipes::Barrier;
///
/// let cache = Cache::temp()?;
/// let barrier = Barrier::new(cache, "critical_file_operation").expire(Duration::from_secs(60));
/// let write = barrier.wrap(|worker: u32| -> dcache_recipes::Result<String> {
///     // Only one thread (of any process) is here at a time.
///     Ok(format!("processed file_{worker}.txt"))
/// });
/// std::thread::scope(|s| {
///     for worker in 0..5 {
///         let write = &write;
///         s.spawn(move || write(worker));
///     }
/// });
/// # Ok::<(), dcache_recipes::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Barrier<S, L = Lock<S>> {
    store: S,
    name: String,
    opts: SetOptions,
    lock: L,
}

impl<S, L> fmt::Debug for Barrier<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("name", &self.name)
            .field("lock", &std::any::type_name::<L>())
            .field("expire", &self.opts.expire)
            .field("tag", &self.opts.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Barrier<S> {
    /// A barrier named `name` in `store` with a [`Lock`] (python's
    /// `barrier(cache, Lock, name=...)`), without expiry or tag.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = dcache_recipes::Barrier::new(dcache_core::Cache::temp()?, "report");
    /// assert_eq!(barrier.name(), "report");
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn new(store: S, name: impl Into<String>) -> Self {
        Self::with_lock(store, name)
    }
}

impl<S: Storage> Barrier<S, RLock<S>> {
    /// A barrier named `name` in `store` with an [`RLock`] (python's
    /// `barrier(cache, RLock, name=...)`): a thread inside may call through the barrier again.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{Cache, Storage};
    /// use dcache_recipes::Barrier;
    /// use dcache_sync::RLock;
    ///
    /// fn countdown<S: Storage>(barrier: &Barrier<S, RLock<S>>, depth: u32) -> dcache_recipes::Result<u32> {
    ///     barrier.call(|| if depth == 0 { Ok(0) } else { countdown(barrier, depth - 1).map(|d| d + 1) })
    /// }
    ///
    /// let barrier = Barrier::reentrant(Cache::temp()?, "reentrant_critical");
    /// assert_eq!(countdown(&barrier, 3)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reentrant(store: S, name: impl Into<String>) -> Self {
        Self::with_lock(store, name)
    }
}

impl<S: Storage, L: BarrierLock<S>> Barrier<S, L> {
    /// A barrier named `name` in `store` with the lock type `L` (python's `lock_factory`);
    /// name the type with a turbofish: `Barrier::<_, MyLock<_>>::with_lock(store, name)`.
    /// See [`BarrierLock`] for an example.
    pub fn with_lock(store: S, name: impl Into<String>) -> Self {
        let name = name.into();
        let opts = SetOptions::new();
        let lock = L::make(store.clone(), name.clone(), opts.clone());
        Barrier {
            store,
            name,
            opts,
            lock,
        }
    }

    /// The lock expires `ttl` after it is taken (default: never), so a process that crashed
    /// inside a call does not block the others forever.
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.opts.expire = Some(ttl);
        self.remake()
    }

    /// The lock's key is stored with this tag (default: none).
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.opts.tag = Some(tag.into());
        self.remake()
    }

    fn remake(mut self) -> Self {
        self.lock = L::make(self.store.clone(), self.name.clone(), self.opts.clone());
        self
    }

    /// The barrier's name, which is its lock's key.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The barrier's lock.
    #[must_use]
    pub fn lock(&self) -> &L {
        &self.lock
    }

    /// Runs `f` while holding the barrier's lock: no other call through a barrier of the same
    /// name runs meanwhile, in any thread or process.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the lock's (as [`BarrierLock::hold`]) converted into `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = dcache_recipes::Barrier::new(dcache_core::Cache::temp()?, "migrate");
    /// let migrated = barrier.call(|| Ok::<_, dcache_recipes::Error>(12))?;
    /// assert_eq!(migrated, 12);
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn call<T, E: From<crate::Error>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.lock.hold(f)?
    }

    /// Turns `f` into a function whose calls run one at a time (python's decorator).
    /// Several arguments travel as a tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = dcache_recipes::Barrier::new(dcache_core::Cache::temp()?, "append");
    /// let append = barrier.wrap(|(log, line): (&str, &str)| {
    ///     Ok::<_, dcache_recipes::Error>(format!("{log}: {line}"))
    /// });
    /// assert_eq!(append(("audit", "started"))?, "audit: started");
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn wrap<A, T, E, F>(self, f: F) -> impl Fn(A) -> Result<T, E>
    where
        E: From<crate::Error>,
        F: Fn(A) -> Result<T, E>,
    {
        move |args| self.call(|| f(args))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use dcache_core::{Cache, Value};

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn the_lock_is_held_during_the_call_only() -> TestResult {
        let cache = Cache::temp()?;
        let barrier = Barrier::new(cache.clone(), "job")
            .expire(Duration::from_secs(30))
            .tag("barriers");
        let seen = barrier.call(|| Ok::<_, crate::Error>(cache.get_entry::<Value>("job")?))?;
        let entry = seen.ok_or("the lock key was not there during the call")?;
        assert!(entry.expire_time.is_some());
        assert_eq!(entry.tag, Some(Tag::from("barriers")));
        assert!(!cache.contains("job")?);
        // An error from the call is returned, and the lock is released.
        let failed: std::result::Result<(), crate::Error> =
            barrier.call(|| Err(crate::Error::Store(dcache_core::Error::Overflow)));
        assert!(matches!(failed, Err(crate::Error::Store(_))));
        assert!(!barrier.lock().locked()?);
        Ok(())
    }

    #[test]
    fn a_panicking_call_releases_the_lock() -> TestResult {
        let cache = Cache::temp()?;
        let barrier = Barrier::new(cache, "job");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            barrier.call(|| -> crate::Result<()> { panic!("inside the barrier") })
        }));
        assert!(caught.is_err());
        assert!(!barrier.lock().locked()?);
        Ok(())
    }

    #[test]
    fn threads_never_overlap() -> TestResult {
        let cache = Cache::temp()?;
        let barrier = Barrier::reentrant(cache, "counted");
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let step = barrier.wrap(|()| -> crate::Result<()> {
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::yield_now();
            inside.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..25).try_for_each(|_| step(()))))
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().map_err(|_| "worker panicked")?.map_err(Into::into))
        })
        .map_err(|e: Box<dyn std::error::Error + Send + Sync>| e.to_string())?;
        assert_eq!(most.load(Ordering::SeqCst), 1);
        Ok(())
    }
}
