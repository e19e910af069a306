//! SQLite column values, owned and borrowed, without depending on SQLite.

use std::fmt;

/// A value as SQLite stores it in the `key`, `value` and `tag` columns and in `Settings`.
///
/// The `Cache` table declares those columns with BLOB affinity, so SQLite keeps each value's
/// storage class exactly as bound: an integer stays an integer, text stays text.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float. SQLite binds NaN as `NULL`, so a NaN never reaches a column.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// As the value it holds: `NULL` as none, integers, floats, text, and blobs as bytes (so a
/// report holding settings can be written as JSON).
impl serde::Serialize for SqlValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SqlValue::Null => s.serialize_none(),
            SqlValue::Integer(i) => s.serialize_i64(*i),
            SqlValue::Real(f) => s.serialize_f64(*f),
            SqlValue::Text(t) => s.serialize_str(t),
            SqlValue::Blob(b) => s.serialize_bytes(b),
        }
    }
}

/// A borrowed [`SqlValue`], as read from a row without copying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlRef<'a> {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl SqlValue {
    /// Borrows this value.
    #[must_use]
    pub fn as_ref(&self) -> SqlRef<'_> {
        match self {
            SqlValue::Null => SqlRef::Null,
            SqlValue::Integer(i) => SqlRef::Integer(*i),
            SqlValue::Real(f) => SqlRef::Real(*f),
            SqlValue::Text(s) => SqlRef::Text(s),
            SqlValue::Blob(b) => SqlRef::Blob(b),
        }
    }
}

impl SqlRef<'_> {
    /// Copies this value into an owned [`SqlValue`].
    #[must_use]
    pub fn to_owned(self) -> SqlValue {
        match self {
            SqlRef::Null => SqlValue::Null,
            SqlRef::Integer(i) => SqlValue::Integer(i),
            SqlRef::Real(f) => SqlValue::Real(f),
            SqlRef::Text(s) => SqlValue::Text(s.to_owned()),
            SqlRef::Blob(b) => SqlValue::Blob(b.to_vec()),
        }
    }

    /// The SQLite storage class name: `NULL`, `INTEGER`, `REAL`, `TEXT` or `BLOB`.
    #[must_use]
    pub fn storage_class(self) -> &'static str {
        match self {
            SqlRef::Null => "NULL",
            SqlRef::Integer(_) => "INTEGER",
            SqlRef::Real(_) => "REAL",
            SqlRef::Text(_) => "TEXT",
            SqlRef::Blob(_) => "BLOB",
        }
    }
}

impl fmt::Display for SqlRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlRef::Null => f.write_str("NULL"),
            SqlRef::Integer(i) => write!(f, "{i}"),
            SqlRef::Real(x) => write!(f, "{x:?}"),
            SqlRef::Text(s) => write!(f, "{s:?}"),
            SqlRef::Blob(b) => {
                f.write_str("x'")?;
                for byte in *b {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
        }
    }
}

impl fmt::Display for SqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}

impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(v: Vec<u8>) -> Self {
        SqlValue::Blob(v)
    }
}

impl From<&[u8]> for SqlValue {
    fn from(v: &[u8]) -> Self {
        SqlValue::Blob(v.to_vec())
    }
}

/// `2^63`: the first `f64` past `i64::MAX` (`i64::MAX` itself is not an `f64`).
const I64_END: f64 = 9_223_372_036_854_775_808.0;

/// The integer a SQLite `REAL` holds when it is a whole number in `i64`'s range.
///
/// python writes some integer settings as floats (`FanoutCache` stores `size_limit / shards`,
/// a user may pass `1e9`), and SQLite keeps them as `REAL`; this is the one place dcache reads
/// such a value back as an integer. The bound is `i64`'s range, `-2^63 <= real < 2^63`: every
/// whole `f64` inside it converts exactly. A fraction, a value outside the range, an infinity
/// or a NaN gives `None`.
///
/// ```
/// use dcache_disk::integral_i64;
///
/// assert_eq!(integral_i64(1e9), Some(1_000_000_000));
/// assert_eq!(integral_i64(-2.0), Some(-2));
/// assert_eq!(integral_i64(-9_223_372_036_854_775_808.0), Some(i64::MIN));
/// assert_eq!(integral_i64(1.5), None);
/// assert_eq!(integral_i64(9_223_372_036_854_775_808.0), None);
/// assert_eq!(integral_i64(f64::INFINITY), None);
/// assert_eq!(integral_i64(f64::NAN), None);
/// ```
#[must_use]
pub fn integral_i64(real: f64) -> Option<i64> {
    // Whole and inside the range: the cast is exact.
    (real.fract() == 0.0 && (-I64_END..I64_END).contains(&real)).then_some(real as i64)
}

/// An encoded key: the `key` column value and the `raw` flag stored beside it.
///
/// `raw` is true when the key is stored natively (text, blob, integer, real) and false when the
/// blob holds a serialized (pickled) key. Python looks keys up by `(key, raw)`, so both must
/// match for two processes to find the same row.
#[derive(Debug, Clone, PartialEq)]
pub struct DbKey {
    /// The `key` column.
    pub value: SqlValue,
    /// The `raw` column.
    pub raw: bool,
}
