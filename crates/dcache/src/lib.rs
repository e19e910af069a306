//! dcache: python-diskcache, done right in Rust.
//!
//! A persistent cache on SQLite and value files that many threads and processes share
//! safely, with expiry, tags, eviction policies, queues and memoization. It reads and writes
//! the very directories python-diskcache 5.6 writes, so a Rust service and a Python service
//! can share one cache.
//!
//! ```
//! use std::time::Duration;
//! use dcache::{Cache, SetOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = Cache::open(dir.path())?;
//!
//! cache.set("greeting", "hello")?;
//! assert_eq!(cache.get::<String>("greeting")?.as_deref(), Some("hello"));
//!
//! // Expiry and tags.
//! cache.set_with("session:42", ("ada", 1815), SetOptions::new().expire(Duration::from_secs(3600)).tag("sessions"))?;
//! let (name, year): (String, i32) = cache.get("session:42")?.unwrap();
//! assert_eq!((name.as_str(), year), ("ada", 1815));
//!
//! // Atomic counters and transactions.
//! cache.transact(|c| {
//!     c.incr("visits", 1)?;
//!     c.set("last-visitor", "ada")
//! })?;
//! assert_eq!(cache.evict("sessions")?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Examples
//!
//! `examples/tour.rs` runs every capability (`cargo run --release --example tour --all-features`). Short ones,
//! each run in CI: `lock_processes` (a lock and its fencing tokens between processes),
//! `memoize_processes` (results computed by one process reused by others), `throttle` (a rate
//! shared by threads), `bulk_load` (transactions of many writes), `backends` (one service on
//! SQLite or Redis).
//!
//! # Layers
//!
//! Most users need only the items at this crate's root. The layers are re-exported as
//! modules for everything else:
//!
//! - [`disk`]: keys and values to SQLite columns and value files; the [`DiskFormat`] trait for
//!   a format of your own; the pickle and python-JSON codecs; [`Value`] for any stored value.
//! - [`cache`]: the [`Cache`], its builder, settings, iteration, queues, `check`, memoization
//!   and the [`Storage`] trait the locks and recipes are written against.
//! - [`fanout`]: [`FanoutCache`], N shards with python's shard choice and timeout contract.
//! - [`sync`]: [`Lock`], [`RLock`], [`BoundedSemaphore`] and [`Averager`], shared by threads
//!   and processes (python's and Rust's alike) through any [`Storage`]; their guards and
//!   their own error type, [`sync::Error`].
//! - [`collections`]: the persistent [`Deque`] and [`Index`] (python's `Deque` and `Index`).
//! - [`recipes`]: [`Throttle`] (at most N calls per period), [`Barrier`] (one call at a time)
//!   and [`MemoizeStampede`] (memoization that recomputes results in the background before
//!   they expire), shared by threads and processes through any [`Storage`]; their error
//!   type, [`recipes::Error`].
//!
//! # Errors
//!
//! Each layer reports its own error type ([`cache::Error`] for a [`Cache`], and so on), each
//! with an `is_timeout` that means the same everywhere: the operation gave up waiting and may
//! succeed if tried again. [`Error`] gathers them all for a program that uses several types
//! and wants one error to pass up with `?`; [`Error::cache_error`] finds the cache error at
//! the bottom of any of them.
//!
//! # Keys and values
//!
//! Keys and values are any `serde` type. Strings, byte strings (`&[u8]`, `Vec<u8>`,
//! `[u8; N]`), integers and floats are stored natively, exactly as python stores `str`,
//! `bytes`, `int` and `float`; everything else (tuples, structs, maps, `Option`, `bool`) is
//! pickled, so python reads it as tuples, dicts and `None`. See
//! [docs/compatibility.md](https://github.com/dcache-rs/dcache/blob/main/docs/compatibility.md).
//!
//! # Where a cache may live
//!
//! A cache directory must be on a **local file system of one host**. SQLite's WAL mode shares
//! the `-shm` file as shared memory between the processes of one machine; on NFS or another
//! network file system it corrupts the database (python-diskcache has the same limit). For
//! processes on several machines, put the locks, semaphores, throttles and memoization on the
//! Redis backend (feature `redis`), which the same generic code runs on. Keep tmp cleaners
//! (`systemd-tmpfiles`, `tmpreaper`) away from live caches: a deleted `cache.db-shm` stops
//! writes with [`cache::Error::FileReplaced`] ([docs/reliability.md](https://github.com/dcache-rs/dcache/blob/main/docs/reliability.md)).
//!
//! # Platforms
//!
//! Linux is what the test suites run on (`x86_64`; python-diskcache 5.6.3 interop, crash,
//! concurrency and hostile-directory suites). Other Unix systems (macOS, the BSDs) use the same
//! code paths (`openat`-style value files, `fcntl` locks through SQLite) but are not tested
//! here. Elsewhere (Windows) value files fall back to path-based checks, with a window between
//! the check for links and the use, and there is no fork handling (there is no `fork`); it
//! compiles in principle but is untested.
//!
//! Byte values move whole, at the speed of a file read or write: `Vec<u8>`, `&[u8]`,
//! `Box<[u8]>` and `Cow<[u8]>` are recognized by their type, and `bytes::Bytes` (with its
//! `serde` feature) and `serde_bytes` types use serde's byte calls; no feature is needed.
//!
//! # Async (tokio)
//!
//! With the feature `tokio`, the module `future` has async `Lock`, `RLock`,
//! `BoundedSemaphore`, `Averager`, `Throttle`, `Barrier`, `Memoized` and `MemoizeStampede`:
//! their waits are `.await`s and no store operation runs on a runtime worker thread. They
//! share their keys with the blocking types, in this process and others. The module docs of
//! `dcache_sync::future` give the rule, cancellation and the owner ids of an async `RLock`.
//!
//! # Crate features
//!
//! Only `bundled` is on by default.
//!
//! - `bundled` (default): SQLite compiled from source, so no system library is needed.
//!   Without it (`default-features = false`) the system's libsqlite3 is linked: 3.16.0 or
//!   newer for dcache's SQL (an older one is [`cache::Error::SqliteTooOld`] at open), and as
//!   new as the build's rusqlite needs (0.41: 3.44; 0.37 and older: 3.14). dcache accepts
//!   rusqlite 0.29 to 0.41, so it builds next to sqlx or another rusqlite user (one
//!   `libsqlite3-sys` per build).
//! - `json`: [`JsonDisk`], python's `JSONDisk` (zlib-compressed JSON, keys byte-identical to
//!   python's). Builds zlib from C source.
//! - `msgpack`: [`MsgpackDisk`] (structured values as MessagePack, mode 5); without it a
//!   mode-5 value read with [`Disk`] is a decode error that names the feature.
//! - `mmap`: [`disk::FileStore::map`], a value file mapped into memory.
//! - `tokio`: the async API, `dcache::future` (see "Async (tokio)" above).
//! - `redis`: the Redis (and Valkey) backend, `RedisStore` (module `redis`, the
//!   `dcache-redis` crate): the locks and recipes shared by processes on several machines
//!   through one server. See [docs/backends.md](https://github.com/dcache-rs/dcache/blob/main/docs/backends.md).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;

pub use error::{Error, Result};

pub use dcache_collections as collections;
pub use dcache_core as cache;
pub use dcache_disk as disk;
pub use dcache_fanout as fanout;
pub use dcache_recipes as recipes;
/// The Redis backend (feature `redis`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use dcache_redis as redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use dcache_redis::RedisStore;
pub use dcache_sync as sync;

/// The async API for tokio (feature `tokio`): locks, semaphores, averages and recipes whose
/// waits are `.await`s and whose store operations never run on a runtime worker thread.
///
/// These are `dcache_sync::future`'s and `dcache_recipes::future`'s types; their module docs
/// give the rule (what runs where), cancellation and the owner ids of an async `RLock`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::time::Duration;
/// use dcache::future::{Barrier, Lock};
///
/// let cache = dcache::Cache::temp()?;
/// let lock = Lock::new(cache.clone(), "report").expire(Duration::from_secs(60));
/// {
///     let guard = lock.acquire().await?;
///     assert!(guard.fencing_token() > 0);
/// } // released here (on tokio's blocking pool)
///
/// let barrier = Barrier::new(cache, "migrate");
/// let rows = barrier.call(|| async { Ok::<_, dcache::recipes::Error>(3) }).await?;
/// assert_eq!(rows, 3);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod future {
    pub use dcache_sync::future::{
        Averager, BoundedSemaphore, Lock, LockGuard, RLock, RLockGuard, SemaphoreGuard,
        task_owner_id,
    };

    pub use dcache_recipes::future::{Barrier, MemoizeStampede, Memoized, Throttle};
}

pub use dcache_collections::{Deque, Index};
pub use dcache_core::{
    BackendErrorKind, Cache, CacheBuilder, CheckMode, Clock, Durability, Entry, EvictionPolicy,
    ManualClock, Memoized, Order, PushOptions, QueueKey, SetOptions, Settings, Side, Stats,
    Storage, SystemClock, Tag, Update, ValueReader, Warning,
};
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use dcache_disk::JsonDisk;
#[cfg(feature = "msgpack")]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
pub use dcache_disk::MsgpackDisk;
pub use dcache_disk::{Disk, DiskFormat, Value};
pub use dcache_fanout::{FanoutCache, FanoutCacheBuilder};
pub use dcache_recipes::{Barrier, BarrierLock, MemoizeStampede, Throttle};
pub use dcache_sync::{Averager, BoundedSemaphore, Lock, RLock};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
