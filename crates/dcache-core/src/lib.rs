//! The dcache `Cache`: python-diskcache 5.6's SQLite cache, shared safely by threads and
//! processes.
//!
//! Most users want the [`dcache`](https://docs.rs/dcache) facade, which re-exports this crate
//! with the collections, FanoutCache, locks and recipes built on it.
//!
//! ```
//! use dcache_core::Cache;
//!
//! let dir = tempfile::tempdir()?;
//! let cache = Cache::open(dir.path())?;
//! cache.set(("user", 42), "Ada")?;
//! assert_eq!(cache.get::<String>(("user", 42))?.as_deref(), Some("Ada"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Crate features
//!
//! None.

mod cache;
mod check;
mod clock;
mod conn;
mod entries;
mod error;
mod evict;
mod iter;
mod lookup;
mod memoize;
mod open;
mod options;
mod pid;
mod queue;
mod reserve;
mod schema;
mod settings;
mod sql;
mod sqlval;
mod state;
mod store;
mod tag;

pub use cache::{Cache, CacheBuilder, DEFAULT_TIMEOUT, Durability, temp_directory};
pub use check::{CheckMode, UNKNOWN_FILE_GRACE, Warning};
pub use clock::{Clock, MAX_EXPIRE_TIME, ManualClock, SystemClock, unix_seconds};
pub use entries::{Entries, EntryInfo, EntryQuery, Summary};
pub use error::{BackendErrorKind, Error, Result, SqliteError};
pub use evict::Stats;
pub use iter::{Items, Keys, Order, SortedItems, SortedKeys};
pub use memoize::{MemoKey, Memoized};
pub use options::{Entry, SetOptions, ValueReader};
pub use queue::{PushOptions, QUEUE_START, QueueKey, Side};
pub use reserve::DEFAULT_DISK_RESERVE;
pub use settings::{DEFAULT_SETTINGS, DefaultValue, EvictionPolicy, METADATA, Settings};
pub use store::{Storage, Update};
pub use tag::Tag;

pub use dcache_disk::{self as disk, Disk, DiskFormat, JsonDisk, MsgpackDisk, SqlValue, Value};
