//! Locks, semaphores and running averages shared by threads and processes through a dcache
//! store: python-diskcache's `Lock`, `RLock`, `BoundedSemaphore` and `Averager` recipes.
//!
//! Most users want the [`dcache`](https://docs.rs/dcache) facade, which re-exports this crate
//! as `dcache::sync` and its types at its root.
//!
//! ```
//! use std::time::Duration;
//! use dcache_core::{Cache, EvictionPolicy};
//! use dcache_sync::{Averager, BoundedSemaphore, Lock, RLock};
//!
//! // A cache that never evicts, so no lock key is culled (see "Eviction" below).
//! let dir = tempfile::tempdir()?;
//! let cache = Cache::builder().eviction_policy(EvictionPolicy::None).open(dir.path())?;
//!
//! let lock = Lock::new(cache.clone(), "report-123").expire(Duration::from_secs(60));
//! {
//!     let _guard = lock.acquire()?; // every thread and process opening `dir` waits here
//! }
//!
//! let rlock = RLock::new(cache.clone(), "user-123");
//! let outer = rlock.acquire()?;
//! let inner = rlock.acquire()?; // the same thread may enter again
//! drop((inner, outer));
//!
//! let semaphore = BoundedSemaphore::new(cache.clone(), "max-cons", 2);
//! let permit = semaphore.acquire()?;
//! assert_eq!(semaphore.available()?, 1);
//! drop(permit);
//!
//! let latency = Averager::new(cache, "latency");
//! latency.add(0.080)?;
//! latency.add(0.120)?;
//! assert_eq!(latency.get()?, Some(0.1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Stores
//!
//! Every type is generic over [`dcache_core::Storage`]: single-key reads, `add` and atomic
//! read-modify-writes. [`Cache`](dcache_core::Cache) implements it, and so does `FanoutCache`
//! (one key lives in one shard), for the processes of one host; `RedisStore` (crate
//! `dcache-redis`) does for processes on several hosts sharing a Redis or Valkey server; any
//! other backend implementing it gets these types unchanged.
//! Each type is a cheap handle: clone it into each thread, or open the same directory and key
//! in each process.
//!
//! # Waiting
//!
//! A waiter looks at the key with a read and attempts its write (`add`, or a read-modify-write)
//! only when the lock or a permit looks free, so waiting never queues on the store's write
//! lock in vain. Between looks it parks on a condition variable shared by this process's
//! waiters on the same key: a release in this process wakes them at once. A release in another
//! process is noticed by the next look; the pause between looks grows from about 100 µs to
//! 5 ms, with jitter, so a hand-off between processes takes a few milliseconds at most
//! (the benches crate's `handoff` measures it; see [docs/benchmarks.md](https://github.com/dcache-rs/dcache/blob/main/docs/benchmarks.md)). `acquire` waits as long as it takes,
//! `acquire_timeout` gives up with [`Error::Timeout`], and `try_acquire` looks once.
//!
//! While waiting, a store busy for its whole write timeout (another process holding a long
//! transaction) counts as "not yet" and is waited out; `try_acquire` returns that error.
//!
//! There is no queue and no fairness: whoever attempts first after a release wins. Waiters in
//! the releasing process are woken at once while other processes poll, so a process whose
//! threads take a lock back to back can keep it from another process for a while.
//!
//! # Eviction
//!
//! A lock is only a key in the cache, and a cache that evicts (any policy but `none`, once its
//! size limit is reached) may cull that key while the lock is held, letting a second holder in.
//! Keep locks, semaphores and averages in a cache opened with
//! [`EvictionPolicy::None`](dcache_core::EvictionPolicy::None), as python-diskcache's
//! documentation asks too. With `least-recently-used` or `least-frequently-used`, every read
//! is also a write, so waiting costs more as well.
//!
//! # Expiry and crashes
//!
//! A holder that crashes keeps its lock forever unless the lock has an `expire`; then the key
//! frees itself that long after it was taken (for `RLock` and `BoundedSemaphore`, after the
//! last acquire or release). An acquisition that outlives its expiry is no longer protected:
//! [`Lock`] then reports [`Error::LockLost`] on release and removes nothing. A resource written
//! under the lock can refuse such a holder's late writes with the acquisition's fencing token
//! ([`LockGuard::fencing_token`], see [`Lock`]'s "Fencing tokens").
//!
//! # Python compatibility
//!
//! The keys hold what python's recipes store, so python and Rust processes share them:
//!
//! | type | stored value | with python |
//! |---|---|---|
//! | [`Lock`] | `str` token `"<owner id>-<n>"` (python: `None`) | presence excludes both ways |
//! | [`RLock`] | `('<owner id>', depth)` | identical; ids never collide (see [`owner_id`]) |
//! | [`BoundedSemaphore`] | `int`, the free permits | identical |
//! | [`Averager`] | `(total, count)`, `float` and `int` | identical |
//!
//! python's `Lock.release` deletes the key whoever holds it; a Rust holder whose lock python
//! released that way gets [`Error::LockLost`].
//!
//! # Async (tokio)
//!
//! With the feature `tokio`, the [`future`] module has async twins of these types whose waits
//! never block a runtime worker thread.
//!
//! # Crate features
//!
//! - `bundled` (default): SQLite compiled from source, through dcache-core. Without it the
//!   system's libsqlite3 is linked; see dcache-core's crate docs for the versions it needs.
//! - `tokio`: the [`future`] module.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod averager;
mod error;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod future;
mod lock;
mod rlock;
mod semaphore;
mod wait;

pub use averager::Averager;
pub use error::{Error, Result};
pub use lock::{FENCE_SUFFIX, Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, SemaphoreGuard};
pub use wait::owner_id;
