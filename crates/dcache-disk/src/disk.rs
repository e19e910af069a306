//! The built-in disks: [`Disk`], [`MsgpackDisk`] and [`JsonDisk`].

use std::borrow::Cow;
#[cfg(feature = "json")]
use std::io::{Read, Write};

use serde::{Serialize, de::DeserializeOwned};

use crate::classify::{Primitive, ValueClass, classify, classify_value};
use crate::de::{from_byte_buf, from_sql};
use crate::error::{Error, Format, Result};
use crate::files::FileStore;
use crate::format::{DiskFormat, Mode, Stored, StoredRef};
use crate::known;
use crate::pickle;
use crate::sql::{DbKey, SqlRef, SqlValue, integral_i64};
use crate::value::Value;
#[cfg(feature = "json")]
use crate::{pyjson, value::from_value};

/// python-diskcache's `disk_min_file_size` default: values this large (bytes, or characters
/// for text) go to files.
pub const DEFAULT_MIN_FILE_SIZE: u64 = 1 << 15;

/// python-diskcache's `disk_pickle_protocol` default (`pickle.HIGHEST_PROTOCOL` on CPython 3.8+).
pub const DEFAULT_PICKLE_PROTOCOL: u8 = pickle::HIGHEST_PROTOCOL;

/// JSONDisk's `disk_compress_level` default.
pub const DEFAULT_COMPRESS_LEVEL: u32 = 1;

/// The default disk: python-diskcache's `Disk`, byte for byte.
///
/// Text, bytes, integers in `i64` range and floats are stored natively (`MODE_RAW`); text of
/// at least `min_file_size` characters and bytes of at least `min_file_size` bytes go to value
/// files (`MODE_TEXT`, `MODE_BINARY`); everything else (structs, maps, tuples, `Option`,
/// `bool`, `u64` above `i64::MAX`) is pickled (`MODE_PICKLE`), inline or in a file. Keys follow
/// the same rules, with structured keys pickled into a blob (`raw = 0`).
///
/// Differences from python, each deliberate: a NaN *value* is pickled (python binds it as
/// `NULL` and reads back `None`); a NaN *key* is refused ([`Error::NanKey`]); text files are
/// read back byte-exact (python's text mode turns `\r\n` into `\n`).
///
/// # Examples
///
/// ```
/// use dcache_disk::{Disk, DiskFormat, FileStore, Mode, SqlValue};
///
/// let dir = tempfile::tempdir()?;
/// let files = FileStore::new(dir.path());
/// let disk = Disk::default();
///
/// let key = disk.put(&(1, "x"))?; // a tuple key is pickled
/// assert!(!key.raw);
///
/// let stored = disk.store("hello", &files)?;
/// assert_eq!((stored.mode, &stored.value), (Mode::RAW, &SqlValue::Text("hello".into())));
/// let back: String = disk.fetch(stored.as_ref(), &files)?;
/// assert_eq!(back, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    min_file_size: u64,
    pickle_protocol: u8,
}

impl Default for Disk {
    fn default() -> Self {
        Disk {
            min_file_size: DEFAULT_MIN_FILE_SIZE,
            pickle_protocol: DEFAULT_PICKLE_PROTOCOL,
        }
    }
}

impl Disk {
    /// A disk with python-diskcache's defaults (`min_file_size` 32768, pickle protocol 5).
    #[must_use]
    pub fn new() -> Self {
        Disk::default()
    }

    /// Values at least this large go to files (default 32768). A cache overrides this with its
    /// `disk_min_file_size` setting.
    #[must_use]
    pub fn with_min_file_size(mut self, bytes: u64) -> Self {
        self.min_file_size = bytes;
        self
    }

    /// The pickle protocol written (default 5; 0–2 write protocol 3, which every Python 3 reads).
    ///
    /// # Errors
    ///
    /// [`Error::Setting`] for a protocol above 5.
    pub fn with_pickle_protocol(mut self, protocol: u8) -> Result<Self> {
        self.pickle_protocol = check_protocol(i64::from(protocol))?;
        Ok(self)
    }

    /// The `min_file_size` in effect.
    #[must_use]
    pub fn min_file_size(&self) -> u64 {
        self.min_file_size
    }

    /// The pickle protocol in effect.
    #[must_use]
    pub fn pickle_protocol(&self) -> u8 {
        self.pickle_protocol
    }

    /// Stores an already-serialized structured value under `mode`, inline or in a file.
    fn store_encoded(&self, bytes: Vec<u8>, mode: Mode, files: &FileStore) -> Result<Stored> {
        place(
            Payload::Blob(Cow::Owned(bytes)),
            self.min_file_size,
            mode,
            mode,
            files,
        )
    }

    /// Stores a native value: inline, or text and bytes in files when large.
    fn store_primitive(&self, value: Primitive, files: &FileStore) -> Result<Stored> {
        let raw = |value| Stored {
            size: 0,
            mode: Mode::RAW,
            filename: None,
            value,
        };
        match value {
            Primitive::Integer(i) => Ok(raw(SqlValue::Integer(i))),
            Primitive::Real(f) => Ok(raw(SqlValue::Real(f))),
            Primitive::Text(s) => place(
                Payload::Text(s),
                self.min_file_size,
                Mode::RAW,
                Mode::TEXT,
                files,
            ),
            Primitive::Blob(b) => self.store_bytes(Cow::Owned(b), files),
        }
    }

    /// Stores bytes: inline (`MODE_RAW`), or in a value file (`MODE_BINARY`) when large,
    /// written straight from `bytes` (a borrowed `&[u8]` value is not copied).
    fn store_bytes(&self, bytes: Cow<'_, [u8]>, files: &FileStore) -> Result<Stored> {
        place(
            Payload::Blob(bytes),
            self.min_file_size,
            Mode::RAW,
            Mode::BINARY,
            files,
        )
    }

    fn configure_common(&mut self, name: &str, value: SqlRef<'_>) -> Result<bool> {
        match name {
            "min_file_size" => {
                self.min_file_size = setting_u64(name, value)?;
                Ok(true)
            }
            "pickle_protocol" => {
                let protocol = setting_i64(name, value)?;
                self.pickle_protocol = check_protocol(protocol)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The bytes of a value that may go to a value file.
enum Payload<'a> {
    /// Bytes, stored inline as a `BLOB`.
    Blob(Cow<'a, [u8]>),
    /// Text, stored inline as `TEXT` and in a file as its UTF-8 bytes.
    Text(String),
}

/// The "inline or value file" decision, made here for every disk: a payload shorter than
/// `min_file_size` is kept in the row's `value` column under `inline_mode` (`size` 0, as
/// python-diskcache writes it), anything larger goes to a new value file under `file_mode`.
/// Text is measured as python measures it, in characters; a byte count below the limit
/// implies a character count below it, so most text is never counted.
fn place(
    payload: Payload<'_>,
    min_file_size: u64,
    inline_mode: Mode,
    file_mode: Mode,
    files: &FileStore,
) -> Result<Stored> {
    let inline = match &payload {
        Payload::Blob(bytes) => (bytes.len() as u64) < min_file_size,
        Payload::Text(text) => {
            (text.len() as u64) < min_file_size || (text.chars().count() as u64) < min_file_size
        }
    };
    if inline {
        let value = match payload {
            Payload::Blob(bytes) => SqlValue::Blob(bytes.into_owned()),
            Payload::Text(text) => SqlValue::Text(text),
        };
        return Ok(Stored {
            size: 0,
            mode: inline_mode,
            filename: None,
            value,
        });
    }
    let bytes = match &payload {
        Payload::Blob(bytes) => bytes.as_ref(),
        Payload::Text(text) => text.as_bytes(),
    };
    let filename = files.write(bytes)?;
    Ok(Stored {
        size: bytes.len() as u64,
        mode: file_mode,
        filename: Some(filename),
        value: SqlValue::Null,
    })
}

/// Encodes keys as python's `Disk.put` does; shared by [`Disk`] and [`MsgpackDisk`].
fn put_key<K: Serialize + ?Sized>(key: &K, protocol: u8) -> Result<DbKey> {
    let raw = |value| Ok(DbKey { value, raw: true });
    match classify(key) {
        Some(Primitive::Integer(i)) => raw(SqlValue::Integer(i)),
        Some(Primitive::Real(f)) if f.is_nan() => Err(Error::NanKey),
        Some(Primitive::Real(f)) => raw(SqlValue::Real(f)),
        Some(Primitive::Text(s)) => raw(SqlValue::Text(s)),
        Some(Primitive::Blob(b)) => raw(SqlValue::Blob(b)),
        None => Ok(DbKey {
            value: SqlValue::Blob(pickle::to_vec(key, protocol)?),
            raw: false,
        }),
    }
}

/// Decodes keys as python's `Disk.get` does.
fn get_key<K: DeserializeOwned>(key: SqlRef<'_>, raw: bool) -> Result<K> {
    match (raw, key) {
        (true, key) => from_sql(key),
        (false, SqlRef::Blob(bytes)) => pickle::from_slice(bytes),
        (false, other) => Err(Error::decode(
            Format::Pickle,
            format!(
                "a pickled key must be a BLOB, found {}",
                other.storage_class()
            ),
        )),
    }
}

/// Reads the bytes of an inline blob or a value file.
fn stored_bytes(stored: StoredRef<'_>, files: &FileStore) -> Result<Vec<u8>> {
    match (stored.filename, stored.value) {
        (Some(name), _) => files.read(name, stored.size),
        (None, SqlRef::Blob(b)) => Ok(b.to_vec()),
        (None, other) => Err(Error::decode(
            Format::Raw,
            format!(
                "mode {} needs a BLOB or a file, found {}",
                stored.mode.0,
                other.storage_class()
            ),
        )),
    }
}

/// Decodes modes 1–5; shared by [`Disk`] and [`MsgpackDisk`], which read each other's entries.
fn fetch_common<V: DeserializeOwned>(stored: StoredRef<'_>, files: &FileStore) -> Result<V> {
    match stored.mode {
        Mode::RAW => match stored.value {
            SqlRef::Blob(b) if known::is_byte_buf::<V>() => from_byte_buf(b.to_vec()),
            value => from_sql(value),
        },
        Mode::BINARY => from_byte_buf(stored_bytes(stored, files)?),
        Mode::TEXT => {
            let bytes = stored_bytes(stored, files)?;
            let text = std::str::from_utf8(&bytes).map_err(|e| {
                Error::decode(Format::Raw, format!("text value file is not UTF-8: {e}"))
            })?;
            from_sql(SqlRef::Text(text))
        }
        Mode::PICKLE => match (stored.filename, stored.value) {
            (None, SqlRef::Blob(b)) => pickle::from_slice(b),
            _ => pickle::from_slice(&stored_bytes(stored, files)?),
        },
        #[cfg(feature = "msgpack")]
        Mode::MSGPACK => match (stored.filename, stored.value) {
            (None, SqlRef::Blob(b)) => msgpack_decode(b),
            _ => msgpack_decode(&stored_bytes(stored, files)?),
        },
        #[cfg(not(feature = "msgpack"))]
        Mode::MSGPACK => Err(Error::decode(
            Format::MessagePack,
            "a MessagePack (mode 5) value, written by MsgpackDisk: enable dcache's `msgpack` \
             feature to read it",
        )),
        Mode(other) => Err(Error::UnknownMode {
            mode: i64::from(other),
        }),
    }
}

impl DiskFormat for Disk {
    fn put<K: Serialize + ?Sized>(&self, key: &K) -> Result<DbKey> {
        put_key(key, self.pickle_protocol)
    }

    fn get<K: DeserializeOwned>(&self, key: SqlRef<'_>, raw: bool) -> Result<K> {
        get_key(key, raw)
    }

    fn store<V: Serialize + ?Sized>(&self, value: &V, files: &FileStore) -> Result<Stored> {
        match classify_value(value) {
            ValueClass::Bytes(bytes) => self.store_bytes(Cow::Borrowed(bytes), files),
            ValueClass::Primitive(Primitive::Real(f)) if f.is_nan() => self.store_encoded(
                pickle::to_vec(&f, self.pickle_protocol)?,
                Mode::PICKLE,
                files,
            ),
            ValueClass::Primitive(primitive) => self.store_primitive(primitive, files),
            ValueClass::Structured => self.store_encoded(
                pickle::to_vec(value, self.pickle_protocol)?,
                Mode::PICKLE,
                files,
            ),
        }
    }

    fn fetch<V: DeserializeOwned>(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<V> {
        fetch_common(stored, files)
    }

    fn fetch_value(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<Value> {
        fetch_value_common(stored, files)
    }

    fn get_value(&self, key: SqlRef<'_>, raw: bool) -> Result<Value> {
        get_value_common(key, raw)
    }

    fn configure(&mut self, name: &str, value: SqlRef<'_>) -> Result<bool> {
        self.configure_common(name, value)
    }

    fn settings(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            (
                "min_file_size",
                SqlValue::Integer(self.min_file_size as i64),
            ),
            (
                "pickle_protocol",
                SqlValue::Integer(i64::from(self.pickle_protocol)),
            ),
        ]
    }
}

/// Reads a stored value as a dynamic [`Value`], keeping python's distinctions (tuples, sets,
/// big integers) for pickles.
fn fetch_value_common(stored: StoredRef<'_>, files: &FileStore) -> Result<Value> {
    match stored.mode {
        Mode::PICKLE => match (stored.filename, stored.value) {
            (None, SqlRef::Blob(b)) => pickle::value_from_slice(b),
            _ => pickle::value_from_slice(&stored_bytes(stored, files)?),
        },
        _ => fetch_common(stored, files),
    }
}

fn get_value_common(key: SqlRef<'_>, raw: bool) -> Result<Value> {
    match (raw, key) {
        (false, SqlRef::Blob(bytes)) => pickle::value_from_slice(bytes),
        _ => get_key(key, raw),
    }
}

/// Decodes MessagePack, mapping serde's type errors to [`Error::WrongType`].
///
/// Nesting is limited to pickle's depth (256): rmp-serde's default (1024) lets serde recurse
/// deep enough to overflow a thread's 2 MiB stack, which aborts the process.
#[cfg(feature = "msgpack")]
fn msgpack_decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(pickle::MAX_DEPTH);
    V::deserialize(&mut de).map_err(|e| match e {
        rmp_serde::decode::Error::Syntax(msg) => serde_message_error(&msg),
        other => Error::decode(Format::MessagePack, other),
    })
}

/// Recovers the structure of serde's default `invalid type`/`invalid value` messages, which
/// rmp-serde flattens into strings.
#[cfg(feature = "msgpack")]
fn serde_message_error(msg: &str) -> Error {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = msg
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            return Error::WrongType {
                expected: expected.to_owned(),
                found: found.to_owned(),
            };
        }
    }
    Error::Serde(msg.to_owned())
}

/// A disk for caches only Rust reads: like [`Disk`], but structured values are MessagePack
/// (mode 5) instead of pickle.
///
/// MessagePack is smaller and faster to encode than pickle for structs (field names are kept,
/// so fields may be added with `#[serde(default)]`). Keys are encoded exactly as [`Disk`] does,
/// so python can still list them; python-diskcache reads mode-5 values as `None` (its `fetch`
/// has no fallback). `MsgpackDisk` reads pickled entries too, so it can open a directory that
/// python or [`Disk`] wrote.
///
/// # Examples
///
/// ```
/// use dcache_disk::{DiskFormat, FileStore, Mode, MsgpackDisk};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Point { x: i32, y: i32 }
///
/// let dir = tempfile::tempdir()?;
/// let files = FileStore::new(dir.path());
/// let disk = MsgpackDisk::default();
/// let stored = disk.store(&Point { x: 1, y: 2 }, &files)?;
/// assert_eq!(stored.mode, Mode::MSGPACK);
/// assert_eq!(disk.fetch::<Point>(stored.as_ref(), &files)?, Point { x: 1, y: 2 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "msgpack")]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgpackDisk {
    disk: Disk,
}

#[cfg(feature = "msgpack")]
impl MsgpackDisk {
    /// A MessagePack disk with python-diskcache's defaults for files and keys.
    #[must_use]
    pub fn new() -> Self {
        MsgpackDisk::default()
    }

    /// Values at least this large go to files (default 32768).
    #[must_use]
    pub fn with_min_file_size(mut self, bytes: u64) -> Self {
        self.disk.min_file_size = bytes;
        self
    }
}

#[cfg(feature = "msgpack")]
impl DiskFormat for MsgpackDisk {
    fn put<K: Serialize + ?Sized>(&self, key: &K) -> Result<DbKey> {
        self.disk.put(key)
    }

    fn get<K: DeserializeOwned>(&self, key: SqlRef<'_>, raw: bool) -> Result<K> {
        self.disk.get(key, raw)
    }

    fn store<V: Serialize + ?Sized>(&self, value: &V, files: &FileStore) -> Result<Stored> {
        match classify_value(value) {
            ValueClass::Bytes(bytes) => self.disk.store_bytes(Cow::Borrowed(bytes), files),
            ValueClass::Primitive(Primitive::Real(f)) if f.is_nan() => {
                self.disk
                    .store_encoded(msgpack_encode(&f)?, Mode::MSGPACK, files)
            }
            ValueClass::Primitive(primitive) => self.disk.store_primitive(primitive, files),
            ValueClass::Structured => {
                self.disk
                    .store_encoded(msgpack_encode(value)?, Mode::MSGPACK, files)
            }
        }
    }

    fn fetch<V: DeserializeOwned>(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<V> {
        fetch_common(stored, files)
    }

    fn fetch_value(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<Value> {
        fetch_value_common(stored, files)
    }

    fn get_value(&self, key: SqlRef<'_>, raw: bool) -> Result<Value> {
        get_value_common(key, raw)
    }

    fn configure(&mut self, name: &str, value: SqlRef<'_>) -> Result<bool> {
        self.disk.configure_common(name, value)
    }

    fn settings(&self) -> Vec<(&'static str, SqlValue)> {
        self.disk.settings()
    }
}

#[cfg(feature = "msgpack")]
fn msgpack_encode<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| match e {
        rmp_serde::encode::Error::Syntax(msg) => Error::Serde(msg),
        other => Error::encode(Format::MessagePack, other),
    })
}

/// python-diskcache's `JSONDisk`: keys and values as zlib-compressed JSON.
///
/// Keys are `zlib.compress(json.dumps(key).encode())` stored as blobs, byte-identical to
/// python's, so both sides find the same rows. Values are compressed JSON, inline or in a file
/// when at least `min_file_size` compressed bytes. Streamed values (`read=True` in python)
/// bypass JSON and are stored as plain bytes, as python does.
///
/// JSON has no bytes type: a byte string is written as an array of numbers (python's
/// `json.dumps` refuses bytes). Non-finite floats are written and read as python does
/// (`NaN`, `Infinity`, `-Infinity`, which are not standard JSON).
///
/// # Examples
///
/// ```
/// use dcache_disk::{DiskFormat, FileStore, JsonDisk};
///
/// let dir = tempfile::tempdir()?;
/// let files = FileStore::new(dir.path());
/// let disk = JsonDisk::default();
/// let key = disk.put("key")?; // zlib.compress(b'"key"', 1)
/// assert_eq!(disk.get::<String>(key.value.as_ref(), key.raw)?, "key");
/// let stored = disk.store(&vec![1, 2, 3], &files)?;
/// assert_eq!(disk.fetch::<Vec<i32>>(stored.as_ref(), &files)?, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonDisk {
    min_file_size: u64,
    compress_level: u32,
}

#[cfg(feature = "json")]
impl Default for JsonDisk {
    fn default() -> Self {
        JsonDisk {
            min_file_size: DEFAULT_MIN_FILE_SIZE,
            compress_level: DEFAULT_COMPRESS_LEVEL,
        }
    }
}

#[cfg(feature = "json")]
impl JsonDisk {
    /// A JSON disk with python's defaults (compress level 1, `min_file_size` 32768).
    #[must_use]
    pub fn new() -> Self {
        JsonDisk::default()
    }

    /// The zlib level, 0–9 (default 1). A cache overrides it with `disk_compress_level`.
    ///
    /// # Errors
    ///
    /// [`Error::Setting`] for a level above 9.
    pub fn with_compress_level(mut self, level: u32) -> Result<Self> {
        self.compress_level = check_level(i64::from(level))?;
        Ok(self)
    }

    /// Values whose compressed JSON is at least this large go to files (default 32768).
    #[must_use]
    pub fn with_min_file_size(mut self, bytes: u64) -> Self {
        self.min_file_size = bytes;
        self
    }

    fn compress(&self, json: &[u8]) -> Result<Vec<u8>> {
        let mut encoder = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(json.len() / 2 + 16),
            flate2::Compression::new(self.compress_level),
        );
        encoder
            .write_all(json)
            .and_then(|()| encoder.finish())
            .map_err(|e| Error::encode(Format::Zlib, e))
    }

    fn decode<T: DeserializeOwned>(compressed: &[u8]) -> Result<T> {
        from_value(Self::decode_value(compressed)?)
    }

    fn decode_value(compressed: &[u8]) -> Result<Value> {
        // A first guess of 4:1, only as a hint: a refused reservation is not an abort, and
        // `read_to_end` grows the buffer with fallible reservations as output arrives (deflate
        // expands at most ~1032:1, so the output is bounded by the input).
        let mut json = Vec::new();
        let _ = json.try_reserve(compressed.len().saturating_mul(4));
        flate2::read::ZlibDecoder::new(compressed)
            .read_to_end(&mut json)
            .map_err(|e| Error::decode(Format::Zlib, e))?;
        // python's reader, not serde_json: json.dumps writes NaN and Infinity for non-finite
        // floats, which standard JSON parsers refuse.
        pyjson::from_slice_value(&json)
    }

    fn stored_blob(stored: StoredRef<'_>, files: &FileStore) -> Result<Vec<u8>> {
        match (stored.mode, stored.filename, stored.value) {
            (Mode::RAW, None, SqlRef::Blob(b)) => Ok(b.to_vec()),
            (Mode::BINARY, Some(_), _) => stored_bytes(stored, files),
            (Mode(m), _, value) => Err(Error::decode(
                Format::Json,
                format!(
                    "JsonDisk stores compressed blobs, found mode {m} with a {} value",
                    value.storage_class()
                ),
            )),
        }
    }
}

#[cfg(feature = "json")]
impl DiskFormat for JsonDisk {
    fn put<K: Serialize + ?Sized>(&self, key: &K) -> Result<DbKey> {
        let json = pyjson::to_vec(key)?;
        Ok(DbKey {
            value: SqlValue::Blob(self.compress(&json)?),
            raw: true,
        })
    }

    fn get<K: DeserializeOwned>(&self, key: SqlRef<'_>, raw: bool) -> Result<K> {
        from_value(self.get_value(key, raw)?)
    }

    fn get_value(&self, key: SqlRef<'_>, _raw: bool) -> Result<Value> {
        match key {
            SqlRef::Blob(b) => Self::decode_value(b),
            other => Err(Error::decode(
                Format::Json,
                format!(
                    "JsonDisk keys are compressed blobs, found {}",
                    other.storage_class()
                ),
            )),
        }
    }

    fn store<V: Serialize + ?Sized>(&self, value: &V, files: &FileStore) -> Result<Stored> {
        let compressed = self.compress(&pyjson::to_vec(value)?)?;
        place(
            Payload::Blob(Cow::Owned(compressed)),
            self.min_file_size,
            Mode::RAW,
            Mode::BINARY,
            files,
        )
    }

    fn fetch<V: DeserializeOwned>(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<V> {
        Self::decode(&Self::stored_blob(stored, files)?)
    }

    fn fetch_value(&self, stored: StoredRef<'_>, files: &FileStore) -> Result<Value> {
        Self::decode_value(&Self::stored_blob(stored, files)?)
    }

    fn configure(&mut self, name: &str, value: SqlRef<'_>) -> Result<bool> {
        match name {
            "min_file_size" => {
                self.min_file_size = setting_u64(name, value)?;
                Ok(true)
            }
            "compress_level" => {
                self.compress_level = check_level(setting_i64(name, value)?)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn settings(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            (
                "min_file_size",
                SqlValue::Integer(self.min_file_size as i64),
            ),
            (
                "compress_level",
                SqlValue::Integer(i64::from(self.compress_level)),
            ),
        ]
    }
}

fn setting_error(name: &str, value: SqlRef<'_>, reason: &str) -> Error {
    Error::Setting {
        name: name.to_owned(),
        value: value.to_string(),
        reason: reason.to_owned(),
    }
}

/// Reads an integer setting; python may store whole numbers as REAL (see [`integral_i64`]).
fn setting_i64(name: &str, value: SqlRef<'_>) -> Result<i64> {
    match value {
        SqlRef::Integer(i) => Some(i),
        SqlRef::Real(f) => integral_i64(f),
        _ => None,
    }
    .ok_or_else(|| setting_error(name, value, "expected an integer"))
}

fn setting_u64(name: &str, value: SqlRef<'_>) -> Result<u64> {
    u64::try_from(setting_i64(name, value)?)
        .map_err(|_| setting_error(name, value, "expected a non-negative integer"))
}

fn check_protocol(protocol: i64) -> Result<u8> {
    match u8::try_from(protocol) {
        Ok(p) if p <= pickle::HIGHEST_PROTOCOL => Ok(p),
        _ => Err(setting_error(
            "pickle_protocol",
            SqlRef::Integer(protocol),
            "pickle protocols are 0 to 5",
        )),
    }
}

#[cfg(feature = "json")]
fn check_level(level: i64) -> Result<u32> {
    match level {
        // zlib's -1 is its default level, 6.
        -1 => Ok(6),
        0..=9 => Ok(level as u32),
        _ => Err(setting_error(
            "compress_level",
            SqlRef::Integer(level),
            "zlib levels are -1 to 9",
        )),
    }
}

#[cfg(all(test, not(feature = "msgpack")))]
mod tests {
    use super::*;

    #[test]
    fn a_msgpack_value_without_the_feature_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        // MessagePack's positive fixint 1.
        let stored = StoredRef {
            size: 0,
            mode: Mode::MSGPACK,
            filename: None,
            value: SqlRef::Blob(&[0x01]),
        };
        let err = Disk::new().fetch::<i64>(stored, &files).unwrap_err();
        assert!(
            matches!(&err, Error::Decode { format: Format::MessagePack, reason } if reason.contains("`msgpack` feature")),
            "{err:?}"
        );
        assert!(Disk::new().fetch_value(stored, &files).is_err());
    }
}
