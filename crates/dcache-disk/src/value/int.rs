//! [`BigInt`]: Python's `int` beyond `i64`, and the decimal integer parse pickle and JSON share.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::Serializer;

use super::{BIGINT_MAGIC, Value};
use crate::error::Result;

/// Integers with more bytes than this are displayed in hexadecimal: converting them to decimal
/// takes quadratic time (Python itself refuses to convert ints above 4300 digits).
const MAX_DECIMAL_DISPLAY_BYTES: usize = 8192;

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
    pub(super) fn from_vec(mut bytes: Vec<u8>) -> BigInt {
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

    /// The integer's minimal little-endian two's complement bytes, moved out.
    pub(super) fn into_signed_bytes_le(self) -> Vec<u8> {
        self.bytes
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
    pub(super) fn describe(&self) -> String {
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
