//! Classifies a `Serialize` value as one of SQLite's native types or as structured data.
//!
//! Python's `Disk` stores `str`, `bytes`, in-range `int` and `float` natively (`raw`) and
//! pickles everything else. A Rust value maps the same way by the serde calls its `Serialize`
//! implementation makes: `serialize_str` is text, `serialize_bytes` (or a sequence whose every
//! element is a `u8`, so `&[u8]`, `Vec<u8>` and `[u8; N]`) is bytes, integers that fit in an
//! `i64` are integers, and floats are floats. Newtype structs are looked through.

use serde::ser::{self, Impossible, Serialize};
use std::fmt;

use crate::known;
use crate::probe::as_u8;

/// A value SQLite stores natively.
#[derive(Debug, Clone, PartialEq)]
pub enum Primitive {
    /// An integer in `i64` range.
    Integer(i64),
    /// A float (possibly NaN; callers decide what NaN means for them).
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// Returns the native form of `value`, or `None` when it is structured data (tuples, structs,
/// maps, options, booleans, integers outside `i64`) that a disk must serialize.
///
/// `Vec<u8>`, `[u8]`, `Box<[u8]>` and `Cow<[u8]>` (and references to them) are recognized
/// by their type and copied whole; other sequences whose every element is a `u8` are bytes
/// too, collected element by element. An empty sequence of another type is classified as
/// empty bytes here, as keys need: serde gives no element type for it, and an empty `&[u8]`
/// key must match python's `b''` key (a stored *value* that is an empty `Vec<String>` is an
/// empty list instead: [`DiskFormat::store`](crate::DiskFormat::store) knows the difference).
///
/// # Examples
///
/// ```
/// use dcache_disk::{classify, Primitive};
///
/// assert_eq!(classify("a"), Some(Primitive::Text("a".into())));
/// assert_eq!(classify(&42u8), Some(Primitive::Integer(42)));
/// assert_eq!(classify(&b"ab"[..]), Some(Primitive::Blob(b"ab".to_vec())));
/// assert_eq!(classify(&(1, "x")), None);
/// assert_eq!(classify(&u64::MAX), None); // too large for SQLite: pickled as a python int
/// ```
pub fn classify<T: Serialize + ?Sized>(value: &T) -> Option<Primitive> {
    if let Some(bytes) = known::byte_slice(value) {
        return Some(Primitive::Blob(bytes.to_vec()));
    }
    value
        .serialize(Classifier {
            empty_seq_is_bytes: true,
        })
        .ok()
}

/// A value as a disk stores it: bytes borrowed whole from a known byte type, or classified.
pub(crate) enum ValueClass<'a> {
    /// The bytes of a `Vec<u8>`, `&[u8]`, `Box<[u8]>` or `Cow<[u8]>`, not copied.
    Bytes(&'a [u8]),
    /// Any other native value.
    Primitive(Primitive),
    /// Structured data, to serialize.
    Structured,
}

/// Classifies a *value*: like [`classify`], but a known byte type is borrowed, not copied,
/// and an empty sequence whose type is not a known byte type is structured (python's `[]`
/// for an empty `Vec<String>`, as inside a structure), not `b''`.
pub(crate) fn classify_value<T: Serialize + ?Sized>(value: &T) -> ValueClass<'_> {
    if let Some(bytes) = known::byte_slice(value) {
        return ValueClass::Bytes(bytes);
    }
    match value.serialize(Classifier {
        empty_seq_is_bytes: false,
    }) {
        Ok(primitive) => ValueClass::Primitive(primitive),
        Err(NotPrimitive) => ValueClass::Structured,
    }
}

/// The "not a primitive" signal of the classifier; never shown to users.
#[derive(Debug)]
struct NotPrimitive;

impl fmt::Display for NotPrimitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a primitive")
    }
}

impl std::error::Error for NotPrimitive {}

impl ser::Error for NotPrimitive {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NotPrimitive
    }
}

#[derive(Clone, Copy)]
struct Classifier {
    /// Whether an empty sequence is empty bytes (keys) or structured (values).
    empty_seq_is_bytes: bool,
}

/// Collects the elements of a sequence while every one of them is a `u8`.
struct ByteSeq {
    bytes: Vec<u8>,
    /// The announced length: the capacity reserved at the first `u8`.
    hint: usize,
    /// Whether any element was seen.
    seen: bool,
    /// [`Classifier::empty_seq_is_bytes`].
    empty_is_bytes: bool,
}

impl ser::SerializeSeq for ByteSeq {
    type Ok = Primitive;
    type Error = NotPrimitive;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotPrimitive> {
        let byte = as_u8(value).ok_or(NotPrimitive)?;
        if self.bytes.capacity() == 0 {
            // Reserved only once a `u8` is seen: a `Vec<String>` is no byte string and
            // allocates nothing here. Bounded: the hint is only a hint.
            self.bytes.reserve(self.hint.clamp(1, 1 << 20));
        }
        self.bytes.push(byte);
        self.seen = true;
        Ok(())
    }

    fn end(self) -> Result<Primitive, NotPrimitive> {
        if self.seen || self.empty_is_bytes {
            Ok(Primitive::Blob(self.bytes))
        } else {
            Err(NotPrimitive)
        }
    }
}

impl ser::SerializeTuple for ByteSeq {
    type Ok = Primitive;
    type Error = NotPrimitive;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotPrimitive> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Primitive, NotPrimitive> {
        ser::SerializeSeq::end(self)
    }
}

fn int<T: TryInto<i64>>(v: T) -> Result<Primitive, NotPrimitive> {
    v.try_into()
        .map(Primitive::Integer)
        .map_err(|_| NotPrimitive)
}

impl ser::Serializer for Classifier {
    type Ok = Primitive;
    type Error = NotPrimitive;
    type SerializeSeq = ByteSeq;
    type SerializeTuple = ByteSeq;
    type SerializeTupleStruct = Impossible<Primitive, NotPrimitive>;
    type SerializeTupleVariant = Impossible<Primitive, NotPrimitive>;
    type SerializeMap = Impossible<Primitive, NotPrimitive>;
    type SerializeStruct = Impossible<Primitive, NotPrimitive>;
    type SerializeStructVariant = Impossible<Primitive, NotPrimitive>;

    fn serialize_bool(self, _v: bool) -> Result<Primitive, NotPrimitive> {
        // Python's `bool` is not stored raw: `type(x) is int` is false for it.
        Err(NotPrimitive)
    }
    fn serialize_i8(self, v: i8) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Primitive, NotPrimitive> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Primitive, NotPrimitive> {
        Ok(Primitive::Real(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Primitive, NotPrimitive> {
        Ok(Primitive::Real(v))
    }
    fn serialize_char(self, v: char) -> Result<Primitive, NotPrimitive> {
        Ok(Primitive::Text(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Primitive, NotPrimitive> {
        Ok(Primitive::Text(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Primitive, NotPrimitive> {
        Ok(Primitive::Blob(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Primitive, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _v: &T) -> Result<Primitive, NotPrimitive> {
        // `Option<T>` is structured: `None` must stay distinguishable from `Some(x)`.
        Err(NotPrimitive)
    }
    fn serialize_unit(self) -> Result<Primitive, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Primitive, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<Primitive, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Primitive, NotPrimitive> {
        // `struct Image(Vec<u8>)`: its bytes are copied whole too.
        if let Some(bytes) = known::byte_slice(value) {
            return Ok(Primitive::Blob(bytes.to_vec()));
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Primitive, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ByteSeq, NotPrimitive> {
        Ok(ByteSeq {
            bytes: Vec::new(),
            hint: len.unwrap_or(0),
            seen: false,
            empty_is_bytes: self.empty_seq_is_bytes,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<ByteSeq, NotPrimitive> {
        self.serialize_seq(Some(len))
    }
    /// `[T]`, `Vec<T>`, `VecDeque<T>` and serde's other collections come here with their
    /// element type: a collection of `u8` is bytes, collected in one pass (and an empty one
    /// is `b''`), whatever wraps it (`#[serde(transparent)]`, a hand-written `Serialize`).
    fn collect_seq<I>(self, iter: I) -> Result<Primitive, NotPrimitive>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        if known::is_u8::<I::Item>() {
            return Ok(Primitive::Blob(known::u8_elements(iter).collect()));
        }
        known::collect_seq_default(self, iter)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, NotPrimitive> {
        Err(NotPrimitive)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, NotPrimitive> {
        Err(NotPrimitive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    struct UserId(String);

    #[derive(serde::Serialize)]
    struct Point {
        x: i32,
    }

    #[test]
    fn primitives_are_native() {
        assert_eq!(classify("é"), Some(Primitive::Text("é".into())));
        assert_eq!(
            classify(&String::from("s")),
            Some(Primitive::Text("s".into()))
        );
        assert_eq!(classify(&'c'), Some(Primitive::Text("c".into())));
        assert_eq!(classify(&i64::MIN), Some(Primitive::Integer(i64::MIN)));
        assert_eq!(
            classify(&(i64::MAX as u64)),
            Some(Primitive::Integer(i64::MAX))
        );
        assert_eq!(classify(&-1i8), Some(Primitive::Integer(-1)));
        assert_eq!(classify(&1.5f32), Some(Primitive::Real(1.5)));
        assert_eq!(classify(&-0.0f64), Some(Primitive::Real(-0.0)));
        assert_eq!(
            classify(&UserId("u".into())),
            Some(Primitive::Text("u".into()))
        );
    }

    #[test]
    fn byte_sequences_are_blobs() {
        assert_eq!(
            classify(&vec![0u8, 255]),
            Some(Primitive::Blob(vec![0, 255]))
        );
        assert_eq!(classify(&[7u8; 3]), Some(Primitive::Blob(vec![7; 3])));
        assert_eq!(classify(&b""[..]), Some(Primitive::Blob(vec![])));
        assert_eq!(
            classify(&Vec::<String>::new()),
            Some(Primitive::Blob(vec![]))
        );
    }

    #[derive(serde::Serialize)]
    #[serde(transparent)]
    struct Transparent(Vec<u8>);

    #[test]
    fn values_tell_empty_bytes_from_empty_lists_by_element_type() {
        let blob = |v: Vec<u8>| ValueClass::Primitive(Primitive::Blob(v));
        let is = |class: ValueClass<'_>, expected: ValueClass<'_>| match (class, expected) {
            (ValueClass::Bytes(a), ValueClass::Bytes(b)) => assert_eq!(a, b),
            (ValueClass::Primitive(a), ValueClass::Primitive(b)) => assert_eq!(a, b),
            (ValueClass::Structured, ValueClass::Structured) => {}
            _ => panic!("wrong class"),
        };
        is(classify_value(&Vec::<u8>::new()), ValueClass::Bytes(b""));
        is(classify_value(&b""[..]), ValueClass::Bytes(b""));
        is(classify_value(&vec![1u8]), ValueClass::Bytes(b"\x01"));
        // Collections of `u8` that are not recognized by type: bytes, by their element type.
        let deque = std::collections::VecDeque::<u8>::new();
        is(classify_value(&deque), blob(vec![]));
        is(classify_value(&Transparent(vec![])), blob(vec![]));
        is(classify_value(&Transparent(vec![1, 2])), blob(vec![1, 2]));
        // Empty collections of anything else are lists (python `[]`).
        is(
            classify_value(&Vec::<String>::new()),
            ValueClass::Structured,
        );
        is(classify_value(&Vec::<u16>::new()), ValueClass::Structured);
        is(classify_value(&[0u8; 0]), ValueClass::Structured);
        is(classify_value(&vec!["a"]), ValueClass::Structured);
    }

    #[test]
    fn structured_values_are_not_native() {
        assert_eq!(classify(&true), None);
        assert_eq!(classify(&u64::MAX), None);
        assert_eq!(classify(&i128::MAX), None);
        assert_eq!(classify(&Some(1)), None);
        assert_eq!(classify(&None::<i32>), None);
        assert_eq!(classify(&()), None);
        assert_eq!(classify(&(1, "x")), None);
        assert_eq!(classify(&vec![1u16, 2]), None);
        assert_eq!(classify(&vec!["a"]), None);
        assert_eq!(classify(&Point { x: 1 }), None);
        assert_eq!(classify(&BTreeMap::<i32, i32>::new()), None);
    }
}
