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
//! - `bundled` (default): SQLite compiled from source (rusqlite's `bundled`), so no system
//!   library is needed. Without it the system's libsqlite3 is linked, which must be 3.16.0 or
//!   newer for dcache's SQL (table-valued pragma functions; opening a cache with an older one
//!   is [`Error::SqliteTooOld`]) and as new as the rusqlite in the build needs to link:
//!   rusqlite 0.41 needs SQLite 3.44, 0.37 and older 3.14. dcache accepts rusqlite 0.29 to
//!   0.41, so it shares one `libsqlite3-sys` with sqlx or another rusqlite user; with an
//!   older system SQLite (Debian 12 ships 3.40), `cargo update -p rusqlite --precise 0.37.0`.
//!   An SQLite built with `SQLITE_DQS=0` cannot run the triggers of python-diskcache's schema
//!   (they compare with double-quoted strings).
//! - `json`: the [`JsonDisk`] re-export (dcache-disk's `json`).
//! - `msgpack`: the [`MsgpackDisk`] re-export, and reading MessagePack (mode 5) values with
//!   any disk (dcache-disk's `msgpack`).
#![cfg_attr(docsrs, feature(doc_cfg))]

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

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use dcache_disk::JsonDisk;
#[cfg(feature = "msgpack")]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
pub use dcache_disk::MsgpackDisk;
pub use dcache_disk::{self as disk, Disk, DiskFormat, SqlValue, Value};
