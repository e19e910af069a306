//! JSON text byte-identical to `json.dumps(obj)` of `CPython` 3.11 with default arguments.
//!
//! python-diskcache's `JSONDisk` stores a key as `zlib.compress(json.dumps(key).encode())` and
//! looks rows up by those exact bytes, so a Rust process finds the rows python wrote only if it
//! produces the very same text. This module is a serde [`Serializer`](serde::Serializer) that
//! does: `ensure_ascii=True`, separators `", "` and `": "`, `allow_nan=True`, no sorting, no
//! indentation, floats as `float.__repr__` (python 3.11; the format has been stable since 3.1).
//!
//! # Mapping
//!
//! | serde data model | JSON text | python value it matches |
//! |---|---|---|
//! | `None`, unit, unit struct | `null` | `None` |
//! | `Some(x)`, newtype struct | the text of `x` | |
//! | bool | `true`, `false` | `True`, `False` |
//! | integers up to 128 bits | decimal | `int` |
//! | `f64`; `f32` widened to `f64` | [`float_repr`]; `NaN`, `Infinity`, `-Infinity` | `float` |
//! | `str`, `char` | `"..."`, escaped as below | `str` |
//! | bytes | `[1, 2, 3]` (see below) | a `list` of `int` |
//! | seq, tuple, tuple struct | `[a, b]` | `list` or `tuple` |
//! | map, struct | `{"k": v}` in iteration order | `dict` |
//! | unit variant | `"Name"` | `str` |
//! | newtype, tuple, struct variant | `{"Name": v}`, `{"Name": [a, b]}`, `{"Name": {...}}` | `dict` |
//!
//! Strings keep `' '..='~'` as is except `"` and `\`, which become `\"` and `\\`; `\n`, `\r`,
//! `\t`, `\b` and `\f` get their short escapes; every other character (the other controls, DEL
//! and all non-ASCII) becomes `\uXXXX` with lowercase hex digits, characters above U+FFFF as a
//! UTF-16 surrogate pair. The output is therefore always ASCII.
//!
//! Map keys are converted the way python's encoder converts `dict` keys: strings as they are,
//! integers to `"1"`, floats to their repr (`"1.5"`, `"1e+16"`, `"NaN"`, `"Infinity"`), bools to
//! `"true"`/`"false"`, `None`/unit to `"null"`, unit variants to their name. Any other key
//! (a sequence, map, struct, bytes or a variant with data) is an [`Error::Encode`], as python
//! raises `TypeError: keys must be str, int, float, bool or None`.
//!
//! # Where python differs
//!
//! - python's `json.dumps` raises `TypeError` for `bytes`, and for `set`; serde writes both as
//!   arrays of numbers/elements (as `serde_json` does), which python reads back as a `list`.
//! - A map is written in its iteration order, as python writes a `dict` in insertion order. A
//!   `HashMap` with more than one entry has no stable order: use `BTreeMap` or an
//!   insertion-ordered map when the text must match a python `dict`.
//! - Keys are not deduplicated after conversion, exactly like python: `{1: "a", "1": "b"}`
//!   becomes `{"1": "a", "1": "b"}` on both sides.
//! - python `str` may hold lone surrogates (`"\ud800"`); Rust strings cannot, so such keys have no
//!   Rust counterpart.

mod read;

pub use read::from_slice_value;

use std::fmt::{self, Write as _};
use std::io;

use serde::ser::{self, Impossible, Serialize};

use crate::error::{Error, Format, Result};

/// Serializes `value` as JSON text byte-identical to python's `json.dumps(value)`.
///
/// The bytes are ASCII. See the [module documentation](self) for the mapping.
///
/// # Errors
///
/// [`Error::Encode`] when a map key is not a string, integer, float, bool, unit or unit variant;
/// [`Error::Serde`] when the value's `Serialize` implementation fails.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use dcache_disk::pyjson;
///
/// let key = (1.5, "héllo", None::<i32>);
/// assert_eq!(pyjson::to_vec(&key)?, br#"[1.5, "h\u00e9llo", null]"#);
///
/// let map = BTreeMap::from([(1, vec![1e16, 0.0001])]);
/// assert_eq!(pyjson::to_vec(&map)?, br#"{"1": [1e+16, 0.0001]}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// Writes `value` to `writer` as JSON text byte-identical to python's `json.dumps(value)`.
///
/// The text is written in many small pieces: wrap an unbuffered writer (a `File`, a socket) in
/// a [`BufWriter`](std::io::BufWriter). On error, part of the text may have been written.
///
/// # Errors
///
/// As [`to_vec`], and [`Error::Encode`] when the writer fails.
///
/// # Examples
///
/// ```
/// use dcache_disk::pyjson;
///
/// let mut out = Vec::new();
/// pyjson::to_writer(&mut out, &["a\tb", "😀"])?;
/// assert_eq!(out, br#"["a\tb", "\ud83d\ude00"]"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(writer: W, value: &T) -> Result<()> {
    value.serialize(&mut Serializer {
        writer,
        scratch: String::new(),
    })
}

/// Appends python's `repr(x)` for a float (`float.__repr__`) to `out`.
///
/// The digits are the shortest that read back as `x`; the notation is fixed (`1.0`, `0.0001`,
/// `1234567890123456.0`, `-0.0`) when the decimal exponent is in `-4..16` and scientific
/// otherwise (`1e+16`, `1e-05`, `1.5e+300`, `5e-324`). Non-finite values give `nan`, `inf` and
/// `-inf` as python's `repr` does (the sign of a NaN is dropped); JSON spells them differently
/// (`NaN`, `Infinity`), which the serializer handles itself.
///
/// # Examples
///
/// ```
/// use dcache_disk::pyjson::float_repr;
///
/// let mut s = String::new();
/// for x in [1.0, 0.1, 1e16, 1e-5, f64::from(1.1_f32), f64::NEG_INFINITY] {
///     float_repr(x, &mut s);
///     s.push(' ');
/// }
/// assert_eq!(s, "1.0 0.1 1e+16 1e-05 1.100000023841858 -inf ");
/// ```
pub fn float_repr(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }

    // Rust's `{:e}` prints the shortest digits that round-trip, as CPython's repr (David Gay's
    // dtoa, mode 0) does: `-1.2345e-7`, `5e-324`, `-0e0`. The two differ only when `x` lies
    // exactly halfway between two shortest candidates, and in the layout; fix the first, then
    // lay the digits out again.
    let mut stack = StackText::default();
    let mut heap: Vec<u8>;
    let sci: &mut [u8] = if write!(stack, "{x:e}").is_ok() {
        stack.as_bytes_mut()
    } else {
        // Unreachable (at most 24 bytes are needed), but stay correct rather than truncate.
        heap = format!("{x:e}").into_bytes();
        &mut heap
    };

    // `[-]d[.ddd]e[-]x`
    let negative = sci.first() == Some(&b'-');
    let e_pos = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
    let exp10 = parse_exponent(sci.get(e_pos + 1..).unwrap_or_default());
    let (lead_pos, tail_pos) = (usize::from(negative), usize::from(negative) + 2);
    if let Some(last_pos) = e_pos.checked_sub(1) {
        break_tie_to_even(x, sci, lead_pos..e_pos, last_pos, exp10);
    }
    let lead = char::from(sci.get(lead_pos).copied().unwrap_or(b'0'));
    let tail = sci.get(tail_pos..e_pos).unwrap_or_default();

    out.reserve(32);
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp10) {
        if exp10 < 0 {
            // 0.000ddd
            out.push_str("0.");
            push_zeros(out, exp10.unsigned_abs() as usize - 1);
            out.push(lead);
            push_ascii(out, tail);
        } else {
            // ddd[000].ddd, at least one digit after the point.
            let int_tail_len = exp10.unsigned_abs() as usize;
            let (int_tail, frac) = tail.split_at(int_tail_len.min(tail.len()));
            out.push(lead);
            push_ascii(out, int_tail);
            push_zeros(out, int_tail_len - int_tail.len());
            out.push('.');
            if frac.is_empty() {
                out.push('0');
            } else {
                push_ascii(out, frac);
            }
        }
    } else {
        // d[.ddd]e+XX, at least two exponent digits.
        out.push(lead);
        if !tail.is_empty() {
            out.push('.');
            push_ascii(out, tail);
        }
        out.push_str(if exp10 < 0 { "e-" } else { "e+" });
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{:02}", exp10.unsigned_abs());
    }
}

/// Makes the last digit of `sci` (Rust's `{:e}` text of the finite `x`; its mantissa at
/// `mantissa`, the last digit at `last_pos`, the exponent `exp10`) even when `x` is exactly
/// halfway between it and its neighbour and the neighbour reads back as `x` too.
///
/// Gay's dtoa, which `CPython`'s repr uses, breaks such a tie toward the even digit; Rust's
/// formatter rounds it up (rust-lang/rust#130936): `81037577932711.625` has the shortest
/// candidates `...711.62` and `...711.63`, python prints `.62` and `{:e}` gives `.63`. The
/// neighbour must still round-trip: below a power of two the gap to the next float down is
/// half as wide, so `2**-24` stays `5.960464477539063e-08` although it ends in `...0625`.
fn break_tie_to_even(
    x: f64,
    sci: &mut [u8],
    mantissa: std::ops::Range<usize>,
    last_pos: usize,
    exp10: i32,
) {
    let last = match sci.get(last_pos) {
        Some(&d @ b'0'..=b'9') if (d - b'0') % 2 == 1 => d - b'0',
        _ => return,
    };
    let digits = sci
        .get(mantissa)
        .unwrap_or_default()
        .iter()
        .filter(|b| b.is_ascii_digit());
    let count = digits.clone().count() as i32;
    // Both neighbours read back as `x` only if one unit in the last digit fits in the rounding
    // interval of `x`, at most 2^-52 × x wide: 10^-count ≤ 2^-52 needs 16 digits or more.
    // (Subnormals, relatively wider, have exact expansions of hundreds of digits: never a tie.)
    if count < 16 {
        return;
    }
    // The candidate is `significand × 10^(exp10 - count + 1)`; the midpoints to its neighbours
    // are `(10 × significand ∓ 5) × 10^(exp10 - count)`, odd multiples of a power of ten.
    let scale = exp10.saturating_sub(count);
    if binary_parts(x).1 != scale {
        // `x = m × 2^e` with `m` odd cannot equal an odd `n × 10^scale` unless `e == scale`.
        return;
    }
    let significand = digits.fold(0_u64, |value, &d| {
        value.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    let Some(tens) = significand.checked_mul(10) else {
        return;
    };
    for (midpoint, neighbour) in [
        (tens.checked_sub(5), last - 1),
        (tens.checked_add(5), last + 1),
    ] {
        let Some(midpoint) = midpoint else { continue };
        if neighbour > 9 || !is_exactly(x.abs(), midpoint, scale) {
            continue;
        }
        let Some(slot) = sci.get_mut(last_pos) else {
            return;
        };
        *slot = b'0' + neighbour;
        let round_trips = std::str::from_utf8(sci)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .is_some_and(|back| back.to_bits() == x.to_bits());
        if !round_trips && let Some(slot) = sci.get_mut(last_pos) {
            *slot = b'0' + last;
        }
        return;
    }
}

/// `|x| = m × 2^e` with `m` odd, for a finite non-zero `x`; `(0, -1074)` for zero.
fn binary_parts(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (m, e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if m == 0 {
        return (0, e);
    }
    (m >> m.trailing_zeros(), e + m.trailing_zeros() as i32)
}

/// Whether the finite `|x|` is exactly `n × 10^scale`.
fn is_exactly(x: f64, n: u64, scale: i32) -> bool {
    let (m, e) = binary_parts(x);
    if m == 0 || n == 0 {
        return m == n;
    }
    // n × 10^scale = (n_odd × 5^scale) × 2^(twos + scale), with n = n_odd × 2^twos.
    let twos = n.trailing_zeros();
    if scale.checked_add(twos as i32) != Some(e) {
        return false;
    }
    let n_odd = u128::from(n >> twos);
    let odd = match 5_u128.checked_pow(scale.unsigned_abs()) {
        Some(power) if scale >= 0 => n_odd.checked_mul(power),
        Some(power) if n_odd % power == 0 => Some(n_odd / power),
        _ => None,
    };
    odd == Some(u128::from(m))
}

/// Parses the exponent of Rust's `{:e}` output (`-324`, `0`, `16`).
fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits.iter().fold(0_i32, |acc, &d| {
        acc.saturating_mul(10)
            .saturating_add(i32::from(d.wrapping_sub(b'0')))
    });
    if negative { -magnitude } else { magnitude }
}

/// Appends ASCII bytes (digits) to `out`.
fn push_ascii(out: &mut String, bytes: &[u8]) {
    out.extend(bytes.iter().copied().map(char::from));
}

/// Appends `n` zeros to `out`.
fn push_zeros(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n('0', n));
}

/// A fixed buffer for Rust's `{:e}` text of one `f64` (at most 24 bytes), so formatting a float
/// does not allocate. Writing more than fits is an error, never a truncation.
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.get_mut(..self.len).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// JSON's spelling of a non-finite float (python's `allow_nan=True`).
fn non_finite_text(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Whether python's `ensure_ascii` encoder copies `ch` unchanged.
fn is_plain(ch: char) -> bool {
    matches!(ch, ' '..='~') && ch != '"' && ch != '\\'
}

/// `\uXXXX` with lowercase hex digits, as python's encoder writes it.
fn unicode_escape(unit: u16) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |shift: u16| HEX[usize::from((unit >> shift) & 0xF)];
    [b'\\', b'u', digit(12), digit(8), digit(4), digit(0)]
}

/// The two-character escape python's encoder uses for `ch`, if it has one.
fn short_escape(ch: char) -> Option<&'static [u8]> {
    Some(match ch {
        '"' => b"\\\"",
        '\\' => b"\\\\",
        '\n' => b"\\n",
        '\r' => b"\\r",
        '\t' => b"\\t",
        '\u{8}' => b"\\b",
        '\u{c}' => b"\\f",
        _ => return None,
    })
}

/// Writes the body of a JSON string (no quotes) for `s`, escaped as python's `ensure_ascii`
/// encoder does. Runs of plain characters are copied in one write.
fn write_escaped<W: io::Write + ?Sized>(writer: &mut W, s: &str) -> io::Result<()> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        if is_plain(ch) {
            continue;
        }
        // `start <= i <= bytes.len()`: both come from `char_indices`.
        writer.write_all(&bytes[start..i])?;
        if let Some(escape) = short_escape(ch) {
            writer.write_all(escape)?;
        } else {
            for &unit in ch.encode_utf16(&mut [0; 2]).iter() {
                writer.write_all(&unicode_escape(unit))?;
            }
        }
        start = i + ch.len_utf8();
    }
    writer.write_all(&bytes[start..])
}

/// The error for a failing writer.
fn write_error(err: &io::Error) -> Error {
    Error::encode(
        Format::Json,
        format_args!("writing the JSON text failed: {err}"),
    )
}

/// The error for a map key python's encoder refuses; `what` names the key's kind.
fn key_error(what: &str) -> Error {
    Error::encode(
        Format::Json,
        format_args!("keys must be str, int, float, bool or None, not {what}"),
    )
}

/// Adapts a writer to [`fmt::Write`], escaping everything written to it; for `collect_str`.
struct EscapingWriter<'a, W> {
    writer: &'a mut W,
    error: Option<io::Error>,
}

impl<W: io::Write> fmt::Write for EscapingWriter<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.writer, s).map_err(|err| {
            self.error = Some(err);
            fmt::Error
        })
    }
}

/// The serializer: writes python's JSON text straight into `writer`.
struct Serializer<W> {
    writer: W,
    /// Reused buffer for float reprs, so floats do not allocate each time.
    scratch: String,
}

impl<W: io::Write> Serializer<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .map_err(|err| write_error(&err))
    }

    fn put_display(&mut self, value: impl fmt::Display) -> Result<()> {
        write!(self.writer, "{value}").map_err(|err| write_error(&err))
    }

    /// A quoted, escaped string.
    fn put_str(&mut self, s: &str) -> Result<()> {
        self.put(b"\"")?;
        write_escaped(&mut self.writer, s).map_err(|err| write_error(&err))?;
        self.put(b"\"")
    }

    /// A quoted, escaped string from a `Display` implementation, without a temporary `String`.
    fn put_collected<T: fmt::Display + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.put(b"\"")?;
        let mut escaping = EscapingWriter {
            writer: &mut self.writer,
            error: None,
        };
        if write!(escaping, "{value}").is_err() {
            return Err(match escaping.error {
                Some(err) => write_error(&err),
                None => ser::Error::custom("a `Display` implementation returned an error"),
            });
        }
        self.put(b"\"")
    }

    /// A float as python's encoder writes it, in quotes when it is a map key.
    fn put_float(&mut self, x: f64, quoted: bool) -> Result<()> {
        let text = if x.is_finite() {
            self.scratch.clear();
            float_repr(x, &mut self.scratch);
            self.scratch.as_str()
        } else {
            non_finite_text(x)
        };
        let result = if quoted {
            write!(self.writer, "\"{text}\"")
        } else {
            self.writer.write_all(text.as_bytes())
        };
        result.map_err(|err| write_error(&err))
    }

    /// Opens `{"variant": ` for the externally tagged enum representation.
    fn open_variant(&mut self, variant: &str) -> Result<()> {
        self.put(b"{")?;
        self.put_str(variant)?;
        self.put(b": ")
    }
}

/// A sequence, map, struct or variant body being written.
struct Compound<'a, W> {
    ser: &'a mut Serializer<W>,
    first: bool,
}

impl<'a, W: io::Write> Compound<'a, W> {
    fn new(ser: &'a mut Serializer<W>) -> Self {
        Compound { ser, first: true }
    }

    /// Writes `", "` before every element but the first.
    fn separate(&mut self) -> Result<()> {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.ser.put(b", ")
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.separate()?;
        value.serialize(&mut *self.ser)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.separate()?;
        self.ser.put_str(key)?;
        self.ser.put(b": ")?;
        value.serialize(&mut *self.ser)
    }
}

impl<'a, W: io::Write> ser::Serializer for &'a mut Serializer<W> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, W>;
    type SerializeTuple = Compound<'a, W>;
    type SerializeTupleStruct = Compound<'a, W>;
    type SerializeTupleVariant = Compound<'a, W>;
    type SerializeMap = Compound<'a, W>;
    type SerializeStruct = Compound<'a, W>;
    type SerializeStructVariant = Compound<'a, W>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.put(if v { b"true" } else { b"false" })
    }

    fn serialize_i8(self, v: i8) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_i16(self, v: i16) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_i32(self, v: i32) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_i64(self, v: i64) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_u16(self, v: u16) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_u32(self, v: u32) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        self.put_display(v)
    }

    fn serialize_f32(self, v: f32) -> Result<()> {
        // python has only doubles: an f32 reaches it widened.
        self.put_float(f64::from(v), false)
    }

    fn serialize_f64(self, v: f64) -> Result<()> {
        self.put_float(v, false)
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.put_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.put_str(v)
    }

    /// python's `json.dumps` refuses `bytes`; like `serde_json`, write a list of numbers.
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.put(b"[")?;
        for (i, byte) in v.iter().enumerate() {
            if i > 0 {
                self.put(b", ")?;
            }
            self.put_display(byte)?;
        }
        self.put(b"]")
    }

    fn serialize_none(self) -> Result<()> {
        self.put(b"null")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.put(b"null")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.put(b"null")
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.put_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.put(b"}")
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, W>> {
        self.put(b"[")?;
        Ok(Compound::new(self))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, W>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, W>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, W>> {
        self.open_variant(variant)?;
        self.put(b"[")?;
        Ok(Compound::new(self))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, W>> {
        self.put(b"{")?;
        Ok(Compound::new(self))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a, W>> {
        self.put(b"{")?;
        Ok(Compound::new(self))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, W>> {
        self.open_variant(variant)?;
        self.put(b"{")?;
        Ok(Compound::new(self))
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<()> {
        self.put_collected(value)
    }
}

impl<W: io::Write> ser::SerializeSeq for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"]")
    }
}

impl<W: io::Write> ser::SerializeTuple for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"]")
    }
}

impl<W: io::Write> ser::SerializeTupleStruct for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"]")
    }
}

impl<W: io::Write> ser::SerializeTupleVariant for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"]}")
    }
}

impl<W: io::Write> ser::SerializeMap for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.separate()?;
        key.serialize(MapKeySerializer {
            ser: &mut *self.ser,
        })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.ser.put(b": ")?;
        value.serialize(&mut *self.ser)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"}")
    }
}

impl<W: io::Write> ser::SerializeStruct for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"}")
    }
}

impl<W: io::Write> ser::SerializeStructVariant for Compound<'_, W> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.ser.put(b"}}")
    }
}

/// Writes a map key as python's encoder converts `dict` keys to strings.
struct MapKeySerializer<'a, W> {
    ser: &'a mut Serializer<W>,
}

impl<W: io::Write> MapKeySerializer<'_, W> {
    /// An integer key: its decimal digits in quotes.
    fn put_integer(self, v: impl fmt::Display) -> Result<()> {
        write!(self.ser.writer, "\"{v}\"").map_err(|err| write_error(&err))
    }
}

impl<W: io::Write> ser::Serializer for MapKeySerializer<'_, W> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.ser.put(if v { b"\"true\"" } else { b"\"false\"" })
    }

    fn serialize_i8(self, v: i8) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_i16(self, v: i16) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_i32(self, v: i32) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_i64(self, v: i64) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_u16(self, v: u16) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_u32(self, v: u32) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        self.put_integer(v)
    }

    fn serialize_f32(self, v: f32) -> Result<()> {
        self.ser.put_float(f64::from(v), true)
    }

    fn serialize_f64(self, v: f64) -> Result<()> {
        self.ser.put_float(v, true)
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.ser.put_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.ser.put_str(v)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<()> {
        Err(key_error("bytes"))
    }

    fn serialize_none(self) -> Result<()> {
        self.ser.put(b"\"null\"")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.ser.put(b"\"null\"")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.ser.put(b"\"null\"")
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.ser.put_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<()> {
        Err(key_error("an enum variant with data (a dict)"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Impossible<(), Error>> {
        Err(key_error("a sequence (a list)"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Impossible<(), Error>> {
        Err(key_error("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>> {
        Err(key_error("a tuple struct (a list)"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>> {
        Err(key_error("an enum variant with data (a dict)"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Impossible<(), Error>> {
        Err(key_error("a map (a dict)"))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Impossible<(), Error>> {
        Err(key_error("a struct (a dict)"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>> {
        Err(key_error("an enum variant with data (a dict)"))
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<()> {
        self.ser.put_collected(value)
    }
}

#[cfg(test)]
mod tests;
