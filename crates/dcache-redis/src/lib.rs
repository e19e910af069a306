//! A Redis (or Valkey) backend for dcache: [`RedisStore`] implements
//! [`dcache_core::Storage`], so dcache's `Lock`, `RLock`, `BoundedSemaphore`, `Averager`,
//! `Throttle`, `Barrier`, `MemoizeStampede` and `Memoized` work across machines sharing one
//! server, unchanged.
//!
//! A SQLite [`Cache`](dcache_core::Cache) is shared by the processes of one host (its WAL
//! index is shared memory; on a network file system it corrupts). Workers on several hosts
//! open a `RedisStore` instead; the code using the locks and recipes stays the same.
//!
//! ```no_run
//! use std::time::Duration;
//! use dcache_core::{SetOptions, Storage};
//! use dcache_redis::RedisStore;
//!
//! let store = RedisStore::builder("redis://10.0.0.5:6379/")
//!     .prefix("billing:")
//!     .response_timeout(Duration::from_millis(500))
//!     .open()?;
//! // Any code generic over `Storage` runs on it: `dcache::Lock::new(store.clone(), "run")`,
//! // `dcache::Throttle`, `dcache::MemoizeStampede`, ...
//! let added = store.add("invoice-run", "worker-7", SetOptions::new().expire(Duration::from_secs(30)))?;
//! # let _ = added;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Storage layout (and python)
//!
//! Each entry is one Redis string under `prefix + pickle((key column, raw), protocol 5)`,
//! holding `pickle((value column, mode, tag), protocol 5)`, where the key and value columns
//! and the mode are exactly what the store's disk ([`Disk`](dcache_core::Disk) by default,
//! python-diskcache's own format) writes into a SQLite cache. Values are always inline (never
//! value files). Expiry is the key's Redis TTL. python reads an entry with its standard
//! library and python-diskcache's `Disk.fetch(mode, None, value_column, False)`; python's
//! diskcache recipes themselves cannot use Redis (they are written against its SQLite
//! `Cache`).
//!
//! # Servers
//!
//! One Redis (6.2 or later) or Valkey server, or the primary of a replicated set, reached by a
//! `redis://[user:password@]host:port/db` URL (`valkey://` and `redis+unix:///path` work too;
//! TLS, Sentinel and Redis Cluster are not compiled in: this crate builds the `redis` client
//! with no optional features).
//!
//! # Clocks, durability and failures
//!
//! - `now()` is the server's clock (see [`RedisStore`]); expiry is decided by the server, so
//!   the machines' own clocks never matter.
//! - Redis keeps data in memory: without persistence (`appendonly yes`) a restart loses every
//!   lock, permit and counter. A lock lost that way can be taken again at once: two holders
//!   overlap unless the resource checks fencing tokens, which stay monotonic after such a loss
//!   (see `dcache_sync::Lock`).
//! - Replication is asynchronous: after a failover a replica may not have the last writes
//!   (the same hazard as a restart without persistence).
//! - A connection attempt waits at most the connect timeout, each reply at most the response
//!   timeout (an operation makes one to three round trips per attempt, and is re-run once when the
//!   connection it took from the pool turns out closed before any reply); a failure
//!   is [`Error::Backend`](dcache_core::Error::Backend) with its
//!   [`BackendErrorKind`](dcache_core::BackendErrorKind): `Unreachable`, `Timeout`,
//!   `ConnectionLost`, `Server` or `Other`. A waiting `acquire` returns that error; it does not
//!   keep waiting through an outage. When the first command on a pooled connection finds it
//!   closed (the server restarted meanwhile), the operation is re-run once on a new
//!   connection: the server never answered the first time.
//!
//! # Crate features
//!
//! - `bundled` (default): SQLite compiled from source, through dcache-core. Without it the
//!   system's libsqlite3 is linked; see dcache-core's crate docs for the versions it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
mod error;
mod pool;
mod store;

pub use store::{
    DEFAULT_CLOCK_REFRESH, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONFLICTS, DEFAULT_MAX_IDLE,
    DEFAULT_PREFIX, DEFAULT_RESPONSE_TIMEOUT, RedisStore, RedisStoreBuilder,
};
