//! Keys and values as Redis strings, encoded by a dcache [`DiskFormat`].
//!
//! A key is encoded by the disk exactly as a [`Cache`](dcache_core::Cache) puts it in its
//! `key` column (a `str`, `bytes`, `int` or `float` stays native; anything else is pickled,
//! `raw` false), and the Redis key is the store's prefix followed by the pickle (protocol 5)
//! of the tuple `(key column, raw)`.
//!
//! A value is encoded by the disk exactly as a `Cache` stores it inline (the disk never writes
//! a value file here: its file threshold is raised past any value), and the Redis string is the
//! pickle (protocol 5) of the tuple `(value column, mode, tag)`, where `mode` is the
//! python-diskcache mode (1 raw, 4 pickle, ...) and `tag` the entry's tag or `None`.
//!
//! With the default [`Disk`](dcache_core::Disk), python reads both back with its standard
//! library and python-diskcache's own `Disk`:
//!
//! ```python
//! value_column, mode, tag = pickle.loads(redis.get(prefix + pickle.dumps((key, True), 5)))
//! value = diskcache.Disk(directory).fetch(mode, None, value_column, False)
//! ```

use dcache_core::disk::pickle;
use dcache_core::disk::{FileStore, Mode, SqlRef, SqlValue, StoredRef};
use dcache_core::{DiskFormat, Error, Result, Tag, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The pickle protocol of the key and record tuples.
const PROTOCOL: u8 = 5;

/// Encodes keys and values with a disk, never writing a value file.
#[derive(Debug, Clone)]
pub(crate) struct Codec<D> {
    disk: D,
    /// Never written to: the disk's file threshold is raised past any value.
    files: FileStore,
    prefix: Vec<u8>,
}

/// A decoded record: the stored value with its mode and tag.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) column: SqlValue,
    pub(crate) mode: Mode,
    pub(crate) tag: Option<Tag>,
}

impl<D: DiskFormat> Codec<D> {
    /// A codec writing keys under `prefix`; `disk`'s file threshold is raised so that every
    /// value stays inline.
    pub(crate) fn new(mut disk: D, prefix: Vec<u8>) -> Result<Self> {
        disk.configure("min_file_size", SqlRef::Integer(i64::MAX))?;
        Ok(Codec {
            disk,
            files: FileStore::new(std::path::Path::new(
                "/nonexistent/dcache-redis/never-written",
            )),
            prefix,
        })
    }

    /// The key prefix.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The Redis key of `key`.
    pub(crate) fn key<K: Serialize + ?Sized>(&self, key: &K) -> Result<Vec<u8>> {
        let db = self.disk.put(key)?;
        let tuple = Value::Tuple(vec![sql_to_value(db.value), Value::Bool(db.raw)]);
        let mut out = self.prefix.clone();
        out.extend_from_slice(&pickle::value_to_vec(&tuple, PROTOCOL)?);
        Ok(out)
    }

    /// The Redis string of `value` with `tag`.
    pub(crate) fn value<V: Serialize + ?Sized>(
        &self,
        value: &V,
        tag: Option<&Tag>,
    ) -> Result<Vec<u8>> {
        let stored = self.disk.store(value, &self.files)?;
        if stored.filename.is_some() {
            return Err(invalid(
                "the disk wrote a value file; the Redis store keeps values inline: use a disk \
                 that honours `min_file_size`",
            ));
        }
        Self::record(stored.value, stored.mode, tag)
    }

    /// The Redis string of an already stored column.
    pub(crate) fn record(column: SqlValue, mode: Mode, tag: Option<&Tag>) -> Result<Vec<u8>> {
        if let Some(Tag::Real(f)) = tag
            && f.is_nan()
        {
            return Err(Error::NanTag);
        }
        let tuple = Value::Tuple(vec![
            sql_to_value(column),
            Value::Int(i64::from(mode.0)),
            tag.map_or(Value::None, |t| sql_to_value(t.to_sql_value())),
        ]);
        Ok(pickle::value_to_vec(&tuple, PROTOCOL)?)
    }

    /// Decodes a Redis string into its record.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Record> {
        let decoded =
            pickle::value_from_slice(bytes).map_err(|e| invalid(&format!("not a pickle ({e})")))?;
        let Value::Tuple(mut items) = decoded else {
            return Err(invalid("not a dcache record (a pickled 3-tuple)"));
        };
        if items.len() != 3 {
            return Err(invalid("not a dcache record (a pickled 3-tuple)"));
        }
        let tag = items.pop().and_then(value_to_sql);
        let mode = match items.pop() {
            Some(Value::Int(m)) => u8::try_from(m)
                .map(Mode)
                .map_err(|_| invalid("its mode is out of range"))?,
            _ => return Err(invalid("its mode is not an integer")),
        };
        let column = items
            .pop()
            .and_then(value_to_sql)
            .ok_or_else(|| invalid("its value is not a column value"))?;
        Ok(Record {
            column,
            mode,
            tag: tag.map(|t| Tag::from_sql(t.as_ref())).unwrap_or_default(),
        })
    }

    /// The value of a record.
    pub(crate) fn fetch<V: DeserializeOwned>(&self, record: &Record) -> Result<V> {
        Ok(self.disk.fetch(
            StoredRef {
                size: 0,
                mode: record.mode,
                filename: None,
                value: record.column.as_ref(),
            },
            &self.files,
        )?)
    }
}

/// A column value as a python value.
fn sql_to_value(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::None,
        SqlValue::Integer(i) => Value::Int(i),
        SqlValue::Real(f) => Value::Float(f),
        SqlValue::Text(s) => Value::Str(s),
        SqlValue::Blob(b) => Value::Bytes(b),
    }
}

/// A python value as a column value (`None` for anything a column cannot hold).
fn value_to_sql(v: Value) -> Option<SqlValue> {
    match v {
        Value::None => Some(SqlValue::Null),
        Value::Int(i) => Some(SqlValue::Integer(i)),
        Value::Float(f) => Some(SqlValue::Real(f)),
        Value::Str(s) => Some(SqlValue::Text(s)),
        Value::Bytes(b) => Some(SqlValue::Blob(b)),
        _ => None,
    }
}

/// A record that cannot be decoded.
fn invalid(why: &str) -> Error {
    Error::Disk(dcache_core::disk::Error::Serde(format!(
        "a value in Redis is unreadable: {why}; it was not written by dcache-redis (another \
         program uses this key prefix?): delete the key or use another prefix"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcache_core::Disk;

    #[test]
    fn values_and_tags_round_trip() -> Result<()> {
        let codec = Codec::new(Disk::default(), b"p:".to_vec())?;
        let big = "x".repeat(100_000);
        for tag in [None, Some(Tag::from("t")), Some(Tag::Integer(7))] {
            let bytes = codec.value(&("a", 1, big.as_str()), tag.as_ref())?;
            let record = Codec::<Disk>::decode(&bytes)?;
            assert_eq!(record.tag, tag);
            let back: (String, i64, String) = codec.fetch(&record)?;
            assert_eq!(back, ("a".to_owned(), 1, big.clone()));
        }
        let record = Codec::<Disk>::decode(&codec.value(&42i64, None)?)?;
        assert_eq!(
            (record.mode, &record.column),
            (Mode::RAW, &SqlValue::Integer(42))
        );
        Ok(())
    }

    #[test]
    fn keys_are_prefixed_and_distinct() -> Result<()> {
        let codec = Codec::new(Disk::default(), b"p:".to_vec())?;
        let a = codec.key("1")?;
        let b = codec.key(&1i64)?;
        let c = codec.key(&("1",))?;
        assert!(a.starts_with(b"p:") && b.starts_with(b"p:"));
        assert!(a != b && b != c && a != c);
        assert_eq!(a, codec.key("1")?);
        Ok(())
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bytes in [
            &b"junk"[..],
            &pickle::value_to_vec(&Value::Int(1), 5).unwrap(),
        ] {
            let err = Codec::<Disk>::decode(bytes).unwrap_err();
            assert!(err.to_string().contains("prefix"), "{err}");
        }
    }
}
