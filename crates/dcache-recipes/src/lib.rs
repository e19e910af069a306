//! Rate limits, one-at-a-time functions and stampede-proof memoization shared by threads and
//! processes through a dcache store: python-diskcache's `throttle`, `barrier` and
//! `memoize_stampede` recipes.
//!
//! Most users want the [`dcache`](https://docs.rs/dcache) facade, which re-exports this crate
//! as `dcache::recipes` and its types at its root.
//!
//! ```
//! use std::time::Duration;
//! use dcache_core::{Cache, EvictionPolicy};
//! use dcache_recipes::{Barrier, MemoizeStampede, Throttle};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = Cache::builder().eviction_policy(EvictionPolicy::None).open(dir.path())?;
//!
//! // At most 100 calls a second, across every thread and process opening `dir`.
//! let throttle = Throttle::new(cache.clone(), "api", 100, Duration::from_secs(1))?;
//! let status = throttle.call(|| Ok::<_, dcache_recipes::Error>(200))?;
//!
//! // One call at a time, across every thread and process.
//! let barrier = Barrier::new(cache.clone(), "migrate").expire(Duration::from_secs(60));
//! barrier.call(|| Ok::<_, dcache_recipes::Error>(()))?;
//!
//! // Results cached for 5 minutes, recomputed in the background shortly before they expire.
//! let memo = MemoizeStampede::new(cache, "fib", Duration::from_secs(300));
//! let fib = |&(n,): &(u32,)| -> dcache_recipes::Result<u64> {
//!     Ok((0..n).fold((0, 1), |(a, b), _| (b, a + b)).0)
//! };
//! assert_eq!(memo.call((50,), fib)?, 12_586_269_025);
//! assert_eq!(status, 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Composing
//!
//! `wrap` turns a function into a throttled, serialized or memoized one, and the results
//! compose: here every call is throttled, and results are cached (python's "combining"
//! example, where a cache hit still counts against the throttle).
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use dcache_core::Cache;
//! use dcache_recipes::{MemoizeStampede, Throttle};
//!
//! let cache = Cache::temp()?;
//! let api_calls = Arc::new(AtomicUsize::new(0));
//! let api = {
//!     let api_calls = api_calls.clone();
//!     move |(query,): &(String,)| -> dcache_recipes::Result<String> {
//!         api_calls.fetch_add(1, Ordering::SeqCst); // the real API call
//!         Ok(format!("API result for {query}"))
//!     }
//! };
//! let api = Throttle::new(cache.clone(), "throttled_api", 5, Duration::from_secs(60))?
//!     .wrap(MemoizeStampede::new(cache, "memoized_api", Duration::from_secs(300)).wrap(api));
//!
//! for round in 0..2 {
//!     for i in 0..2 {
//!         let result = api((format!("query_{i}"),))?;
//!         assert_eq!(result, format!("API result for query_{i}"));
//!     }
//! }
//! assert_eq!(api_calls.load(Ordering::SeqCst), 2); // the second round came from the cache
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//!
//! `call` and the wrapped functions return the caller's error type `E`, anything with
//! `From<`[`Error`]`>` (`Box<dyn std::error::Error + Send + Sync>`, or [`Error`] itself, or an
//! application's error enum), so the function's errors and the recipe's own share one
//! `Result`.
//!
//! # Stores
//!
//! Every type is generic over [`dcache_core::Storage`]: single-key reads, `add`, `set` and
//! atomic read-modify-writes. [`Cache`](dcache_core::Cache) implements it, and so does
//! `FanoutCache` (one key lives in one shard, and its `Storage` operations wait out a busy
//! shard). Each type is a cheap handle: clone it into each thread, or create it with the same
//! name in each process.
//!
//! As for locks (see `dcache_sync`), keep the store from evicting the recipes' keys: open it
//! with [`EvictionPolicy::None`](dcache_core::EvictionPolicy::None). An evicted throttle bucket
//! counts as full, an evicted barrier lock lets a second caller in, an evicted result is
//! computed again.
//!
//! # Python compatibility
//!
//! | type | key | stored value | with python |
//! |---|---|---|---|
//! | [`Throttle`] | its name (`str`) | `(last, tally)`, `float`s | one bucket: python's `throttle` of that name shares it |
//! | [`Barrier`] | its name (`str`) | what its lock stores (see `dcache_sync`) | python's `barrier` with the same lock type and name excludes it |
//! | [`MemoizeStampede`] | `(name, args)`, pickled | `(result, delta)` | same shape, but python flattens its key `(name, *args)`: results are not shared |
//!
//! Deliberate differences from python: creating a [`Throttle`] stores a full bucket only if
//! there is none (python's decorator resets the bucket, so each restart grants a fresh burst),
//! keeps its tag on every update (python's drops it at the first call) and treats an expired
//! bucket as full (python's raises); a [`MemoizeStampede`] measures `delta` on a monotonic
//! clock and never caches an `Err`.
//!
//! # Async (tokio)
//!
//! With the feature `tokio`, the [`future`] module has async twins of these recipes:
//! [`Throttle`] with an async wait, [`Barrier`] around an async closure, and memoization of
//! async functions.
//!
//! # Crate features
//!
//! - `bundled` (default): SQLite compiled from source, through dcache-core. Without it the
//!   system's libsqlite3 is linked; see dcache-core's crate docs for the versions it needs.
//! - `tokio`: the [`future`] module (and `dcache_sync`'s).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod barrier;
mod error;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod future;
mod stampede;
mod throttle;

pub use barrier::{Barrier, BarrierLock};
pub use error::{Error, Result};
pub use stampede::{MemoizeStampede, RECOMPUTING};
pub use throttle::{Throttle, ThrottleBuilder};
