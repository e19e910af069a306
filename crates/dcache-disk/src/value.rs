//! [`Value`]: any Python value dcache can read, for when the stored type is not known.
//!
//! A [`Value`] is what a pickle decodes to before it is turned into a Rust type, and what a tool
//! prints when it inspects a cache written by Python. Its [`Display`](fmt::Display) output looks
//! like Python's `repr()`; [`from_value`] deserializes it into any serde type.
//!
//! `Value` also implements [`Serialize`] and [`Deserialize`]: through the pickle encoder it writes
//! back the same Python types it was read from (a tuple stays a tuple, a set a set), and through
//! other serde formats it becomes the nearest equivalent (tuples and sets become sequences).

use std::fmt::{self, Write as _};

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// Integers with more bytes than this are displayed in hexadecimal: converting them to decimal
/// takes quadratic time (Python itself refuses to convert ints above 4300 digits).
const MAX_DECIMAL_DISPLAY_BYTES: usize = 8192;

// ------------------------------------------------------------------------------------------
// BigInt
// ------------------------------------------------------------------------------------------

/// An integer of any size, as Python's `int` holds it; [`Value`] uses it for integers outside
/// `i64`.
///
/// It is stored the way pickle's `LONG1`/`LONG4` opcodes store it: little-endian two's
/// complement, in the fewest bytes that hold the value (zero is no bytes at all), exactly like
/// Python's `pickle.encode_long`. Two `BigInt`s are equal iff they hold the same integer.
///
/// # Examples
///
/// ```
/// use dcache_disk::{pickle, BigInt, Value};
///
/// // Python's `pickle.dumps(2**100, 5)`.
/// let python = b"\x80\x05\x95\x10\0\0\0\0\0\0\0\x8a\r\0\0\0\0\0\0\0\0\0\0\0\0\x10.";
/// let Value::BigInt(big) = pickle::value_from_slice(python)? else { unreachable!() };
/// assert_eq!(big.to_string(), "1267650600228229401496703205376");
/// assert_eq!(big.to_i128(), Some(1 << 100));
/// assert_eq!(big, BigInt::from_i128(1 << 100));
/// # Ok::<(), dcache_disk::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct BigInt {
    /// Minimal little-endian two's complement bytes.
    bytes: Vec<u8>,
}

impl BigInt {
    /// Builds an integer from little-endian two's complement bytes (any length; redundant sign
    /// bytes are dropped, and no bytes mean zero).
    #[must_use]
    pub fn from_signed_bytes_le(bytes: &[u8]) -> BigInt {
        let len = canonical_len(bytes);
        BigInt {
            bytes: bytes.get(..len).unwrap_or_default().to_vec(),
        }
    }

    /// Builds an integer from owned little-endian two's complement bytes.
    fn from_vec(mut bytes: Vec<u8>) -> BigInt {
        let len = canonical_len(&bytes);
        bytes.truncate(len);
        BigInt { bytes }
    }

    /// The integer as minimal little-endian two's complement bytes, as `pickle.encode_long`
    /// returns them (empty for zero).
    #[must_use]
    pub fn as_signed_bytes_le(&self) -> &[u8] {
        &self.bytes
    }

    /// Builds a `BigInt` from an `i128`.
    #[must_use]
    pub fn from_i128(value: i128) -> BigInt {
        BigInt::from_vec(value.to_le_bytes().to_vec())
    }

    /// Builds a `BigInt` from a `u128`.
    #[must_use]
    pub fn from_u128(value: u128) -> BigInt {
        let mut bytes = value.to_le_bytes().to_vec();
        bytes.push(0);
        BigInt::from_vec(bytes)
    }

    /// Whether the integer is below zero.
    #[must_use]
    pub fn is_negative(&self) -> bool {
        self.bytes.last().is_some_and(|&b| b & 0x80 != 0)
    }

    /// The integer as an `i128`, or `None` if it does not fit.
    #[must_use]
    pub fn to_i128(&self) -> Option<i128> {
        if self.bytes.len() > 16 {
            return None;
        }
        let mut buf = if self.is_negative() {
            [0xff; 16]
        } else {
            [0; 16]
        };
        buf.get_mut(..self.bytes.len())?
            .copy_from_slice(&self.bytes);
        Some(i128::from_le_bytes(buf))
    }

    /// The integer as a `u128`, or `None` if it is negative or does not fit.
    #[must_use]
    pub fn to_u128(&self) -> Option<u128> {
        if self.is_negative() {
            return None;
        }
        let significant = match self.bytes.len() {
            0..=16 => &self.bytes[..],
            // A positive value with its top bit set needs a zero sign byte.
            17 if self.bytes.last() == Some(&0) => self.bytes.get(..16)?,
            _ => return None,
        };
        let mut buf = [0; 16];
        buf.get_mut(..significant.len())?
            .copy_from_slice(significant);
        Some(u128::from_le_bytes(buf))
    }

    /// The integer as an `i64`, or `None` if it does not fit.
    #[must_use]
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// The integer as a `u64`, or `None` if it is negative or does not fit.
    #[must_use]
    pub fn to_u64(&self) -> Option<u64> {
        self.to_u128().and_then(|v| u64::try_from(v).ok())
    }

    /// Parses decimal digits (ASCII `0`-`9` only, at least one) into an integer.
    ///
    /// Takes time quadratic in the number of digits: callers bound the length.
    pub(crate) fn from_decimal_digits(negative: bool, digits: &[u8]) -> Option<BigInt> {
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Magnitude in base 2^32, least significant limb first.
        let mut limbs: Vec<u32> = Vec::with_capacity(digits.len() / 9 + 1);
        for chunk in digits.chunks(9) {
            let mut scale: u64 = 1;
            let mut add: u64 = 0;
            for &d in chunk {
                scale *= 10;
                add = add * 10 + u64::from(d - b'0');
            }
            let mut carry = add;
            for limb in &mut limbs {
                let cur = u64::from(*limb) * scale + carry;
                *limb = cur as u32;
                carry = cur >> 32;
            }
            if carry != 0 {
                limbs.push(carry as u32);
            }
        }
        let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        bytes.push(0); // sign byte: the magnitude is non-negative
        if negative {
            negate_in_place(&mut bytes);
        }
        Some(BigInt::from_vec(bytes))
    }

    /// A short description for error messages: the value, or its size if it is long.
    fn describe(&self) -> String {
        if self.bytes.len() <= 128 {
            format!("the integer {self}")
        } else {
            format!("an integer of {} bytes", self.bytes.len())
        }
    }

    /// The magnitude (absolute value) as little-endian unsigned bytes.
    fn magnitude(&self) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        if self.is_negative() {
            // Room for the carry of -(-2^(8n-1)) = 2^(8n-1), whose top bit is set.
            bytes.push(0xff);
            negate_in_place(&mut bytes);
        }
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        bytes
    }
}

/// Negates a little-endian two's complement number in place (wrapping at its width).
fn negate_in_place(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes {
        let (v, c) = (!*b).overflowing_add(u8::from(carry));
        *b = v;
        carry = c;
    }
}

/// The length of the minimal two's complement representation of `bytes` (a prefix of it).
pub(crate) fn canonical_len(bytes: &[u8]) -> usize {
    let mut n = bytes.len();
    while let Some(&last) = n.checked_sub(1).and_then(|i| bytes.get(i)) {
        let below_negative = n
            .checked_sub(2)
            .and_then(|i| bytes.get(i))
            .is_some_and(|&b| b & 0x80 != 0);
        if (last == 0 && !below_negative) || (last == 0xff && below_negative) {
            n -= 1;
        } else {
            break;
        }
    }
    n
}

impl From<i128> for BigInt {
    fn from(value: i128) -> BigInt {
        BigInt::from_i128(value)
    }
}

impl From<u128> for BigInt {
    fn from(value: u128) -> BigInt {
        BigInt::from_u128(value)
    }
}

impl From<i64> for BigInt {
    fn from(value: i64) -> BigInt {
        BigInt::from_i128(i128::from(value))
    }
}

impl From<u64> for BigInt {
    fn from(value: u64) -> BigInt {
        BigInt::from_u128(u128::from(value))
    }
}

/// Decimal (or, above 8 KiB of bytes, `0x` hexadecimal) like Python's `str(int)`.
impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.magnitude();
        if self.is_negative() {
            f.write_char('-')?;
        }
        if magnitude.is_empty() {
            return f.write_char('0');
        }
        if magnitude.len() > MAX_DECIMAL_DISPLAY_BYTES {
            let mut bytes = magnitude.iter().rev();
            if let Some(top) = bytes.next() {
                write!(f, "0x{top:x}")?;
            }
            for b in bytes {
                write!(f, "{b:02x}")?;
            }
            return Ok(());
        }
        // Base 2^32 limbs, least significant first.
        let mut limbs: Vec<u32> = magnitude
            .chunks(4)
            .map(|c| {
                let mut buf = [0; 4];
                buf.get_mut(..c.len())
                    .unwrap_or_default()
                    .copy_from_slice(c);
                u32::from_le_bytes(buf)
            })
            .collect();
        // Base 10^9 chunks, least significant first.
        let mut chunks: Vec<u32> = Vec::with_capacity(limbs.len() * 32 / 29 + 1);
        while !limbs.is_empty() {
            let mut rem: u64 = 0;
            for limb in limbs.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            chunks.push(rem as u32);
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
        }
        let mut iter = chunks.iter().rev();
        if let Some(first) = iter.next() {
            write!(f, "{first}")?;
        }
        for chunk in iter {
            write!(f, "{chunk:09}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BigInt({self})")
    }
}

impl Serialize for BigInt {
    /// Serializes as `i64`, `i128` or `u128`, the first that fits. The pickle encoder writes
    /// any size as a Python `int`; beyond 128 bits other formats get an error if they are
    /// human-readable (JSON has no such integers in serde), or a newtype struct around the
    /// little-endian two's complement bytes if they are compact.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(v) = self.to_i64() {
            serializer.serialize_i64(v)
        } else if let Some(v) = self.to_i128() {
            serializer.serialize_i128(v)
        } else if let Some(v) = self.to_u128() {
            serializer.serialize_u128(v)
        } else {
            serializer.serialize_newtype_struct(BIGINT_MAGIC, &HugeInt(self))
        }
    }
}

/// The payload of [`BIGINT_MAGIC`].
struct HugeInt<'a>(&'a BigInt);

impl Serialize for HugeInt<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The pickle encoder reads the bytes through a compact serializer.
        if serializer.is_human_readable() {
            Err(serde::ser::Error::custom(format_args!(
                "{} does not fit in 128 bits; only pickle can store it",
                self.0.describe()
            )))
        } else {
            serializer.serialize_bytes(self.0.as_signed_bytes_le())
        }
    }
}

// ------------------------------------------------------------------------------------------
// Value
// ------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------
// Display (Python repr)
// ------------------------------------------------------------------------------------------

/// Python-`repr()`-like text: `None`, `True`, `1`, `1.5`, `'text'`, `b'\x00a'`, `[1, 2]`,
/// `(1,)`, `{'a': 1}`, `{1, 2}`, `set()`, `frozenset({1})`.
///
/// Floats are printed like Python's `repr` (shortest round-trip digits, `1e+16`, `inf`, `nan`).
/// Strings escape control, separator and format characters; Python's exact list of printable
/// characters depends on its Unicode database, so rare characters may be shown differently.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::BigInt(b) => write!(f, "{b}"),
            Value::Float(x) => write_float_repr(f, *x),
            Value::Str(s) => write_str_repr(f, s),
            Value::Bytes(b) => write_bytes_repr(f, b),
            Value::List(items) => write_items(f, "[", items, "]"),
            Value::Tuple(items) => {
                if let [single] = items.as_slice() {
                    write!(f, "({single},)")
                } else {
                    write_items(f, "(", items, ")")
                }
            }
            Value::Dict(entries) => {
                f.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
            Value::Set(items) if items.is_empty() => f.write_str("set()"),
            Value::Set(items) => write_items(f, "{", items, "}"),
            Value::FrozenSet(items) if items.is_empty() => f.write_str("frozenset()"),
            Value::FrozenSet(items) => write_items(f, "frozenset({", items, "})"),
        }
    }
}

/// Writes `open item, item close`.
fn write_items(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    items: &[Value],
    close: &str,
) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

/// Writes a float like Python's `repr(float)`.
fn write_float_repr(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    let mut repr = String::new();
    crate::pyjson::float_repr(x, &mut repr);
    f.write_str(&repr)
}

/// Whether Python's `str.isprintable()` holds for `c` (approximately: control, separator,
/// format, surrogate and private-use characters are not printable).
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || matches!(
            c,
            '\u{a0}'
                | '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{1680}'
                | '\u{180e}'
                | '\u{2000}'..='\u{200f}'
                | '\u{2028}'..='\u{202f}'
                | '\u{205f}'..='\u{206f}'
                | '\u{3000}'
                | '\u{e000}'..='\u{f8ff}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'..='\u{e007f}'
                | '\u{f0000}'..='\u{10ffff}'
        ))
}

/// Writes a `str` like Python's `repr(str)`.
fn write_str_repr(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if is_printable(c) => f.write_char(c)?,
            c if u32::from(c) < 0x100 => write!(f, "\\x{:02x}", u32::from(c))?,
            c if u32::from(c) < 0x1_0000 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "\\U{:08x}", u32::from(c))?,
        }
    }
    f.write_char(quote)
}

/// Writes a `bytes` like Python's `repr(bytes)`.
fn write_bytes_repr(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    f.write_char('b')?;
    f.write_char(char::from(quote))?;
    for &byte in b {
        match byte {
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{}", char::from(c))?,
            0x20..=0x7e => f.write_char(char::from(byte))?,
            _ => write!(f, "\\x{byte:02x}")?,
        }
    }
    f.write_char(char::from(quote))
}

// ------------------------------------------------------------------------------------------
// Serialize
// ------------------------------------------------------------------------------------------

/// Serializes as the matching serde data model type. Through the pickle encoder every variant
/// is written back as the same Python type; other formats see tuples and sets as sequences and
/// integers beyond 128 bits as described on [`BigInt`]'s `Serialize` impl.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::None => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::BigInt(b) => b.serialize(serializer),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Set(items) => serializer.serialize_newtype_struct(SET_MAGIC, &Items(items)),
            Value::FrozenSet(items) => {
                serializer.serialize_newtype_struct(FROZENSET_MAGIC, &Items(items))
            }
        }
    }
}

/// The items of a set, serialized as a sequence.
struct Items<'a>(&'a [Value]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

// ------------------------------------------------------------------------------------------
// Deserialize
// ------------------------------------------------------------------------------------------

/// Reads any self-describing data. From a [`Value`] (and so from a pickle) tuples, sets,
/// frozensets and big integers keep their type; from other formats sequences become
/// [`Value::List`] and maps [`Value::Dict`].
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_newtype_struct(VALUE_MAGIC, ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the deserializer offers.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Python value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        // Not `Value::deserialize`: that asks for a newtype struct again, forever.
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(cautious_capacity(seq.size_hint()));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(cautious_capacity(map.size_hint()));
        while let Some(entry) = map.next_entry::<Value, Value>()? {
            entries.push(entry);
        }
        Ok(Value::Dict(entries))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // Only the `Value` deserializer presents enums here, to pass types serde lacks.
        let (tag, variant): (String, _) = data.variant()?;
        let payload: Value = variant.newtype_variant()?;
        match (tag.as_str(), payload) {
            (TUPLE_TAG, Value::List(items)) => Ok(Value::Tuple(items)),
            (SET_TAG, Value::List(items)) => Ok(Value::Set(items)),
            (FROZENSET_TAG, Value::List(items)) => Ok(Value::FrozenSet(items)),
            (BIGINT_TAG, Value::Bytes(bytes)) => Ok(Value::from(BigInt::from_vec(bytes))),
            _ => Err(de::Error::custom(format_args!(
                "cannot read the enum variant `{tag}` as a Python value"
            ))),
        }
    }
}

/// A capacity to preallocate from an untrusted size hint. Small: a declared length costs the
/// input a few bytes at every nesting level (MessagePack's `array32` is 5), and anything more
/// than a few items per level let 1.3 KB of nested declarations preallocate 33 MB.
fn cautious_capacity(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(16)
}

// ------------------------------------------------------------------------------------------
// Deserializer
// ------------------------------------------------------------------------------------------

/// Deserializes a [`Value`] into any serde type, e.g. the result of
/// [`pickle::value_from_slice`](crate::pickle::value_from_slice).
///
/// Python `bytes` read as `Vec<u8>`, `[u8; N]` and byte buffers; ints read as any Rust integer
/// they fit (else [`Error::WrongType`]) and as floats; a `str` reads as a unit enum variant and
/// a one-entry `dict` as a variant with data; `None` reads as `()` and as `Option::None`.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(value)
}

impl IntoDeserializer<'_, Error> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

/// Visits `items` as a sequence, checking that the visitor consumed all of them (a
/// `[u8; 2]` is not read from three bytes).
pub(crate) fn visit_all<'de, I, V>(items: I, visitor: V) -> Result<V::Value>
where
    I: Iterator,
    I::Item: IntoDeserializer<'de, Error>,
    V: Visitor<'de>,
{
    let mut seq = de::value::SeqDeserializer::new(items);
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

/// Visits dict entries as a map, checking that the visitor consumed all of them.
fn visit_entries<'de, V: Visitor<'de>>(
    entries: Vec<(Value, Value)>,
    visitor: V,
) -> Result<V::Value> {
    let mut map = de::value::MapDeserializer::new(entries.into_iter());
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

/// Visits a big integer as the smallest integer type it fits, or fails.
fn visit_bigint<'de, V: Visitor<'de>>(big: &BigInt, visitor: V) -> Result<V::Value> {
    if let Some(v) = big.to_i64() {
        visitor.visit_i64(v)
    } else if let Some(v) = big.to_u64() {
        visitor.visit_u64(v)
    } else if let Some(v) = big.to_i128() {
        visitor.visit_i128(v)
    } else if let Some(v) = big.to_u128() {
        visitor.visit_u128(v)
    } else {
        let found = format!("{} (too large for 128 bits)", big.describe());
        Err(de::Error::invalid_type(Unexpected::Other(&found), &visitor))
    }
}

/// Generates the `Deserializer` methods for scalar types: containers and `None` are reported
/// as such (serde's visitors would say "sequence" or "unit value"), the rest is visited as is
/// (an int reads as a float, range checks are the visitor's).
macro_rules! scalar_methods {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                match self {
                    Value::None
                    | Value::List(_)
                    | Value::Tuple(_)
                    | Value::Dict(_)
                    | Value::Set(_)
                    | Value::FrozenSet(_) => Err(self.invalid_type(&visitor)),
                    other => other.deserialize_any(visitor),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::BigInt(big) => visit_bigint(&big, visitor),
            Value::Float(x) => visitor.visit_f64(x),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_all(items.into_iter(), visitor),
            Value::Dict(entries) => visit_entries(entries, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_unit(),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name != VALUE_MAGIC {
            return visitor.visit_newtype_struct(self);
        }
        // `Value`'s own `Deserialize` impl: pass the types serde has no model for as enums.
        let (tag, payload) = match self {
            Value::Tuple(items) => (TUPLE_TAG, Value::List(items)),
            Value::Set(items) => (SET_TAG, Value::List(items)),
            Value::FrozenSet(items) => (FROZENSET_TAG, Value::List(items)),
            Value::BigInt(big) => (BIGINT_TAG, Value::Bytes(big.bytes)),
            other => return other.deserialize_any(visitor),
        };
        visitor.visit_enum(TaggedEnum { tag, payload })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Bytes(b) => visit_all(b.into_iter(), visitor),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_all(items.into_iter(), visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Dict(entries) => visit_entries(entries, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Dict(entries) => visit_entries(entries, visitor),
            Value::List(items) | Value::Tuple(items) => visit_all(items.into_iter(), visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Str(s) => visitor.visit_enum(ValueEnum {
                variant: Value::Str(s),
                payload: None,
            }),
            Value::Dict(mut entries) if entries.len() == 1 => match entries.pop() {
                Some((variant, payload)) => visitor.visit_enum(ValueEnum {
                    variant,
                    payload: Some(payload),
                }),
                None => Err(Value::Dict(entries).invalid_type(&visitor)),
            },
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Int(i) if i >= 0 => visitor.visit_u64(i as u64),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        drop(self);
        visitor.visit_unit()
    }

    scalar_methods! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string
    }
}

/// An externally tagged enum read from a `str` (unit variant) or a one-entry `dict`.
struct ValueEnum {
    /// The variant name (or index).
    variant: Value,
    /// The variant's data; `None` for the `str` form.
    payload: Option<Value>,
}

impl<'de> EnumAccess<'de> for ValueEnum {
    type Error = Error;
    type Variant = VariantPayload;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantPayload)> {
        let variant = seed.deserialize(self.variant)?;
        Ok((variant, VariantPayload(self.payload)))
    }
}

/// The data of an enum variant.
struct VariantPayload(Option<Value>);

impl<'de> VariantAccess<'de> for VariantPayload {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(other.invalid_type(&"a unit variant")),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        match self.0 {
            Some(payload) => seed.deserialize(payload),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        match self.0 {
            Some(payload) => payload.deserialize_tuple(len, visitor),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Some(payload) => payload.deserialize_struct("", fields, visitor),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }
}

/// How the `Value` deserializer passes a tuple, set, frozenset or big integer to `Value`'s
/// `Deserialize` impl: as a newtype variant tagged with the type.
struct TaggedEnum {
    /// One of the `*_TAG` constants.
    tag: &'static str,
    /// The items as a list, or the integer's bytes.
    payload: Value,
}

impl<'de> EnumAccess<'de> for TaggedEnum {
    type Error = Error;
    type Variant = VariantPayload;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantPayload)> {
        let tag = seed.deserialize(de::value::StrDeserializer::<Error>::new(self.tag))?;
        Ok((tag, VariantPayload(Some(self.payload))))
    }
}

/// Python refuses to convert decimal strings longer than this to `int` (the default of
/// `sys.set_int_max_str_digits`); the conversion is quadratic.
const MAX_INT_DIGITS: usize = 4300;

/// Parses a decimal integer (optional sign and surrounding whitespace), as pickle's `INT` and
/// `LONG` and JSON write them.
pub(crate) fn parse_decimal_int(text: &[u8]) -> std::result::Result<Value, String> {
    let text = text.trim_ascii();
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "invalid integer {:?}",
            String::from_utf8_lossy(text)
        ));
    }
    if digits.len() > MAX_INT_DIGITS {
        return Err(format!("integer of more than {MAX_INT_DIGITS} digits"));
    }
    if digits.len() <= 18 {
        let mut v: i64 = 0;
        for &d in digits {
            v = v * 10 + i64::from(d - b'0');
        }
        return Ok(Value::Int(if negative { -v } else { v }));
    }
    BigInt::from_decimal_digits(negative, digits)
        .map(Value::from)
        .ok_or_else(|| "invalid integer".to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    use super::{BigInt, Value, from_value};
    use crate::error::Error;

    fn i(v: i64) -> Value {
        Value::Int(v)
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    const TWO_POW_512: &str = "1340780792994259709957402499820584612747936582059239337772356144372176\
        4030073546976801874298166903427690031858186486050853753882811946569946433649006084096";

    #[test]
    fn bigint_conversions() {
        for v in [
            0,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i128::from(i64::MAX) + 1,
            i128::MIN,
            i128::MAX,
        ] {
            let b = BigInt::from_i128(v);
            assert_eq!(b.to_i128(), Some(v), "{v}");
            assert_eq!(b.to_string(), v.to_string());
            assert_eq!(b, BigInt::from_signed_bytes_le(b.as_signed_bytes_le()));
        }
        for v in [0, 1, u128::from(u64::MAX), 1 << 127, u128::MAX] {
            let b = BigInt::from_u128(v);
            assert_eq!(b.to_u128(), Some(v), "{v}");
            assert_eq!(b.to_string(), v.to_string());
        }
        assert!(
            BigInt::from_signed_bytes_le(&[])
                .as_signed_bytes_le()
                .is_empty()
        );
        assert_eq!(BigInt::from_i128(0).to_string(), "0");
        assert_eq!(BigInt::from_u128(u128::MAX).to_i128(), None);
        assert_eq!(BigInt::from_i128(-1).to_u128(), None);
        assert_eq!(BigInt::from(u64::MAX).to_i64(), None);
        assert_eq!(BigInt::from(u64::MAX).to_u64(), Some(u64::MAX));
        // Redundant sign bytes are dropped.
        assert_eq!(
            BigInt::from_signed_bytes_le(&[1, 0, 0, 0]),
            BigInt::from_i128(1)
        );
        assert_eq!(
            BigInt::from_signed_bytes_le(&[0xff, 0xff]),
            BigInt::from_i128(-1)
        );
        assert_eq!(
            BigInt::from_signed_bytes_le(&[0x80, 0xff]).as_signed_bytes_le(),
            [0x80]
        );
        assert_eq!(
            BigInt::from_signed_bytes_le(&[0x80, 0x00]).as_signed_bytes_le(),
            [0x80, 0]
        );
        // 2**128 does not fit in a u128.
        let mut bytes = vec![0; 16];
        bytes.push(1);
        assert_eq!(BigInt::from_signed_bytes_le(&bytes).to_u128(), None);
        assert_eq!(
            BigInt::from_signed_bytes_le(&bytes).to_string(),
            "340282366920938463463374607431768211456"
        );
    }

    #[test]
    fn bigint_decimal() {
        let mut bytes = vec![0; 64];
        bytes.push(1);
        let two_pow_512 = BigInt::from_signed_bytes_le(&bytes);
        assert_eq!(two_pow_512.to_string(), TWO_POW_512);
        assert_eq!(
            BigInt::from_decimal_digits(false, TWO_POW_512.as_bytes()),
            Some(two_pow_512.clone())
        );
        let negative = BigInt::from_decimal_digits(true, TWO_POW_512.as_bytes()).unwrap();
        assert_eq!(negative.to_string(), format!("-{TWO_POW_512}"));
        assert!(negative.is_negative());
        assert_eq!(format!("{negative:?}"), format!("BigInt(-{TWO_POW_512})"));
        assert_eq!(
            BigInt::from_decimal_digits(false, b"000"),
            Some(BigInt::default())
        );
        assert_eq!(BigInt::from_decimal_digits(false, b""), None);
        assert_eq!(BigInt::from_decimal_digits(false, b"12a"), None);
        // -(2**(8n-1)) has a magnitude with its top bit set.
        assert_eq!(
            BigInt::from_signed_bytes_le(&[0, 0x80]).to_string(),
            "-32768"
        );
        // Huge integers are shown in hex rather than converted in quadratic time.
        let mut huge = vec![0; 10_000];
        huge.push(1);
        let text = BigInt::from_signed_bytes_le(&huge).to_string();
        assert!(text.starts_with("0x1000"), "{}", &text[..10]);
        assert!(
            BigInt::from_decimal_digits(true, b"1")
                .unwrap()
                .is_negative()
        );
        assert_eq!(text.len(), 2 + 1 + 2 * 10_000);
    }

    #[test]
    fn display_is_python_repr() {
        let cases = [
            (Value::None, "None"),
            (Value::Bool(true), "True"),
            (Value::Bool(false), "False"),
            (i(-5), "-5"),
            (Value::Float(1.5), "1.5"),
            (Value::Float(2.0), "2.0"),
            (Value::Float(-0.0), "-0.0"),
            (Value::Float(1e16), "1e+16"),
            (Value::Float(1e15), "1000000000000000.0"),
            (Value::Float(1.5e-5), "1.5e-05"),
            (Value::Float(0.0001), "0.0001"),
            (Value::Float(f64::NAN), "nan"),
            (Value::Float(f64::NEG_INFINITY), "-inf"),
            (Value::Float(f64::MAX), "1.7976931348623157e+308"),
            // 81037577932711.625 exactly, a tie between two shortest forms: python rounds half
            // to even (Rust's `{}` writes ...63).
            (
                Value::Float(f64::from_bits(0x42d2_6d02_02f3_e9e8)),
                "81037577932711.62",
            ),
            (s("text"), "'text'"),
            (s("it's"), "\"it's\""),
            (s("'\""), "'\\'\"'"),
            (
                s("a\\b\n\t\r\u{0}\u{7f}é\u{e000}\u{1f600}"),
                "'a\\\\b\\n\\t\\r\\x00\\x7fé\\ue000😀'",
            ),
            (Value::Bytes(b"\x00a'".to_vec()), "b\"\\x00a'\""),
            (Value::Bytes(b"\\\xff".to_vec()), "b'\\\\\\xff'"),
            (Value::List(vec![i(1), i(2)]), "[1, 2]"),
            (Value::List(vec![]), "[]"),
            (Value::Tuple(vec![i(1)]), "(1,)"),
            (Value::Tuple(vec![]), "()"),
            (Value::Tuple(vec![i(1), s("a")]), "(1, 'a')"),
            (
                Value::Dict(vec![(s("a"), i(1)), (i(2), Value::None)]),
                "{'a': 1, 2: None}",
            ),
            (Value::Dict(vec![]), "{}"),
            (Value::Set(vec![i(1), i(2)]), "{1, 2}"),
            (Value::Set(vec![]), "set()"),
            (Value::FrozenSet(vec![i(1)]), "frozenset({1})"),
            (Value::FrozenSet(vec![]), "frozenset()"),
            (Value::from(u64::MAX), "18446744073709551615"),
        ];
        for (value, repr) in cases {
            assert_eq!(value.to_string(), repr, "{value:?}");
        }
    }

    #[test]
    fn conversions_and_accessors() {
        assert_eq!(Value::from(5u64), i(5));
        assert_eq!(
            Value::from(i128::from(i64::MIN) - 1),
            Value::BigInt(BigInt::from_i128(i128::from(i64::MIN) - 1))
        );
        assert_eq!(Value::from(BigInt::from_i128(7)), i(7));
        assert_eq!(Value::from("a"), s("a"));
        assert_eq!(Value::from(vec![1u8]), Value::Bytes(vec![1]));
        assert_eq!(Value::from(vec![i(1)]), Value::List(vec![i(1)]));
        assert_eq!(Value::from(()), Value::None);
        assert_eq!(Value::from(1.5f32), Value::Float(1.5));
        assert_eq!(i(3).as_i64(), Some(3));
        assert_eq!(Value::from(BigInt::from_u128(1 << 70)).as_i64(), None);
        assert_eq!(s("x").as_str(), Some("x"));
        assert_eq!(Value::Bool(true).as_bool(), Some(true));
        assert_eq!(Value::Float(1.0).as_f64(), Some(1.0));
        assert_eq!(Value::Bytes(vec![1]).as_bytes(), Some(&[1u8][..]));
        assert_eq!(Value::Set(vec![i(1)]).as_items(), Some(&[i(1)][..]));
        assert_eq!(Value::Dict(vec![]).as_dict().map(<[_]>::len), Some(0));
        assert!(Value::None.is_none());
        assert_eq!(Value::FrozenSet(vec![]).type_name(), "frozenset");
        assert_eq!(i(1).as_str(), None);
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum Kind {
        Unit,
        New(i64),
        Tup(i64, String),
        Bytes(u8, u8),
        Struct { x: i64 },
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Point {
        x: f64,
        y: Option<i32>,
        tag: Option<String>,
        #[serde(default)]
        z: u8,
    }

    #[test]
    fn from_value_reads_serde_types() {
        assert_eq!(from_value::<u8>(i(255)).unwrap(), 255);
        assert_eq!(from_value::<f64>(i(3)).unwrap().to_bits(), 3.0f64.to_bits());
        assert_eq!(from_value::<u64>(Value::from(u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(
            from_value::<i128>(Value::from(i128::MIN)).unwrap(),
            i128::MIN
        );
        assert_eq!(
            from_value::<u128>(Value::from(u128::MAX)).unwrap(),
            u128::MAX
        );
        assert_eq!(from_value::<Option<i32>>(Value::None).unwrap(), None);
        assert_eq!(from_value::<Option<i32>>(i(1)).unwrap(), Some(1));
        from_value::<()>(Value::None).unwrap();
        assert_eq!(
            from_value::<Vec<u8>>(Value::Bytes(vec![1, 2])).unwrap(),
            [1, 2]
        );
        assert_eq!(
            from_value::<[u8; 2]>(Value::Bytes(vec![1, 2])).unwrap(),
            [1, 2]
        );
        assert_eq!(
            from_value::<(u8, u8)>(Value::Bytes(vec![1, 2])).unwrap(),
            (1, 2)
        );
        assert_eq!(from_value::<String>(s("é")).unwrap(), "é");
        assert_eq!(from_value::<char>(s("é")).unwrap(), 'é');
        assert_eq!(
            from_value::<(i32, String)>(Value::Tuple(vec![i(1), s("a")])).unwrap(),
            (1, "a".to_owned())
        );
        assert_eq!(from_value::<Vec<i32>>(Value::Set(vec![i(1)])).unwrap(), [1]);
        assert_eq!(
            from_value::<BTreeMap<String, i32>>(Value::Dict(vec![(s("a"), i(1))])).unwrap(),
            BTreeMap::from([("a".to_owned(), 1)])
        );
        assert_eq!(
            from_value::<HashMap<i64, bool>>(Value::Dict(vec![(i(1), Value::Bool(true))])).unwrap(),
            HashMap::from([(1, true)])
        );
        let point = Value::Dict(vec![
            (s("x"), i(1)),
            (s("y"), Value::None),
            (s("tag"), s("t")),
        ]);
        assert_eq!(
            from_value::<Point>(point).unwrap(),
            Point {
                x: 1.0,
                y: None,
                tag: Some("t".into()),
                z: 0
            }
        );
        assert_eq!(from_value::<Kind>(s("Unit")).unwrap(), Kind::Unit);
        assert_eq!(
            from_value::<Kind>(Value::Dict(vec![(s("Unit"), Value::None)])).unwrap(),
            Kind::Unit
        );
        assert_eq!(
            from_value::<Kind>(Value::Dict(vec![(s("New"), i(4))])).unwrap(),
            Kind::New(4)
        );
        assert_eq!(
            from_value::<Kind>(Value::Dict(vec![(
                s("Tup"),
                Value::Tuple(vec![i(1), s("a")])
            )]))
            .unwrap(),
            Kind::Tup(1, "a".into())
        );
        assert_eq!(
            from_value::<Kind>(Value::Dict(vec![(s("Bytes"), Value::Bytes(vec![1, 2]))])).unwrap(),
            Kind::Bytes(1, 2)
        );
        assert_eq!(
            from_value::<Kind>(Value::Dict(vec![(
                s("Struct"),
                Value::Dict(vec![(s("x"), i(2))])
            )]))
            .unwrap(),
            Kind::Struct { x: 2 }
        );
        // Variants by index.
        assert_eq!(
            from_value::<Kind>(Value::Dict(vec![(i(1), i(4))])).unwrap(),
            Kind::New(4)
        );
    }

    #[test]
    fn from_value_reports_mismatches() {
        let wrong = |r: Result<(), Error>| match r {
            Err(Error::WrongType { expected, found }) => format!("{expected} / {found}"),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            wrong(from_value::<u8>(i(256)).map(drop)),
            "u8 / integer `256`"
        );
        assert_eq!(
            wrong(from_value::<u8>(i(-1)).map(drop)),
            "u8 / integer `-1`"
        );
        assert!(wrong(from_value::<String>(Value::List(vec![])).map(drop)).ends_with("/ a list"));
        assert!(wrong(from_value::<i32>(Value::None).map(drop)).ends_with("/ None"));
        assert!(wrong(from_value::<()>(i(1)).map(drop)).ends_with("/ integer `1`"));
        assert!(
            wrong(from_value::<[u8; 3]>(Value::Bytes(vec![1, 2])).map(drop)).contains("length 2")
        );
        assert!(
            wrong(from_value::<(i32,)>(Value::Tuple(vec![i(1), i(2)])).map(drop))
                .contains("length 2")
        );
        let mut bytes = vec![0; 20];
        bytes.push(1);
        let huge = Value::BigInt(BigInt::from_signed_bytes_le(&bytes));
        assert!(
            wrong(from_value::<u128>(huge.clone()).map(drop)).contains("too large for 128 bits")
        );
        assert!(wrong(from_value::<Kind>(i(1)).map(drop)).ends_with("/ integer `1`"));
        assert!(wrong(from_value::<Kind>(s("New")).map(drop)).contains("unit variant"));
        assert!(
            wrong(from_value::<Kind>(Value::Dict(vec![(s("Unit"), i(1))])).map(drop))
                .contains("integer `1`")
        );
        assert!(
            matches!(from_value::<Point>(Value::Dict(vec![])), Err(Error::Serde(m)) if m.contains("missing field"))
        );
        // Huge integers still read as Value.
        assert_eq!(from_value::<Value>(huge.clone()).unwrap(), huge);
    }

    #[test]
    fn values_deserialize_into_values_keeping_types() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Wrapper {
            inner: Value,
            other: Option<Value>,
        }
        let v = Value::Dict(vec![
            (
                Value::Tuple(vec![i(1)]),
                Value::Set(vec![Value::FrozenSet(vec![])]),
            ),
            (s("big"), Value::from(u128::MAX)),
            (s("none"), Value::None),
            (s("bytes"), Value::Bytes(vec![1])),
            (s("float"), Value::Float(0.5)),
        ]);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        let w = Value::Dict(vec![
            (s("inner"), v.clone()),
            (s("other"), Value::Tuple(vec![])),
        ]);
        assert_eq!(
            from_value::<Wrapper>(w).unwrap(),
            Wrapper {
                inner: v,
                other: Some(Value::Tuple(vec![]))
            }
        );
    }

    #[test]
    fn deep_values_clone_and_drop() {
        let mut v = Value::List(vec![]);
        for _ in 0..256 {
            v = Value::List(vec![v]);
        }
        let copy = v.clone();
        assert_eq!(copy, v);
        assert!(!copy.to_string().is_empty());
    }
}
