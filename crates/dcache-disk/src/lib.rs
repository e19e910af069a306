//! Keys and values to SQLite columns and value files, in python-diskcache 5.6's format.
//!
//! This is the lowest layer of [dcache](https://docs.rs/dcache); most users want the `dcache`
//! crate, which re-exports what is here. It never touches SQLite: it turns a key into the
//! `key`/`raw` columns, a value into the `size`/`mode`/`filename`/`value` columns (writing a
//! value file when the value is large), and back.
//!
//! ```
//! use dcache_disk::{Disk, DiskFormat, FileStore, Mode};
//!
//! let dir = tempfile::tempdir()?;
//! let files = FileStore::new(dir.path());
//! let disk = Disk::new().with_min_file_size(4);
//!
//! let key = disk.put("user:42")?;                   // TEXT key, raw = 1
//! let small = disk.store(&b"ab"[..], &files)?;      // inline BLOB, MODE_RAW
//! let large = disk.store(&b"abcdef"[..], &files)?;  // value file, MODE_BINARY
//! assert_eq!((small.mode, large.mode), (Mode::RAW, Mode::BINARY));
//! assert_eq!(disk.fetch::<Vec<u8>>(large.as_ref(), &files)?, b"abcdef");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules of the format
//!
//! - [`Disk`]: python-diskcache's default disk (natives raw, everything else pickled);
//! - [`MsgpackDisk`]: structured values as MessagePack (mode 5), for Rust-only caches;
//! - [`JsonDisk`]: python's `JSONDisk` (zlib-compressed JSON, keys byte-identical);
//! - [`DiskFormat`]: the trait for a disk of your own, with its round-trip law;
//! - [`FileStore`]: value files (`hh/hh/<28 hex>.val`), created exclusively, never outside
//!   the cache directory;
//! - [`pickle`], [`pyjson`]: the codecs, usable on their own; [`Value`]: any stored value.
//!
//! # Byte values
//!
//! `Vec<u8>`, `[u8]`, `Box<[u8]>` and `Cow<[u8]>` (and references to them) are recognized by
//! their type id and move whole: [`DiskFormat::store`] writes the caller's bytes to the value
//! file without copying them, and [`DiskFormat::fetch`] moves the buffer read from the file
//! into the requested type. `bytes::Bytes` and `serde_bytes` types take the same path through
//! serde's `serialize_bytes` and `visit_byte_buf`. Any other collection of `u8` is bytes too,
//! collected in one pass. Serde alone would hand each byte over by itself (ten times a file
//! read for 1 MiB).
//!
//! # Crate features
//!
//! None is on by default; the `dcache` crate forwards each of them.
//!
//! - `json`: [`JsonDisk`]. Builds zlib from C source (statically, through `libz-sys`), so JSON
//!   keys match CPython's bytes exactly.
//! - `msgpack`: [`MsgpackDisk`]; without it, a MessagePack (mode 5) value read with [`Disk`]
//!   is an [`Error::Decode`] that names the feature.
//! - `mmap`: [`FileStore::map`], a value file mapped into memory (`memmap2`).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod classify;
mod de;
mod disk;
mod error;
mod files;
mod format;
mod hash;
mod known;
pub mod pickle;
mod probe;
pub mod pyjson;
mod sql;
mod value;

pub use classify::{Primitive, classify};
pub use de::{SqlDeserializer, from_sql};
#[cfg(feature = "json")]
pub use disk::JsonDisk;
#[cfg(feature = "msgpack")]
pub use disk::MsgpackDisk;
pub use disk::{DEFAULT_COMPRESS_LEVEL, DEFAULT_MIN_FILE_SIZE, DEFAULT_PICKLE_PROTOCOL, Disk};
pub use error::{Error, Format, Result};
pub use files::{DEFAULT_MAX_READ, FileStore};
pub use format::{DiskFormat, Mode, Stored, StoredRef};
pub use hash::{adler32, python_hash};
pub use sql::{DbKey, SqlRef, SqlValue, integral_i64};
pub use value::{BigInt, Value, from_value};
