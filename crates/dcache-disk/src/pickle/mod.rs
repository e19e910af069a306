//! Python's pickle format: serde types in, [`Value`] and serde types out.
//!
//! # Encoding
//!
//! [`to_vec`] writes what CPython 3's `pickletools.optimize(pickle.dumps(x, protocol))` writes
//! for the equivalent Python value, byte for byte, so that pickled keys written from Rust and
//! from Python are equal (python-diskcache stores keys exactly so):
//!
//! | Rust (serde) | Python |
//! |---|---|
//! | `bool` | `bool` |
//! | integers (up to `i128`/`u128`) | `int` |
//! | `f32`, `f64` | `float` |
//! | `char`, `str`, `String` | `str` |
//! | `()`, unit structs, `None` | `None` (and `Some(x)` is `x`) |
//! | sequences (`Vec`, slices, sets...) | `list`; `bytes` if non-empty and every element is a `u8` |
//! | tuples, tuple structs | `tuple`; `bytes` if non-empty and every element is a `u8` |
//! | `serialize_bytes` (e.g. `serde_bytes`) | `bytes` |
//! | maps, structs | `dict` (struct fields as `str` keys) |
//! | unit variant `E::A` | `'A'` |
//! | newtype / tuple / struct variant | `{'A': value}` / `{'A': (a, b)}` / `{'A': {...}}` |
//! | [`Value`] | the same Python type (tuples stay tuples, sets sets) |
//!
//! Protocols 3, 4 and 5 are written as such; 0, 1 and 2 are written as protocol 3, which every
//! Python 3 reads (the older protocols encode `bytes` as calls to `_codecs.encode`). Protocols
//! 4 and 5 use frames exactly like `pickletools.optimize`. No memo opcodes are written: Rust
//! values have no shared references. Output is deterministic: equal inputs give equal bytes.
//!
//! Python pickles of equal values can differ from ours where Python's output depends on object
//! identity: a value holding the *same* `str`/`bytes`/`tuple` object twice is written once and
//! then referenced through the memo (e.g. `('a', 'a')` typed as a literal). Sets are written in
//! the order given, while Python writes them in hash order.
//!
//! # Decoding
//!
//! [`value_from_slice`] reads protocols 0 to 5 (Python 2 and 3) holding `None`, `bool`, `int`,
//! `float`, `str`, `bytes`, `bytearray`, `list`, `tuple`, `dict`, `set` and `frozenset`,
//! including shared and memoized objects. It never imports or calls anything: a pickle that
//! names any other Python object (a class instance, a function) fails with
//! [`Error::PickleGlobal`]. It is safe on untrusted input: it never panics, and rejects nesting
//! deeper than 256 containers and self-containing structures. An object python pickled once and
//! referenced many times (through the memo) is copied once per reference, since a [`Value`]
//! tree does not share: the size of the result is measured before anything is built, and a
//! value larger than 256 MiB (counting 32 bytes per object) and than 16 objects per input byte
//! is refused as a memo bomb. So an ordinary shared value (a list holding one 100 KB string a
//! thousand times, or one dict two thousand times) is read as python reads it, while memory
//! stays bounded by `max(256 MiB, 512 × input)` plus the parse itself, which is proportional to
//! the input. Python 2 `str` objects are decoded as ASCII, as Python 3 does by default.
//!
//! [`from_slice`] then deserializes the [`Value`] into any serde type (see
//! [`from_value`](crate::from_value)).
//!
//! # Examples
//!
//! ```
//! use dcache_disk::{pickle, Value};
//!
//! // Same bytes as Python's `pickletools.optimize(pickle.dumps(('key', 1, None), 5))`.
//! let bytes = pickle::to_vec(&("key", 1, None::<i32>), 5)?;
//! assert_eq!(bytes, b"\x80\x05\x95\n\0\0\0\0\0\0\0\x8c\x03keyK\x01N\x87.");
//! let back: (String, i64, Option<i32>) = pickle::from_slice(&bytes)?;
//! assert_eq!(back, ("key".to_owned(), 1, None));
//!
//! // Python's `pickle.dumps({'a': (1, b'x'), 'b': {2, 3}}, 4)`.
//! let python = b"\x80\x04\x95\x1d\0\0\0\0\0\0\0}\x94(\x8c\x01a\x94K\x01C\x01x\x94\x86\x94\
//!                \x8c\x01b\x94\x8f\x94(K\x02K\x03\x90u.";
//! let value = pickle::value_from_slice(python)?;
//! assert_eq!(value.to_string(), "{'a': (1, b'x'), 'b': {2, 3}}");
//! # Ok::<(), dcache_disk::Error>(())
//! ```

mod de;
mod op;
mod ser;

use std::io::Write;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Format, Result};
use crate::value::{self, Value};

/// The highest pickle protocol this module writes and reads (Python 3.8+'s
/// `pickle.HIGHEST_PROTOCOL`).
pub const HIGHEST_PROTOCOL: u8 = 5;

/// Containers may nest this deep, in pickles written and read (and in MessagePack read).
pub(crate) const MAX_DEPTH: usize = 256;

/// The protocol actually written for a requested one.
fn effective_protocol(protocol: u8) -> Result<u8> {
    match protocol {
        0..=3 => Ok(3),
        4 | 5 => Ok(protocol),
        _ => Err(Error::encode(
            Format::Pickle,
            format_args!("unsupported pickle protocol {protocol} (use 0 to {HIGHEST_PROTOCOL})"),
        )),
    }
}

/// Pickles `value` with `protocol` (0 to 5; 0 to 2 write protocol 3).
///
/// # Errors
///
/// [`Error::Encode`] if the protocol is above 5, containers nest deeper than 256 levels, or a
/// `str`/`bytes` of 4 GiB or more is written with protocol 3; [`Error::Serde`] if the value's
/// `Serialize` impl fails.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, protocol: u8) -> Result<Vec<u8>> {
    let mut pickler = ser::Pickler::new(effective_protocol(protocol)?);
    value.serialize(&mut pickler)?;
    pickler.finish()
}

/// Pickles `value` with `protocol` into `writer` (see [`to_vec`]).
///
/// The pickle is built in memory first (frames need their length up front), then written with
/// a single `write_all`.
///
/// # Errors
///
/// As [`to_vec`]; a write failure is an [`Error::Encode`].
pub fn to_writer<W: Write, T: Serialize + ?Sized>(
    mut writer: W,
    value: &T,
    protocol: u8,
) -> Result<()> {
    let bytes = to_vec(value, protocol)?;
    writer
        .write_all(&bytes)
        .map_err(|e| Error::encode(Format::Pickle, format_args!("cannot write the pickle: {e}")))
}

/// Pickles a [`Value`], keeping its Python types (same as [`to_vec`], which also keeps them).
///
/// # Errors
///
/// As [`to_vec`].
pub fn value_to_vec(value: &Value, protocol: u8) -> Result<Vec<u8>> {
    to_vec(value, protocol)
}

/// Reads a pickle into a [`Value`].
///
/// Bytes after the `STOP` opcode are ignored, as Python does.
///
/// # Errors
///
/// [`Error::PickleGlobal`] if the pickle refers to a Python object other than the builtin types
/// (a class instance, a function); [`Error::Decode`] if it is truncated, corrupt, uses an
/// unsupported feature (persistent IDs, extension codes, out-of-band buffers), holds a string
/// Rust cannot represent (a lone surrogate), nests deeper than 256 containers, contains itself,
/// or expands to a value far larger than the input.
pub fn value_from_slice(bytes: &[u8]) -> Result<Value> {
    de::decode(bytes)
}

/// Reads a pickle into any serde type: [`value_from_slice`], then
/// [`from_value`](crate::value::from_value).
///
/// # Errors
///
/// As [`value_from_slice`]; [`Error::WrongType`] if the value does not fit `T`;
/// [`Error::Serde`] if `T`'s `Deserialize` impl fails otherwise.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    value::from_value(value_from_slice(bytes)?)
}

#[cfg(test)]
mod tests;
