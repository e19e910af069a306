//! The async `Lock`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dcache_core::{Storage, Tag};
use serde::Serialize;

use super::{DEFAULT_POLL, Held};
use crate::error::Result;
use crate::wait::{self, Patience};

/// The async twin of [`crate::Lock`]: the same key, token and fencing token, with waits that
/// are `.await`s (see the [module docs](super) for what runs where, and cancellation).
///
/// # Examples
///
/// Tasks taking turns:
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dcache_core::Cache;
/// use dcache_sync::future::Lock;
///
/// let lock = Lock::new(Cache::temp()?, "resource_lock");
/// let mut tasks = Vec::new();
/// for worker in 0..5 {
///     let lock = lock.clone();
///     tasks.push(tokio::spawn(async move {
///         let guard = lock.acquire().await?;
///         println!("worker {worker} has the lock, fencing token {}", guard.fencing_token());
///         guard.unlock().await
///     }));
/// }
/// for task in tasks {
///     task.await??;
/// }
/// assert!(!lock.locked().await?);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Lock<S, K = String> {
    inner: Arc<crate::Lock<S, K>>,
    poll: Duration,
}

impl<S, K> Clone for Lock<S, K> {
    fn clone(&self) -> Self {
        Lock {
            inner: Arc::clone(&self.inner),
            poll: self.poll,
        }
    }
}

impl<S, K: fmt::Debug> fmt::Debug for Lock<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::Lock")
            .field("lock", &self.inner)
            .field("poll_interval", &self.poll)
            .finish()
    }
}

impl<S, K> From<crate::Lock<S, K>> for Lock<S, K> {
    fn from(lock: crate::Lock<S, K>) -> Self {
        Lock {
            inner: Arc::new(lock),
            poll: DEFAULT_POLL,
        }
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Clone + Send + Sync + 'static> Lock<S, K> {
    /// A lock on `key` in `store`, without expiry or tag ([`crate::Lock::new`]).
    pub fn new(store: S, key: K) -> Self {
        crate::Lock::new(store, key).into()
    }

    fn map(self, f: impl FnOnce(crate::Lock<S, K>) -> crate::Lock<S, K>) -> Self {
        Lock {
            inner: Arc::new(f(Arc::unwrap_or_clone(self.inner))),
            poll: self.poll,
        }
    }

    /// Each acquisition expires `ttl` after it is made ([`crate::Lock::expire`]).
    pub fn expire(self, ttl: Duration) -> Self {
        self.map(|l| l.expire(ttl))
    }

    /// The lock's key is stored with this tag ([`crate::Lock::tag`]).
    pub fn tag(self, tag: impl Into<Tag>) -> Self {
        let tag = tag.into();
        self.map(|l| l.tag(tag))
    }

    /// Acquisitions skip the fencing counter ([`crate::Lock::without_fencing`]).
    pub fn without_fencing(self) -> Self {
        self.map(crate::Lock::without_fencing)
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Lock<S, K> {
    /// The longest pause between two polls for a release by another process (default 5 ms).
    /// A release in this process wakes waiters at once whatever this is; a longer interval
    /// costs fewer store reads while waiting, and notices other processes' releases later.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    /// The blocking lock this one shares its key with.
    pub fn as_blocking(&self) -> &crate::Lock<S, K> {
        &self.inner
    }

    /// The lock's key.
    #[must_use]
    pub fn key(&self) -> &K {
        self.inner.key()
    }

    /// Waits as long as it takes for the lock ([`crate::Lock::acquire`]), without blocking
    /// the worker thread.
    ///
    /// Dropping the future cancels the wait; an attempt already running on the blocking pool
    /// gives back the lock it took (see the [module docs](super#cancellation)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails (not when it is merely busy);
    /// [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    pub async fn acquire(&self) -> Result<LockGuard<S, K>> {
        super::required(self.key(), None, |p| self.acquire_with(p)).await
    }

    /// Waits up to `timeout` for the lock ([`crate::Lock::acquire_timeout`]).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when the lock stayed taken; otherwise as
    /// [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), dcache_sync::Error> {
    /// use std::time::Duration;
    ///
    /// let lock = dcache_sync::future::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let _held = lock.acquire().await?;
    /// let err = lock.acquire_timeout(Duration::from_millis(20)).await.unwrap_err();
    /// assert!(err.is_timeout(), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<S, K>> {
        super::required(self.key(), Some(timeout), |p| self.acquire_with(p)).await
    }

    /// Takes the lock if it is free now ([`crate::Lock::try_acquire`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails or stays busy for its
    /// timeout; [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), dcache_sync::Error> {
    /// let lock = dcache_sync::future::Lock::new(dcache_core::Cache::temp()?, "job");
    /// let held = lock.try_acquire().await?.expect("free");
    /// assert!(lock.try_acquire().await?.is_none());
    /// held.unlock().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn try_acquire(&self) -> Result<Option<LockGuard<S, K>>> {
        self.acquire_with(Patience::Once).await
    }

    async fn acquire_with(&self, patience: Patience) -> Result<Option<LockGuard<S, K>>> {
        let token = wait::new_token();
        super::acquire(
            || wait::registry_id(self.key()),
            patience,
            self.poll,
            || {
                let lock = Arc::clone(&self.inner);
                let token = token.clone();
                move || {
                    super::look_then_take(
                        || lock.looks_free(),
                        || {
                            Ok(lock.attempt(&token)?.map(|fence| LockGuard {
                                lock: Arc::clone(&lock),
                                token: Some(token),
                                fence,
                            }))
                        },
                    )
                }
            },
        )
        .await
    }

    /// Whether anyone holds the lock ([`crate::Lock::locked`]).
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    pub async fn locked(&self) -> Result<bool> {
        let lock = Arc::clone(&self.inner);
        super::off_worker(move || lock.locked()).await?
    }

    /// Releases the acquisition holding `token` ([`crate::Lock::release`]). Dropping the
    /// future after its first poll does not stop the release.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`](crate::Error::LockLost) when the key no longer holds `token`;
    /// otherwise as [`try_acquire`](Self::try_acquire).
    pub async fn release(&self, token: impl Into<String>) -> Result<()> {
        let lock = Arc::clone(&self.inner);
        let token = token.into();
        super::off_worker(move || lock.release(&token)).await?
    }

    /// Removes the lock whoever holds it ([`crate::Lock::force_release`]).
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    pub async fn force_release(&self) -> Result<bool> {
        let lock = Arc::clone(&self.inner);
        super::off_worker(move || lock.force_release()).await?
    }
}

/// One acquisition of an async [`Lock`]; releases it when dropped (on the blocking pool, see
/// the [module docs](super#cancellation)). It owns what it needs, so it can be moved into
/// another task.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> {
    lock: Arc<crate::Lock<S, K>>,
    /// `None` once released or forgotten.
    token: Option<String>,
    fence: u64,
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> fmt::Debug for LockGuard<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::LockGuard")
            .field("key", self.lock.key())
            .field("token", &self.token)
            .field("fencing_token", &self.fence)
            .finish()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> LockGuard<S, K> {
    /// This acquisition's token, as stored under the lock's key.
    #[must_use]
    pub fn token(&self) -> &str {
        self.token.as_deref().unwrap_or_default()
    }

    /// This acquisition's fencing token ([`crate::LockGuard::fencing_token`]): larger than
    /// that of every earlier acquisition of the key, blocking or async, anywhere.
    #[must_use]
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }

    /// Whether the key still holds this acquisition.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails;
    /// [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    pub async fn is_held(&self) -> Result<bool> {
        let lock = Arc::clone(&self.lock);
        let token = self.token().to_owned();
        super::off_worker(move || lock.holds(&token)).await?
    }

    /// Releases the lock now. Dropping the future before its first poll releases through the
    /// guard's drop; after it, the release runs to completion on the blocking pool.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`](crate::Error::LockLost) when the acquisition expired or was
    /// removed; [`Error::Store`](crate::Error::Store) when the store fails.
    pub async fn unlock(mut self) -> Result<()> {
        let Some(token) = self.token.take() else {
            return Ok(());
        };
        let lock = Arc::clone(&self.lock);
        super::off_worker(move || lock.release(&token)).await?
    }

    /// Keeps the lock held past the guard and returns its token, for [`Lock::release`] (or
    /// the blocking [`crate::Lock::release`]) later.
    #[must_use = "without its token the lock can only expire or be force-released"]
    pub fn forget(mut self) -> String {
        self.token.take().unwrap_or_default()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Held for LockGuard<S, K> {
    fn release_here(mut self) {
        if let Some(token) = self.token.take() {
            release_logged(&self.lock, &token);
        }
    }
}

fn release_logged<S: Storage, K: Serialize + fmt::Debug>(lock: &crate::Lock<S, K>, token: &str) {
    if let Err(e) = lock.release(token) {
        log::warn!("dropping a guard of lock {:?}: {e}", lock.key());
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Drop for LockGuard<S, K> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            let lock = Arc::clone(&self.lock);
            super::detach(move || release_logged(&lock, &token));
        }
    }
}
