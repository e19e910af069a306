//! [`Value`]: any Python value dcache can read, for when the stored type is not known.
//!
//! A [`Value`] is what a pickle decodes to before it is turned into a Rust type, and what a tool
//! prints when it inspects a cache written by Python. Its [`Display`](std::fmt::Display) output
//! looks like Python's `repr()`; [`from_value`] deserializes it into any serde type.
//!
//! `Value` also implements [`Serialize`](serde::Serialize) and
//! [`Deserialize`](serde::Deserialize): through the pickle encoder it writes back the same Python
//! types it was read from (a tuple stays a tuple, a set a set), and through other serde formats
//! it becomes the nearest equivalent (tuples and sets become sequences).
//!
//! The module's files: `int.rs` ([`BigInt`] and the decimal integer parse), `repr.rs` (the
//! `Display`), `serialize.rs` and `deserialize.rs` (`Value`'s serde impls), `deserializer.rs`
//! (`Value` as a serde `Deserializer`, behind [`from_value`]).

mod deserialize;
mod deserializer;
mod int;
mod repr;
mod serialize;
#[cfg(test)]
mod tests;

use serde::de::{self, Expected, Unexpected};

use crate::error::Error;

pub use deserializer::from_value;
pub(crate) use deserializer::visit_all;
pub use int::BigInt;
pub(crate) use int::{canonical_len, parse_decimal_int};

/// Name of the newtype struct a [`Value::Set`] serializes as; the pickle encoder writes a set.
pub(crate) const SET_MAGIC: &str = "$dcache::private::Set";
/// Name of the newtype struct a [`Value::FrozenSet`] serializes as.
pub(crate) const FROZENSET_MAGIC: &str = "$dcache::private::FrozenSet";
/// Name of the newtype struct an integer beyond 128 bits serializes as.
pub(crate) const BIGINT_MAGIC: &str = "$dcache::private::BigInt";
/// Name of the newtype struct `Value`'s `Deserialize` impl asks for, so that the [`Value`]
/// deserializer can hand over tuples, sets and big integers without losing their type.
const VALUE_MAGIC: &str = "$dcache::private::Value";
/// Enum variant tags used between the `Value` deserializer and `Value`'s `Deserialize` impl.
const TUPLE_TAG: &str = "$tuple";
const SET_TAG: &str = "$set";
const FROZENSET_TAG: &str = "$frozenset";
const BIGINT_TAG: &str = "$bigint";

/// Any Python value dcache can read or write: the builtin types pickle stores without running
/// code.
///
/// Decoding produces canonical values: integers that fit `i64` are [`Value::Int`], only larger
/// ones are [`Value::BigInt`] (`Value::from(BigInt)` applies the same rule). Containers keep
/// Python's order (insertion order for dicts, iteration order for sets as it was pickled).
/// Decoded values nest at most 256 containers deep. A crafted pickle can hold duplicate dict
/// keys or set items; they are kept as they come (deserializing into a map keeps the last).
///
/// # Examples
///
/// ```
/// use dcache_disk::{from_value, pickle, Value};
///
/// let value = Value::Dict(vec![
///     (Value::from("id"), Value::from(7)),
///     (Value::from("tags"), Value::Tuple(vec![Value::from("a"), Value::from(b"b".to_vec())])),
/// ]);
/// assert_eq!(value.to_string(), "{'id': 7, 'tags': ('a', b'b')}");
///
/// // Written back as the same Python types.
/// let bytes = pickle::value_to_vec(&value, 5)?;
/// assert_eq!(pickle::value_from_slice(&bytes)?, value);
///
/// #[derive(serde::Deserialize)]
/// struct Item {
///     id: u32,
///     tags: (String, Vec<u8>),
/// }
/// let item: Item = from_value(value)?;
/// assert_eq!((item.id, item.tags.1), (7, b"b".to_vec()));
/// # Ok::<(), dcache_disk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Python's `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An `int` that fits in 64 bits.
    Int(i64),
    /// An `int` outside `i64`.
    BigInt(BigInt),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` (or `bytearray`).
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<Value>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A `set`.
    Set(Vec<Value>),
    /// A `frozenset`.
    FrozenSet(Vec<Value>),
}

impl Value {
    /// The name of the Python type of this value (`"NoneType"`, `"int"`, `"dict"`...).
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
        }
    }

    /// Whether this is `None`.
    #[must_use]
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The boolean, if this is a `bool`.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an `int` that fits `i64`.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::BigInt(b) => b.to_i64(),
            _ => None,
        }
    }

    /// The float, if this is a `float`.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The string, if this is a `str`.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a `bytes`.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The items, if this is a `list`, `tuple`, `set` or `frozenset`.
    #[must_use]
    pub fn as_items(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) | Value::Set(v) | Value::FrozenSet(v) => Some(v),
            _ => None,
        }
    }

    /// The entries, if this is a `dict`.
    #[must_use]
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// How this value is described in type mismatch errors.
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Value::None => Unexpected::Other("None"),
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Int(i) => Unexpected::Signed(*i),
            Value::BigInt(_) => Unexpected::Other("a big integer"),
            Value::Float(f) => Unexpected::Float(*f),
            Value::Str(s) => Unexpected::Str(s),
            Value::Bytes(b) => Unexpected::Bytes(b),
            Value::List(_) => Unexpected::Other("a list"),
            Value::Tuple(_) => Unexpected::Other("a tuple"),
            Value::Dict(_) => Unexpected::Other("a dict"),
            Value::Set(_) => Unexpected::Other("a set"),
            Value::FrozenSet(_) => Unexpected::Other("a frozenset"),
        }
    }

    /// A type mismatch error for this value.
    fn invalid_type(&self, expected: &dyn Expected) -> Error {
        de::Error::invalid_type(self.unexpected(), expected)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

/// Generates `From<int>` for integer types that always fit `i64`.
macro_rules! from_small_int {
    ($($t:ty),*) => {
        $(
            impl From<$t> for Value {
                fn from(v: $t) -> Value {
                    Value::Int(i64::from(v))
                }
            }
        )*
    };
}

from_small_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from(v)),
        }
    }
}

impl From<i128> for Value {
    fn from(v: i128) -> Value {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from_i128(v)),
        }
    }
}

impl From<u128> for Value {
    fn from(v: u128) -> Value {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from_u128(v)),
        }
    }
}

/// [`Value::Int`] if the integer fits `i64`, else [`Value::BigInt`].
impl From<BigInt> for Value {
    fn from(v: BigInt) -> Value {
        match v.to_i64() {
            Some(i) => Value::Int(i),
            None => Value::BigInt(v),
        }
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Float(f64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::List(v)
    }
}

impl From<()> for Value {
    fn from((): ()) -> Value {
        Value::None
    }
}
