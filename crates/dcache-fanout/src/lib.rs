//! FanoutCache: python-diskcache's sharded cache, on-disk compatible.
//!
//! Most users want the [`dcache`](https://docs.rs/dcache) facade, which re-exports this crate.
//!
//! A [`FanoutCache`] spreads keys over N shards (8 by default), each a full
//! [`Cache`](dcache_core::Cache) in `000`, `001`, … below its directory, chosen by python's
//! `Disk.hash`, so writers to different shards proceed in parallel and python's FanoutCache
//! opens the same directory. A shard that stays busy past its timeout (10 ms by default) is
//! skipped: writes return `false`, reads a miss — the contract of python's FanoutCache.
//!
//! ```
//! use dcache_fanout::FanoutCache;
//!
//! let dir = tempfile::tempdir()?;
//! let cache = FanoutCache::open(dir.path())?;
//! for n in 0..100 {
//!     cache.set(n, n * n)?;
//! }
//! assert_eq!(cache.len()?, 100);
//! assert_eq!(cache.get::<i64>(7)?, Some(49));
//! let sessions = cache.cache("sessions")?; // a full Cache in cache/sessions
//! let jobs = cache.deque::<String>("jobs")?; // a Deque in deque/jobs
//! jobs.push_back("build")?;
//! sessions.set("ada", 1)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Crate features
//!
//! - `bundled` (default): SQLite compiled from source, through dcache-core. Without it the
//!   system's libsqlite3 is linked; see dcache-core's crate docs for the versions it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod fanout;
mod iter;
mod names;

pub use error::{Error, Result};
pub use fanout::{
    DEFAULT_SHARD_TIMEOUT, DEFAULT_SHARDS, FanoutCache, FanoutCacheBuilder, detect_shards,
};
pub use iter::FanoutKeys;
