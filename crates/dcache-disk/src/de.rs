//! Reads native SQLite values (`raw` keys, `MODE_RAW` values, file contents) into serde types.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::error::{Error, Result};
use crate::known;
use crate::sql::SqlRef;

/// Deserializes a native SQLite value into `T`.
///
/// Integers read as any integer type that holds them (and as floats), text as strings (and
/// `char`, and unit enum variants), blobs as bytes (`Vec<u8>`, `serde_bytes::ByteBuf`,
/// `[u8; N]`) and `NULL` as `()` or `None`. Anything else is [`Error::WrongType`], naming
/// what was found and what was expected.
///
/// # Examples
///
/// ```
/// use dcache_disk::{from_sql, SqlRef};
///
/// let n: u16 = from_sql(SqlRef::Integer(7))?;
/// assert_eq!(n, 7);
/// let bytes: Vec<u8> = from_sql(SqlRef::Blob(b"ab"))?;
/// assert_eq!(bytes, b"ab");
/// assert!(from_sql::<String>(SqlRef::Integer(7)).is_err());
/// # Ok::<(), dcache_disk::Error>(())
/// ```
pub fn from_sql<T: DeserializeOwned>(value: SqlRef<'_>) -> Result<T> {
    T::deserialize(SqlDeserializer(value))
}

/// Deserializes bytes read whole (a value file, `MODE_BINARY`) into `T`, handing the buffer
/// over without copying where `T` takes it: `Vec<u8>`, `Box<[u8]>` and `Cow<[u8]>` are
/// recognized by type (serde would build them one byte at a time), and types that ask for a
/// byte buffer (`serde_bytes::ByteBuf`, `bytes::Bytes`) get it through `visit_byte_buf`.
/// Other types read the bytes as [`from_sql`] reads a BLOB.
pub(crate) fn from_byte_buf<T: DeserializeOwned>(bytes: Vec<u8>) -> Result<T> {
    match known::from_byte_buf::<T>(bytes) {
        Ok(value) => Ok(value),
        Err(bytes) => T::deserialize(ByteBufDeserializer(bytes)),
    }
}

/// A serde `Deserializer` over an owned byte buffer: `visit_byte_buf` where the visitor may
/// take the buffer, otherwise as [`SqlDeserializer`] over a BLOB.
struct ByteBufDeserializer(Vec<u8>);

impl<'de> de::Deserializer<'de> for ByteBufDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_byte_buf(self.0)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_byte_buf(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        SqlDeserializer(SqlRef::Blob(&self.0)).deserialize_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        SqlDeserializer(SqlRef::Blob(&self.0)).deserialize_tuple(len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        SqlDeserializer(SqlRef::Blob(&self.0)).deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes unit unit_struct tuple_struct map struct identifier ignored_any
    }
}

/// A serde `Deserializer` over one borrowed SQLite value.
#[derive(Debug, Clone, Copy)]
pub struct SqlDeserializer<'a>(pub SqlRef<'a>);

impl<'de> de::Deserializer<'de> for SqlDeserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            SqlRef::Null => visitor.visit_unit(),
            SqlRef::Integer(i) => visitor.visit_i64(i),
            SqlRef::Real(f) => visitor.visit_f64(f),
            SqlRef::Text(s) => visitor.visit_str(s),
            SqlRef::Blob(b) => visitor.visit_bytes(b),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            SqlRef::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            SqlRef::Blob(b) => crate::value::visit_all(b.iter().copied(), visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            SqlRef::Text(s) => visitor.visit_enum(s.into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact values are the point of these tests
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    enum Color {
        Red,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Id(u32);

    #[test]
    fn reads_natives_into_rust_types() {
        assert_eq!(from_sql::<i64>(SqlRef::Integer(-5)).unwrap(), -5);
        assert_eq!(from_sql::<f64>(SqlRef::Integer(2)).unwrap(), 2.0);
        assert_eq!(from_sql::<f64>(SqlRef::Real(1.5)).unwrap(), 1.5);
        assert_eq!(from_sql::<String>(SqlRef::Text("é")).unwrap(), "é");
        assert_eq!(from_sql::<char>(SqlRef::Text("é")).unwrap(), 'é');
        assert_eq!(
            from_sql::<Vec<u8>>(SqlRef::Blob(&[1, 2])).unwrap(),
            vec![1, 2]
        );
        assert_eq!(from_sql::<[u8; 2]>(SqlRef::Blob(&[1, 2])).unwrap(), [1, 2]);
        assert_eq!(from_sql::<Option<i64>>(SqlRef::Null).unwrap(), None);
        assert_eq!(
            from_sql::<Option<i64>>(SqlRef::Integer(1)).unwrap(),
            Some(1)
        );
        assert_eq!(from_sql::<Color>(SqlRef::Text("Red")).unwrap(), Color::Red);
        assert_eq!(from_sql::<Id>(SqlRef::Integer(9)).unwrap(), Id(9));
    }

    #[test]
    fn mismatches_are_typed_errors() {
        match from_sql::<String>(SqlRef::Integer(7)) {
            Err(Error::WrongType { expected, found }) => {
                assert_eq!(expected, "a string");
                assert_eq!(found, "integer `7`");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            from_sql::<u8>(SqlRef::Integer(300)),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            from_sql::<i64>(SqlRef::Text("1")),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            from_sql::<[u8; 3]>(SqlRef::Blob(&[1])),
            Err(Error::WrongType { .. })
        ));
        // Longer than the array: an error, not the first bytes.
        let longer = from_sql::<[u8; 2]>(SqlRef::Blob(&[1, 2, 3]));
        assert!(longer.is_err(), "{longer:?}");
        let longer = from_sql::<(u8, u8)>(SqlRef::Blob(&[1, 2, 3]));
        assert!(longer.is_err(), "{longer:?}");
    }
}
