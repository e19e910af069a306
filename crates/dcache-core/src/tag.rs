//! Tags: a second key stored with an entry, for bulk eviction.

use std::fmt;

use dcache_disk::{SqlRef, SqlValue};

/// A tag stored with an entry (the `tag` column), used by [`Cache::evict`](crate::Cache::evict).
///
/// Tags are bound as they are, like python's: text, bytes, integers or floats, and a tag written
/// by python (`str`, `bytes`, `int`, `float`) reads back as the same variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Tag {
    /// Text (python `str`).
    Text(String),
    /// Bytes (python `bytes`).
    Blob(Vec<u8>),
    /// An integer (python `int`).
    Integer(i64),
    /// A float (python `float`); NaN is refused when stored.
    Real(f64),
}

impl Tag {
    /// The tag as a column value.
    #[must_use]
    pub fn as_sql(&self) -> SqlRef<'_> {
        match self {
            Tag::Text(s) => SqlRef::Text(s),
            Tag::Blob(b) => SqlRef::Blob(b),
            Tag::Integer(i) => SqlRef::Integer(*i),
            Tag::Real(f) => SqlRef::Real(*f),
        }
    }

    /// Reads the `tag` column; `NULL` is no tag.
    #[must_use]
    pub fn from_sql(value: SqlRef<'_>) -> Option<Tag> {
        match value {
            SqlRef::Null => None,
            SqlRef::Text(s) => Some(Tag::Text(s.to_owned())),
            SqlRef::Blob(b) => Some(Tag::Blob(b.to_vec())),
            SqlRef::Integer(i) => Some(Tag::Integer(i)),
            SqlRef::Real(f) => Some(Tag::Real(f)),
        }
    }

    /// As an owned column value.
    #[must_use]
    pub fn to_sql_value(&self) -> SqlValue {
        self.as_sql().to_owned()
    }
}

/// As the value it holds (text, bytes, integer or float), like [`SqlValue`].
impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tag::Text(t) => s.serialize_str(t),
            Tag::Blob(b) => s.serialize_bytes(b),
            Tag::Integer(i) => s.serialize_i64(*i),
            Tag::Real(f) => s.serialize_f64(*f),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_sql().fmt(f)
    }
}

impl From<&str> for Tag {
    fn from(v: &str) -> Self {
        Tag::Text(v.to_owned())
    }
}

impl From<String> for Tag {
    fn from(v: String) -> Self {
        Tag::Text(v)
    }
}

impl From<&String> for Tag {
    fn from(v: &String) -> Self {
        Tag::Text(v.clone())
    }
}

impl From<Vec<u8>> for Tag {
    fn from(v: Vec<u8>) -> Self {
        Tag::Blob(v)
    }
}

impl From<&[u8]> for Tag {
    fn from(v: &[u8]) -> Self {
        Tag::Blob(v.to_vec())
    }
}

impl From<i64> for Tag {
    fn from(v: i64) -> Self {
        Tag::Integer(v)
    }
}

impl From<i32> for Tag {
    fn from(v: i32) -> Self {
        Tag::Integer(i64::from(v))
    }
}

impl From<u32> for Tag {
    fn from(v: u32) -> Self {
        Tag::Integer(i64::from(v))
    }
}

impl From<f64> for Tag {
    fn from(v: f64) -> Self {
        Tag::Real(v)
    }
}
