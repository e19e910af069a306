//! The async recipes for tokio (feature `tokio`): [`Throttle`] with an async wait,
//! [`Barrier`] around an async closure, and [`Memoized`] and [`MemoizeStampede`] over async
//! functions.
//!
//! They store what the blocking recipes of the crate root store, under the same keys, so
//! blocking and async callers (and python's recipes, as far as the blocking ones share with
//! python: see the [crate docs](crate#python-compatibility)) share one throttle, barrier or
//! memoized result.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), dcache_recipes::Error> {
//! use std::time::Duration;
//! use dcache_core::Cache;
//! use dcache_recipes::future::{Barrier, MemoizeStampede, Throttle};
//!
//! let cache = Cache::temp()?;
//! let throttle = Throttle::new(cache.clone(), "api", 100, Duration::from_secs(1)).await?;
//! throttle.wait().await?; // an async sleep when the bucket is empty
//!
//! let barrier = Barrier::new(cache.clone(), "migrate").expire(Duration::from_secs(60));
//! let migrated = barrier.call(|| async { Ok::<_, dcache_recipes::Error>(12) }).await?;
//!
//! let memo = MemoizeStampede::new(cache, "square", Duration::from_secs(300));
//! let square = |&(n,): &(u64,)| async move { Ok::<_, dcache_recipes::Error>(n * n) };
//! assert_eq!(memo.call((12,), square).await?, 144);
//! assert_eq!(migrated, 12);
//! # Ok(())
//! # }
//! ```
//!
//! # What runs where
//!
//! As for `dcache_sync::future` (whose module docs give the rule): every store operation
//! runs on tokio's blocking pool, never on a runtime worker; a throttle's wait is a
//! [`tokio::time::sleep`]; a barrier waits for its lock as an async lock does. The functions
//! given to `call` are the caller's futures and run in the calling task (an early
//! recomputation of [`MemoizeStampede`] in a task of its own).
//!
//! # One computation per cold key
//!
//! [`Memoized::call`] and [`MemoizeStampede::call`] share a computation: while one task
//! computes the result of a key that is not cached, the other tasks of this process asking for
//! that key wait for it (asynchronously) and then read the result it stored, instead of
//! computing it again. If the computation fails (or its future is dropped), nothing is stored
//! and the next waiting task computes it itself: errors are not cached.
//!
//! # Cancellation
//!
//! | operation | when its future is dropped mid-way |
//! |---|---|
//! | `Throttle::wait`, `Throttle::call` | a bucket update already running on the blocking pool completes: the call may have spent a token without running. |
//! | `Barrier::call` | the lock, if taken, is released (on the blocking pool, see `dcache_sync::future`); the closure's future is dropped wherever it was. |
//! | `Memoized::call`, `MemoizeStampede::call` | the computation's future is dropped, nothing is stored, and the next task waiting for the key computes it; a store write already running completes whole. |
//! | `MemoizeStampede::join_background` | nothing changes. |

mod barrier;
mod memo;
mod throttle;

use tokio::runtime::Handle;

use crate::error::{Error, Result};

pub use barrier::Barrier;
pub use memo::{MemoizeStampede, Memoized};
pub use throttle::Throttle;

/// Runs `f` (store operations) on tokio's blocking pool. If the returned future is dropped,
/// `f` still runs to completion (or not at all, if it had not started).
pub(crate) async fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let handle = Handle::try_current().map_err(|_| {
        Error::Sync(dcache_sync::Error::Runtime {
            reason: "no tokio runtime is current",
        })
    })?;
    handle.spawn_blocking(f).await.map_err(|_| {
        Error::Sync(dcache_sync::Error::Runtime {
            reason: "the blocking store operation did not report (the runtime shut down, or \
                     it panicked)",
        })
    })
}
