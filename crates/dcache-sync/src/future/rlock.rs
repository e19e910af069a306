//! The async `RLock`, owned by a task.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dcache_core::{Storage, Tag};
use serde::Serialize;

use super::{DEFAULT_POLL, Held};
use crate::error::Result;
use crate::wait::{self, Patience};

/// The calling task's owner id, `"<pid>-<nonce>-task-<task id>"`, as an async [`RLock`]
/// stores it: the process id, the 32 hex digits of random bits drawn once per process (as in
/// [`owner_id`](crate::owner_id)) and tokio's [task id](tokio::task::try_id). Outside a
/// tokio task (the future given to `block_on`, which stays on its thread), the calling
/// thread's [`owner_id`](crate::owner_id).
///
/// Task ids are unique among a process's tasks alive at once, and the random part tells
/// processes and machines apart, so no two live owners anywhere share an id; none equals a
/// thread's id or python's `'<pid>-<thread ident>'`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tokio::task::JoinError> {
/// use dcache_sync::future::task_owner_id;
///
/// let me = tokio::spawn(async { task_owner_id() }).await?;
/// assert!(me.contains("-task-"));
/// let other = tokio::spawn(async { task_owner_id() }).await?;
/// assert_ne!(me, other);
/// // Outside a task, the thread is the owner.
/// assert_eq!(task_owner_id(), dcache_sync::owner_id());
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn task_owner_id() -> String {
    match tokio::task::try_id() {
        Some(id) => format!("{}-{}-task-{id}", std::process::id(), wait::process_nonce()),
        None => wait::owner_id(),
    }
}

/// The async twin of [`crate::RLock`], owned by a task instead of a thread: the task that
/// holds it may acquire it again, other tasks wait (see the
/// [module docs](super#owners-of-an-async-rlock) for the owner id and
/// [cancellation](super#cancellation)).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dcache_sync::future::RLock;
///
/// let rlock = RLock::new(dcache_core::Cache::temp()?, "user-123");
/// let task = tokio::spawn({
///     let rlock = rlock.clone();
///     async move {
///         let outer = rlock.acquire().await?;
///         let inner = rlock.acquire().await?; // the same task may enter again
///         assert_eq!(rlock.owner().await?.map(|(_, depth)| depth), Some(2));
///         inner.unlock().await?;
///         outer.unlock().await
///     }
/// });
/// task.await??;
/// assert!(!rlock.locked().await?);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct RLock<S, K = String> {
    inner: Arc<crate::RLock<S, K>>,
    poll: Duration,
}

impl<S, K> Clone for RLock<S, K> {
    fn clone(&self) -> Self {
        RLock {
            inner: Arc::clone(&self.inner),
            poll: self.poll,
        }
    }
}

impl<S, K: fmt::Debug> fmt::Debug for RLock<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::RLock")
            .field("rlock", &self.inner)
            .field("poll_interval", &self.poll)
            .finish()
    }
}

impl<S, K> From<crate::RLock<S, K>> for RLock<S, K> {
    fn from(rlock: crate::RLock<S, K>) -> Self {
        RLock {
            inner: Arc::new(rlock),
            poll: DEFAULT_POLL,
        }
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Clone + Send + Sync + 'static> RLock<S, K> {
    /// A re-entrant lock on `key` in `store`, without expiry or tag ([`crate::RLock::new`]).
    pub fn new(store: S, key: K) -> Self {
        crate::RLock::new(store, key).into()
    }

    fn map(self, f: impl FnOnce(crate::RLock<S, K>) -> crate::RLock<S, K>) -> Self {
        RLock {
            inner: Arc::new(f(Arc::unwrap_or_clone(self.inner))),
            poll: self.poll,
        }
    }

    /// Every acquire and release sets the key to expire `ttl` later
    /// ([`crate::RLock::expire`]).
    pub fn expire(self, ttl: Duration) -> Self {
        self.map(|l| l.expire(ttl))
    }

    /// The key is stored with this tag ([`crate::RLock::tag`]).
    pub fn tag(self, tag: impl Into<Tag>) -> Self {
        let tag = tag.into();
        self.map(|l| l.tag(tag))
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> RLock<S, K> {
    /// The longest pause between two polls for a release by another process
    /// ([`Lock::poll_interval`](super::Lock::poll_interval)).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    /// The blocking lock this one shares its key with (owned by threads, not tasks).
    pub fn as_blocking(&self) -> &crate::RLock<S, K> {
        &self.inner
    }

    /// The lock's key.
    #[must_use]
    pub fn key(&self) -> &K {
        self.inner.key()
    }

    /// Waits as long as it takes for the lock, or enters it again when the calling task
    /// holds it ([`crate::RLock::acquire`]).
    ///
    /// Dropping the future cancels the wait; an attempt already running on the blocking pool
    /// gives back the level it took.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails;
    /// [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    pub async fn acquire(&self) -> Result<RLockGuard<S, K>> {
        super::required(self.key(), None, |p| self.acquire_with(p)).await
    }

    /// Waits up to `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when another owner kept it; otherwise as
    /// [`acquire`](Self::acquire).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<S, K>> {
        super::required(self.key(), Some(timeout), |p| self.acquire_with(p)).await
    }

    /// Takes the lock if it is free or held by the calling task.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire), and a store busy for its whole timeout.
    pub async fn try_acquire(&self) -> Result<Option<RLockGuard<S, K>>> {
        self.acquire_with(Patience::Once).await
    }

    async fn acquire_with(&self, patience: Patience) -> Result<Option<RLockGuard<S, K>>> {
        let me = task_owner_id();
        super::acquire(
            || wait::registry_id(self.key()),
            patience,
            self.poll,
            || {
                let rlock = Arc::clone(&self.inner);
                let me = me.clone();
                move || {
                    if !rlock.looks_free_for(&me)? || !rlock.attempt_as(&me)? {
                        return Ok(None);
                    }
                    Ok(Some(RLockGuard {
                        rlock,
                        owner: Some(me),
                    }))
                }
            },
        )
        .await
    }

    /// Releases one level of the calling task's hold (after [`RLockGuard::forget`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`](crate::Error::NotOwner) when the calling task does not hold it;
    /// [`Error::Store`](crate::Error::Store) when the store fails.
    pub async fn release(&self) -> Result<()> {
        let rlock = Arc::clone(&self.inner);
        let me = task_owner_id();
        super::off_worker(move || rlock.release_as(&me)).await?
    }

    /// Whether anyone holds the lock ([`crate::RLock::locked`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the store fails;
    /// [`Error::Runtime`](crate::Error::Runtime) outside a tokio runtime.
    pub async fn locked(&self) -> Result<bool> {
        Ok(self.owner().await?.is_some())
    }

    /// The holder's owner id and depth ([`crate::RLock::owner`]).
    ///
    /// # Errors
    ///
    /// As [`locked`](Self::locked).
    pub async fn owner(&self) -> Result<Option<(String, u64)>> {
        let rlock = Arc::clone(&self.inner);
        super::off_worker(move || rlock.owner()).await?
    }
}

/// One level of an async [`RLock`]'s hold; releases it when dropped. It releases as the owner
/// that acquired it, so it may be moved to, and dropped in, another task.
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> {
    rlock: Arc<crate::RLock<S, K>>,
    /// The acquiring owner; `None` once released or forgotten.
    owner: Option<String>,
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> fmt::Debug
    for RLockGuard<S, K>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::RLockGuard")
            .field("key", self.rlock.key())
            .field("owner", &self.owner)
            .finish()
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> RLockGuard<S, K> {
    /// The owner id this level was acquired by.
    #[must_use]
    pub fn owner(&self) -> &str {
        self.owner.as_deref().unwrap_or_default()
    }

    /// Releases this level now.
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`](crate::Error::NotOwner) when the owner no longer holds it (it
    /// expired); [`Error::Store`](crate::Error::Store) when the store fails.
    pub async fn unlock(mut self) -> Result<()> {
        let Some(owner) = self.owner.take() else {
            return Ok(());
        };
        let rlock = Arc::clone(&self.rlock);
        super::off_worker(move || rlock.release_as(&owner)).await?
    }

    /// Keeps the level held past the guard; release it with [`RLock::release`] from the
    /// same task.
    pub fn forget(mut self) {
        self.owner = None;
    }
}

fn release_logged<S: Storage, K: Serialize + fmt::Debug>(rlock: &crate::RLock<S, K>, owner: &str) {
    if let Err(e) = rlock.release_as(owner) {
        log::warn!("dropping a guard of rlock {:?}: {e}", rlock.key());
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Held for RLockGuard<S, K> {
    fn release_here(mut self) {
        if let Some(owner) = self.owner.take() {
            release_logged(&self.rlock, &owner);
        }
    }
}

impl<S: Storage, K: Serialize + fmt::Debug + Send + Sync + 'static> Drop for RLockGuard<S, K> {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            let rlock = Arc::clone(&self.rlock);
            super::detach(move || release_logged(&rlock, &owner));
        }
    }
}
