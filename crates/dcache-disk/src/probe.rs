//! Detection of `u8` values behind a generic [`Serialize`].
//!
//! Serde has no "bytes" marker for `Vec<u8>`, `&[u8]` or `[u8; N]`: they serialize as sequences
//! of `u8`. Formats that want Python `bytes` for them (pickle) feed each element to
//! [`as_u8`], which answers without allocating: every serializer method other than
//! `serialize_u8` fails at once.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Returns `Some(b)` iff `value`'s `Serialize` impl calls exactly `serialize_u8(b)`, i.e. the
/// value is a Rust `u8` (or a type that serializes as one). Any other call makes this return
/// `None` cheaply.
pub(crate) fn as_u8<T: Serialize + ?Sized>(value: &T) -> Option<u8> {
    value.serialize(Probe).ok()
}

/// The probe serializer: accepts `serialize_u8`, rejects everything else.
struct Probe;

/// The (zero-sized) rejection of [`Probe`].
#[derive(Debug)]
struct NotU8;

impl fmt::Display for NotU8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a u8")
    }
}

impl std::error::Error for NotU8 {}

impl ser::Error for NotU8 {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NotU8
    }
}

/// Generates methods of [`Probe`] that reject their input.
macro_rules! reject {
    ($($method:ident($($arg:ty),*);)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<u8, NotU8> {
                Err(NotU8)
            }
        )*
    };
}

impl ser::Serializer for Probe {
    type Ok = u8;
    type Error = NotU8;
    type SerializeSeq = Impossible<u8, NotU8>;
    type SerializeTuple = Impossible<u8, NotU8>;
    type SerializeTupleStruct = Impossible<u8, NotU8>;
    type SerializeTupleVariant = Impossible<u8, NotU8>;
    type SerializeMap = Impossible<u8, NotU8>;
    type SerializeStruct = Impossible<u8, NotU8>;
    type SerializeStructVariant = Impossible<u8, NotU8>;

    fn serialize_u8(self, v: u8) -> Result<u8, NotU8> {
        Ok(v)
    }

    reject! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u8, NotU8> {
        Err(NotU8)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotU8> {
        Err(NotU8)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotU8> {
        Err(NotU8)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotU8> {
        Err(NotU8)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotU8> {
        Err(NotU8)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotU8> {
        Err(NotU8)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotU8> {
        Err(NotU8)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotU8> {
        Err(NotU8)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotU8> {
        Err(NotU8)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotU8> {
        Err(NotU8)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<u8, NotU8> {
        // The default implementation would format the value into a String first.
        Err(NotU8)
    }
}

#[cfg(test)]
mod tests {
    use super::as_u8;

    #[test]
    fn only_u8_is_detected() {
        assert_eq!(as_u8(&7u8), Some(7));
        assert_eq!(as_u8(&255u8), Some(255));
        assert_eq!(as_u8(&7i8), None);
        assert_eq!(as_u8(&7u16), None);
        assert_eq!(as_u8(&7i64), None);
        assert_eq!(as_u8("x"), None);
        assert_eq!(as_u8(&Some(7u8)), None);
        assert_eq!(as_u8(&vec![7u8]), None);
        assert_eq!(as_u8(&'a'), None);
        assert_eq!(as_u8(&()), None);
        assert_eq!(as_u8(&format_args!("{}", 1)), None);
    }
}
