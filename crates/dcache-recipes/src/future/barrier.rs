//! The async `Barrier`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use dcache_core::{Storage, Tag};
use dcache_sync::future::{Lock, RLock};

use crate::error::{Error, Result};

/// The lock a barrier holds around each call.
#[derive(Clone)]
enum BarrierLock<S> {
    Lock(Lock<S>),
    RLock(RLock<S>),
}

/// The async twin of [`crate::Barrier`]: calls (async closures) run one at a time across
/// every task, thread and process sharing the store, under an async
/// [`Lock`](dcache_sync::future::Lock) on the barrier's name ([`Barrier::new`]) or an async
/// [`RLock`](dcache_sync::future::RLock), which the holding task may re-enter
/// ([`Barrier::reentrant`]). The key holds what the blocking barrier's lock stores, so the
/// two exclude each other.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::time::Duration;
/// use dcache_recipes::future::Barrier;
///
/// let cache = dcache_core::Cache::temp()?;
/// let barrier = Barrier::new(cache, "critical_file_operation").expire(Duration::from_secs(60));
/// let mut tasks = Vec::new();
/// for worker in 0..5 {
///     let barrier = barrier.clone();
///     tasks.push(tokio::spawn(async move {
///         barrier
///             .call(|| async move {
///                 // Only one task (of any process) is here at a time.
///                 tokio::time::sleep(Duration::from_millis(1)).await;
///                 Ok::<_, dcache_recipes::Error>(format!("processed file_{worker}.txt"))
///             })
///             .await
///     }));
/// }
/// for task in tasks {
///     task.await??;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Barrier<S> {
    name: String,
    lock: BarrierLock<S>,
}

impl<S> fmt::Debug for Barrier<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, lock): (&str, &dyn fmt::Debug) = match &self.lock {
            BarrierLock::Lock(l) => ("Lock", l),
            BarrierLock::RLock(l) => ("RLock", l),
        };
        f.debug_struct("future::Barrier")
            .field("name", &self.name)
            .field("kind", &kind)
            .field("lock", lock)
            .finish()
    }
}

impl<S: Storage> Barrier<S> {
    /// A barrier named `name` under a [`Lock`](dcache_sync::future::Lock): one call at a
    /// time; a call that enters the barrier again from inside waits for itself forever.
    pub fn new(store: S, name: impl Into<String>) -> Self {
        let name = name.into();
        Barrier {
            lock: BarrierLock::Lock(Lock::new(store, name.clone())),
            name,
        }
    }

    /// A barrier named `name` under an [`RLock`](dcache_sync::future::RLock): the task
    /// holding it may enter again from inside a call.
    pub fn reentrant(store: S, name: impl Into<String>) -> Self {
        let name = name.into();
        Barrier {
            lock: BarrierLock::RLock(RLock::new(store, name.clone())),
            name,
        }
    }

    /// The lock expires `ttl` after it is taken (default: never), so a process that crashes
    /// inside a call frees it. Give it longer than a call takes.
    pub fn expire(self, ttl: Duration) -> Self {
        let lock = match self.lock {
            BarrierLock::Lock(l) => BarrierLock::Lock(l.expire(ttl)),
            BarrierLock::RLock(l) => BarrierLock::RLock(l.expire(ttl)),
        };
        Barrier { lock, ..self }
    }

    /// The lock's key is stored with this tag (default: none).
    pub fn tag(self, tag: impl Into<Tag>) -> Self {
        let tag = tag.into();
        let lock = match self.lock {
            BarrierLock::Lock(l) => BarrierLock::Lock(l.tag(tag)),
            BarrierLock::RLock(l) => BarrierLock::RLock(l.tag(tag)),
        };
        Barrier { lock, ..self }
    }

    /// The barrier's name (its lock's key).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Awaits `f()` while holding the barrier's lock: no other call through a barrier of the
    /// same name runs meanwhile, in any task, thread or process.
    ///
    /// If this future is dropped while `f`'s runs, `f`'s future is dropped and the lock is
    /// released (on the blocking pool).
    ///
    /// # Errors
    ///
    /// `f`'s error, or the lock's converted into `E`: [`Error::Sync`] with
    /// `LockLost` or `NotOwner` when the lock expired while `f` ran (it was not protected
    /// for all its run), or a store error.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match &self.lock {
            BarrierLock::Lock(lock) => {
                let guard = lock.acquire().await.map_err(Error::from)?;
                let out = f().await;
                guard.unlock().await.map_err(Error::from)?;
                out
            }
            BarrierLock::RLock(lock) => {
                let guard = lock.acquire().await.map_err(Error::from)?;
                let out = f().await;
                guard.unlock().await.map_err(Error::from)?;
                out
            }
        }
    }
}
