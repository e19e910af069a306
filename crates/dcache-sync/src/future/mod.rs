//! The async API for tokio: [`Lock`], [`RLock`], [`BoundedSemaphore`] and [`Averager`]
//! whose waits are `.await`s (feature `tokio`).
//!
//! Each type is the blocking type of the crate root behind an [`Arc`](std::sync::Arc), with the same keys,
//! stored values and behaviour: an async [`Lock`] and a blocking [`crate::Lock`] on the same
//! key exclude each other, in one process or several, and python's recipes share the keys as
//! described in the [crate docs](crate#python-compatibility).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use dcache_core::Cache;
//! use dcache_sync::future::{BoundedSemaphore, Lock};
//!
//! let cache = Cache::temp()?;
//! let lock = Lock::new(cache.clone(), "report-123").expire(Duration::from_secs(60));
//! let guard = lock.acquire().await?; // other tasks keep running while this waits
//! assert!(lock.locked().await?);
//! guard.unlock().await?;
//!
//! let semaphore = BoundedSemaphore::new(cache, "max-cons", 2);
//! let permit = semaphore.acquire().await?;
//! assert_eq!(semaphore.available().await?, 1);
//! permit.release().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The rule: nothing that can wait runs on a runtime worker
//!
//! A tokio worker thread runs many tasks; a call that blocks it stalls them all. So:
//!
//! - Every store operation (a SQLite statement, which may wait for another process's write
//!   lock; a Redis round trip) runs on tokio's blocking pool through
//!   [`spawn_blocking`](tokio::task::spawn_blocking), never on the worker.
//! - Waiting for a lock or a permit is an async wait: a release in this process (by the async
//!   or the blocking API) wakes the waiters of that key at once through a per-key
//!   [`Notify`](tokio::sync::Notify); a release in another process is noticed by the next
//!   poll, the pause between polls an async [`sleep`](tokio::time::sleep) growing from about
//!   100 µs to [`poll_interval`](Lock::poll_interval) (default 5 ms), with jitter.
//! - No store operation runs inline on the worker, not even a short read: a SQLite read
//!   can still wait (a checkpoint, a slow disk) and a Redis read is a network round trip.
//!
//! The runtime needs its timer (`enable_time`, or `enable_all`); called outside a runtime,
//! an operation returns [`Error::Runtime`].
//!
//! # Cancellation
//!
//! Dropping a future of this module at any `.await` point never leaves a lock or permit held
//! by nobody:
//!
//! | operation | when its future is dropped mid-way |
//! |---|---|
//! | `acquire`, `acquire_timeout`, `try_acquire` | an attempt already running on the blocking pool finishes there; it sends its result back through a channel and, if the receiver is gone, releases what it took on that thread. Nothing is held afterwards. |
//! | `unlock`, `release` (guards and handles) | the release already running on the blocking pool completes; a release not started yet runs when the guard is dropped (see below). |
//! | `locked`, `owner`, `available`, `is_held`, `Averager::get` | nothing changes. |
//! | `Averager::add`, `Averager::pop` | the update runs to completion on the blocking pool, or not at all if it had not started: never half. |
//!
//! Guards release when dropped. `Drop` cannot `.await`, so a dropped guard hands its release
//! to the blocking pool when a tokio runtime is current (fire-and-forget; a failure is logged
//! with the `log` crate at warn level), and releases inline otherwise. A release handed over
//! while the runtime shuts down may not run: the key then frees at its expiry. Call the
//! guard's `unlock().await` (or `release().await`) to release for certain and see errors.
//!
//! # Owners of an async `RLock`
//!
//! A task moves between worker threads, so an async [`RLock`] is owned by a task, not by a
//! thread: its owner id is `"<pid>-<nonce>-task-<id>"` ([`task_owner_id`]), the process id,
//! the process's 128 random bits of [`owner_id`](crate::owner_id) and tokio's
//! [task id](tokio::task::Id). Outside a task (the future passed to `block_on`, which never
//! leaves its thread), the owner is the thread: [`owner_id`](crate::owner_id). The stored
//! value keeps python's format, `('<owner id>', depth)`, so python and blocking Rust holders
//! exclude async ones and none of these ids equals another.
//!
//! Each guard remembers the owner that acquired it and releases as that owner, so a guard
//! may be moved to and dropped in another task. [`RLock::release`] (after
//! [`RLockGuard::forget`]) releases as the calling task.

mod averager;
mod lock;
mod rlock;
mod semaphore;

use std::fmt;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::wait::{self, Backoff, Patience, Waiter};

pub use averager::Averager;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard, task_owner_id};
pub use semaphore::{BoundedSemaphore, SemaphoreGuard};

/// The default longest pause between two polls for a release by another process.
pub(crate) const DEFAULT_POLL: Duration = wait::BACKOFF_MAX;

/// The error of an operation without a runtime.
fn no_runtime() -> Error {
    Error::Runtime {
        reason: "no tokio runtime is current",
    }
}

/// The error of an operation whose blocking half never reported.
fn lost() -> Error {
    Error::Runtime {
        reason: "the blocking store operation did not report (the runtime shut down, or it \
                 panicked)",
    }
}

/// Runs `f` (store operations) on tokio's blocking pool. If the returned future is dropped,
/// `f` still runs to completion (or not at all, if it had not started).
pub(crate) async fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let handle = Handle::try_current().map_err(|_| no_runtime())?;
    handle.spawn_blocking(f).await.map_err(|_| lost())
}

/// Runs `f` off the worker without waiting for it: from a `Drop`, on the blocking pool when a
/// runtime is current, inline otherwise.
pub(crate) fn detach(f: impl FnOnce() + Send + 'static) {
    match Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(f)),
        Err(_) => f(),
    }
}

/// Something an acquisition took, which it gives back if nobody receives it.
pub(crate) trait Held: Send + 'static {
    /// Releases it on the calling thread (a blocking-pool thread), logging failures.
    fn release_here(self);
}

/// One attempt on the blocking pool. The attempt sends its result back through a channel;
/// if the receiving future was dropped meanwhile, it releases what it took itself.
async fn attempt_off_worker<G: Held>(
    attempt: impl FnOnce() -> Result<Option<G>> + Send + 'static,
) -> Result<Option<G>> {
    let handle = Handle::try_current().map_err(|_| no_runtime())?;
    let (tx, rx) = oneshot::channel();
    drop(handle.spawn_blocking(move || {
        if let Err(Ok(Some(taken))) = tx.send(attempt()) {
            taken.release_here();
        }
    }));
    rx.await.map_err(|_| lost())?
}

/// Waits (asynchronously) until an attempt made by `make` succeeds, as
/// [`wait::acquire`] does for threads: each attempt (a read, then a write if the read says
/// it may succeed) runs on the blocking pool; between attempts the task waits for a release of
/// the key in this process or a pause, whichever comes first.
pub(crate) async fn acquire<G, A>(
    id: impl FnOnce() -> Vec<u8>,
    patience: Patience,
    max_poll: Duration,
    mut make: impl FnMut() -> A,
) -> Result<Option<G>>
where
    G: Held,
    A: FnOnce() -> Result<Option<G>> + Send + 'static,
{
    if let Patience::Once = patience {
        return attempt_off_worker(make()).await;
    }
    let waiter = Waiter::register(id());
    let mut backoff = Backoff::with_max(max_poll);
    loop {
        // Created before the look: it sees every release from here on.
        let released = waiter.released();
        match attempt_off_worker(make()).await {
            Ok(Some(won)) => return Ok(Some(won)),
            Ok(None) => {}
            // A store busy for its whole write timeout is "not yet", as for threads.
            Err(e) if e.is_store_busy() => {}
            Err(e) => return Err(e),
        }
        let mut pause = backoff.next_pause();
        if let Patience::Until(deadline) = patience {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            pause = pause.min(deadline - now);
        }
        // Either a release or the pause ends the wait; which one does not matter.
        let _ = tokio::time::timeout(pause, released).await;
    }
}

/// Runs an acquisition that must succeed, waiting forever (`timeout` `None`) or up to
/// `timeout` ([`Error::Timeout`] then).
pub(crate) async fn required<T, K: fmt::Debug + ?Sized, F>(
    key: &K,
    timeout: Option<Duration>,
    acquire: impl FnOnce(Patience) -> F,
) -> Result<T>
where
    F: Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    let patience = timeout
        .and_then(|t| started.checked_add(t))
        .map_or(Patience::Forever, Patience::Until);
    acquire(patience)
        .await?
        .ok_or_else(|| wait::timeout_error(key, started))
}

/// Runs a waiting attempt's probe and write: the write only if the probe says it may succeed.
pub(crate) fn look_then_take<T>(
    looks_free: impl FnOnce() -> Result<bool>,
    take: impl FnOnce() -> Result<Option<T>>,
) -> Result<Option<T>> {
    if looks_free()? { take() } else { Ok(None) }
}
