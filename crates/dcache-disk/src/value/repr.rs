//! [`Value`]'s [`Display`](fmt::Display): Python's `repr()` of the value.

use std::fmt::{self, Write as _};

use super::Value;

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
