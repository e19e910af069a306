//! The async `BoundedSemaphore`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dcache_core::{Storage, Tag};
use serde::Serialize;

use super::{DEFAULT_POLL, Held};
use crate::error::Result;
use crate::wait::{self, Patience};

/// The async twin of [`crate::BoundedSemaphore`]: at most `value` holders across tasks,
/// threads and processes (see the [module docs](super) for what runs where, and
/// [cancellation](super#cancellation)).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dcache_sync::future::BoundedSemaphore;
///
/// let semaphore = BoundedSemaphore::new(dcache_core::Cache::temp()?, "max-cons", 2);
/// let first = semaphore.acquire().await?;
/// let second = semaphore.acquire().await?;
/// assert!(semaphore.try_acquire().await?.is_none());
/// first.release().await?;
/// assert_eq!(semaphore.available().await?, 1);
/// drop(second); // given back on the blocking pool
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct BoundedSemaphore<S, K = String> {
    inner: Arc<crate::BoundedSemaphore<S, K>>,
    poll: Duration,
}

impl<S, K> Clone for BoundedSemaphore<S, K> {
    fn clone(&self) -> Self {
        BoundedSemaphore {
            inner: Arc::clone(&self.inner),
            poll: self.poll,
        }
    }
}

impl<S, K: fmt::Debug> fmt::Debug for BoundedSemaphore<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::BoundedSemaphore")
            .field("semaphore", &self.inner)
            .field("poll_interval", &self.poll)
            .finish()
    }
}

impl<S, K> From<crate::BoundedSemaphore<S, K>> for BoundedSemaphore<S, K> {
    fn from(semaphore: crate::BoundedSemaphore<S, K>) -> Self {
        BoundedSemaphore {
            inner: Arc::new(semaphore),
            poll: DEFAULT_POLL,
        }
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Clone + Send + Sync + 'static> BoundedSemaphore<S, K> {
    /// A semaphore of `value` permits on `key` in `store`
    /// ([`crate::BoundedSemaphore::new`]).
    pub fn new(store: S, key: K, value: u32) -> Self {
        crate::BoundedSemaphore::new(store, key, value).into()
    }

    fn map(
        self,
        f: impl FnOnce(crate::BoundedSemaphore<S, K>) -> crate::BoundedSemaphore<S, K>,
    ) -> Self {
        BoundedSemaphore {
            inner: Arc::new(f(Arc::unwrap_or_clone(self.inner))),
            poll: self.poll,
        }
    }

    /// Every acquire and release sets the key to expire `ttl` later
    /// ([`crate::BoundedSemaphore::expire`]).
    pub fn expire(self, ttl: Duration) -> Self {
        self.map(|s| s.expire(ttl))
    }

    /// The key is stored with this tag ([`crate::BoundedSemaphore::tag`]).
    pub fn tag(self, tag: impl Into<Tag>) -> Self {
        let tag = tag.into();
        self.map(|s| s.tag(tag))
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> BoundedSemaphore<S, K> {
    /// The longest pause between two polls for a release by another process
    /// ([`Lock::poll_interval`](super::Lock::poll_interval)).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    /// The blocking semaphore this one shares its key with.
    pub fn as_blocking(&self) -> &crate::BoundedSemaphore<S, K> {
        &self.inner
    }

    /// The semaphore's key.
    #[must_use]
    pub fn key(&self) -> &K {
        self.inner.key()
    }

    /// The number of permits.
    #[must_use]
    pub fn value(&self) -> u32 {
        self.inner.value()
    }

    /// Waits as long as it takes for a permit ([`crate::BoundedSemaphore::acquire`]).
    ///
    /// Dropping the future cancels the wait; an attempt already running on the blocking pool
    /// gives back the permit it took.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails;
    /// [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    pub async fn acquire(&self) -> Result<SemaphoreGuard<S, K>> {
        super::required(self.key(), None, |p| self.acquire_with(p)).await
    }

    /// Waits up to `timeout` for a permit.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when no permit came free; otherwise as
    /// [`acquire`](Self::acquire).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<S, K>> {
        super::required(self.key(), Some(timeout), |p| self.acquire_with(p)).await
    }

    /// Takes a permit if one is free now.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire), and a store busy for its whole timeout.
    pub async fn try_acquire(&self) -> Result<Option<SemaphoreGuard<S, K>>> {
        self.acquire_with(Patience::Once).await
    }

    async fn acquire_with(&self, patience: Patience) -> Result<Option<SemaphoreGuard<S, K>>> {
        super::acquire(
            || wait::registry_id(self.key()),
            patience,
            self.poll,
            || {
                let semaphore = Arc::clone(&self.inner);
                move || {
                    super::look_then_take(
                        || Ok(semaphore.free()? > 0),
                        || {
                            Ok(semaphore.attempt()?.then(|| SemaphoreGuard {
                                semaphore: Arc::clone(&semaphore),
                                armed: true,
                            }))
                        },
                    )
                }
            },
        )
        .await
    }

    /// Gives a permit back (after [`SemaphoreGuard::forget`]).
    ///
    /// # Errors
    ///
    /// [`Error::OverRelease`](crate::Error::OverRelease) when every permit is already free;
    /// [`Error::Store`](crate::Error::Store) when the store fails.
    pub async fn release(&self) -> Result<()> {
        let semaphore = Arc::clone(&self.inner);
        super::off_worker(move || semaphore.release()).await?
    }

    /// The number of free permits ([`crate::BoundedSemaphore::available`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails;
    /// [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    pub async fn available(&self) -> Result<u32> {
        let semaphore = Arc::clone(&self.inner);
        super::off_worker(move || semaphore.available()).await?
    }
}

/// A permit of an async [`BoundedSemaphore`]; given back when dropped (on the blocking pool).
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> {
    semaphore: Arc<crate::BoundedSemaphore<S, K>>,
    armed: bool,
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> fmt::Debug
    for SemaphoreGuard<S, K>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::SemaphoreGuard")
            .field("key", self.semaphore.key())
            .field("armed", &self.armed)
            .finish()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> SemaphoreGuard<S, K> {
    /// Gives the permit back now.
    ///
    /// # Errors
    ///
    /// [`Error::OverRelease`](crate::Error::OverRelease) when every permit is already free
    /// (the key expired meanwhile); [`Error::Store`](crate::Error::Store) when the store
    /// fails.
    pub async fn release(mut self) -> Result<()> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        let semaphore = Arc::clone(&self.semaphore);
        super::off_worker(move || semaphore.release()).await?
    }

    /// Keeps the permit past the guard; give it back with [`BoundedSemaphore::release`].
    pub fn forget(mut self) {
        self.armed = false;
    }
}

fn release_logged<S: Storage, K: Serialize + fmt::Debug>(
    semaphore: &crate::BoundedSemaphore<S, K>,
) {
    if let Err(e) = semaphore.release() {
        log::warn!("dropping a permit of semaphore {:?}: {e}", semaphore.key());
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Held for SemaphoreGuard<S, K> {
    fn release_here(mut self) {
        if std::mem::replace(&mut self.armed, false) {
            release_logged(&self.semaphore);
        }
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Drop for SemaphoreGuard<S, K> {
    fn drop(&mut self) {
        if std::mem::replace(&mut self.armed, false) {
            let semaphore = Arc::clone(&self.semaphore);
            super::detach(move || release_logged(&semaphore));
        }
    }
}
