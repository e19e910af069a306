//! The [`DiskFormat`] trait: how keys and values become columns and files.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};
use crate::files::FileStore;
use crate::hash::python_hash;
use crate::sql::{DbKey, SqlRef, SqlValue};
use crate::value::Value;

/// How a value is stored: python-diskcache's `mode` column.
///
/// Modes 0–4 are python-diskcache's; 5 is dcache's MessagePack mode. A custom disk may define
/// more, from 6 up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode(pub u8);

impl Mode {
    /// `MODE_NONE` (0): never written.
    pub const NONE: Mode = Mode(0);
    /// `MODE_RAW` (1): the `value` column holds the value natively.
    pub const RAW: Mode = Mode(1);
    /// `MODE_BINARY` (2): a value file holds the bytes.
    pub const BINARY: Mode = Mode(2);
    /// `MODE_TEXT` (3): a value file holds UTF-8 text.
    pub const TEXT: Mode = Mode(3);
    /// `MODE_PICKLE` (4): a pickle, inline in `value` or in a value file.
    pub const PICKLE: Mode = Mode(4);
    /// Mode 5, dcache only: MessagePack, inline or in a file. Python reads it as `None`.
    pub const MSGPACK: Mode = Mode(5);

    /// Reads the `mode` column.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMode`] when the column is outside `0..=255`.
    pub fn from_column(mode: i64) -> Result<Mode> {
        u8::try_from(mode)
            .map(Mode)
            .map_err(|_| Error::UnknownMode { mode })
    }
}

/// How a value was stored: the `size`, `mode`, `filename` and `value` columns of its row.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Bytes in the value file; 0 for inline values (only file bytes count toward the
    /// cache's size).
    pub size: u64,
    /// The storage mode.
    pub mode: Mode,
    /// The value file, relative to the cache directory, if the value lives in one.
    pub filename: Option<String>,
    /// The inline value, or `NULL` when the value lives in a file.
    pub value: SqlValue,
}

impl Stored {
    /// Borrows this as a [`StoredRef`].
    #[must_use]
    pub fn as_ref(&self) -> StoredRef<'_> {
        StoredRef {
            size: self.size,
            mode: self.mode,
            filename: self.filename.as_deref(),
            value: self.value.as_ref(),
        }
    }
}

/// A borrowed [`Stored`], as read from a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredRef<'a> {
    /// The `size` column.
    pub size: u64,
    /// The `mode` column.
    pub mode: Mode,
    /// The `filename` column.
    pub filename: Option<&'a str>,
    /// The `value` column.
    pub value: SqlRef<'a>,
}

/// Turns keys and values into SQLite columns and value files, and back.
///
/// dcache ships three: [`Disk`](crate::Disk) (the default, python-diskcache's format),
/// [`MsgpackDisk`](crate::MsgpackDisk) and [`JsonDisk`](crate::JsonDisk). Implement this trait
/// for a format of your own; the cache is generic over it (`Cache<D: DiskFormat = Disk>`).
///
/// # Round-trip law
///
/// An implementation must satisfy, for every key `k` and value `v` of types that implement
/// `Serialize`, `DeserializeOwned` and `PartialEq`:
///
/// - `get::<K>(put(&k).value, put(&k).raw) == k` and `fetch::<V>(store(&v)) == v`
///   (NaN floats aside);
/// - `put` is deterministic: equal keys encode to equal [`DbKey`]s, because rows are found by
///   comparing the encoded key, and different keys encode differently;
/// - `store` either returns an inline value (`filename: None`) or writes exactly one new file
///   through the [`FileStore`] and reports its size in bytes; it never touches other files;
/// - `hash` depends only on the encoded key.
///
/// `fetch` and `get` read untrusted bytes: they must return an error, never panic, on any input.
pub trait DiskFormat: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Encodes a key into the `key` and `raw` columns.
    fn put<K: Serialize + ?Sized>(&self, key: &K) -> Result<DbKey>;

    /// Decodes a key read from the `key` and `raw` columns.
    fn get<K: DeserializeOwned>(&self, key: SqlRef<'_>, raw: bool) -> Result<K>;

    /// Encodes a value, writing a value file through `files` when it is large.
    fn store<V: Serialize + ?Sized>(&self, value: &V, files: &FileStore) -> Result<Stored>;

    /// Decodes a stored value, reading its file through `files` if it has one.
    fn fetch<V: DeserializeOwned>(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<V>;

    /// Decodes a key without knowing its type (for inspection tools).
    fn get_value(&self, key: SqlRef<'_>, raw: bool) -> Result<Value> {
        self.get(key, raw)
    }

    /// Decodes a value without knowing its type (for inspection tools).
    fn fetch_value(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<Value> {
        self.fetch(stored, files)
    }

    /// The 32-bit hash FanoutCache uses to pick a shard; python-diskcache's `Disk.hash` by
    /// default.
    fn hash(&self, key: &DbKey) -> u32 {
        python_hash(key)
    }

    /// Applies a persisted disk setting: `name` is the setting without its `disk_` prefix
    /// (`min_file_size` for `disk_min_file_size`). Returns `Ok(false)` for a name this disk does
    /// not use.
    ///
    /// # Errors
    ///
    /// [`Error::Setting`] when the value is invalid for a setting this disk uses.
    fn configure(&mut self, name: &str, value: SqlRef<'_>) -> Result<bool>;

    /// This disk's settings and their current values, names without the `disk_` prefix. A cache
    /// persists them as `disk_<name>` rows in `Settings`.
    fn settings(&self) -> Vec<(&'static str, SqlValue)>;
}
