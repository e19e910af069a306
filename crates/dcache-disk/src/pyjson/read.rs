//! Reading JSON as python's `json.loads` does: standard JSON plus python's `NaN`, `Infinity`
//! and `-Infinity` tokens, into a [`Value`].
//!
//! `serde_json` refuses those tokens, yet `json.dumps` writes them for non-finite floats (its
//! default `allow_nan=True`), so JSONDisk entries holding them would be unreadable.

use crate::error::{Error, Format, Result};
use crate::value::Value;

/// Containers nested deeper than pickles may nest are refused, so neither parsing nor dropping
/// the result can overflow the stack.
use crate::pickle::MAX_DEPTH;

/// Parses one JSON document (surrounding whitespace allowed) into a [`Value`]: objects become
/// `Dict`s with `Str` keys in document order, arrays `List`s, integers `Int` (or `BigInt` beyond
/// `i64`), other numbers `Float`.
///
/// # Errors
///
/// [`Error::Decode`] naming the byte offset of the first problem.
///
/// # Examples
///
/// ```
/// use dcache_disk::{pyjson, Value};
///
/// let v = pyjson::from_slice_value(br#"{"a": [1, 2.5, NaN, -Infinity, null]}"#)?;
/// let Value::Dict(items) = v else { panic!() };
/// assert_eq!(items[0].0, Value::Str("a".into()));
/// # Ok::<(), dcache_disk::Error>(())
/// ```
pub fn from_slice_value(bytes: &[u8]) -> Result<Value> {
    let mut p = Parser { bytes, pos: 0 };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != bytes.len() {
        return Err(p.error("trailing characters after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::decode(Format::Json, format!("{what} at byte {}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &[u8]) -> bool {
        if self.bytes.get(self.pos..self.pos + literal.len()) == Some(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') if self.eat(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Value::None),
            Some(b'N') if self.eat(b"NaN") => Ok(Value::Float(f64::NAN)),
            Some(b'I') if self.eat(b"Infinity") => Ok(Value::Float(f64::INFINITY)),
            Some(b'-') if self.eat(b"-Infinity") => Ok(Value::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            Err(self.error(&format!("nesting deeper than {MAX_DEPTH}")))
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b"}") {
            return Ok(Value::Dict(items));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(b":") {
                return Err(self.error("expected ':'"));
            }
            self.skip_ws();
            let value = self.value(depth)?;
            items.push((Value::Str(key), value));
            self.skip_ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"}") {
                return Ok(Value::Dict(items));
            }
            return Err(self.error("expected ',' or '}'"));
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b"]") {
            return Ok(Value::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"]") {
                return Ok(Value::List(items));
            }
            return Err(self.error("expected ',' or ']'"));
        }
    }

    fn string(&mut self) -> Result<String> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("unterminated escape"));
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                // python's json.loads (strict) refuses raw control characters in strings.
                0x00..=0x1f => return Err(self.error("control character in string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("short \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.error("bad \\u escape"))?;
        let n = u32::from_str_radix(text, 16).map_err(|_| self.error("bad \\u escape"))?;
        self.pos += 4;
        Ok(n)
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by an escaped low surrogate.
            if !self.eat(b"\\u") {
                return Err(self.error("lone surrogate in \\u escape (not representable in Rust)"));
            }
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.error("invalid surrogate pair"));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code)
            .ok_or_else(|| self.error("lone surrogate in \\u escape (not representable in Rust)"))
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            float = true;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        // Only ASCII digits, signs, '.', 'e' were consumed.
        let text = std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        if float {
            return text
                .parse()
                .map(Value::Float)
                .map_err(|_| self.error("invalid number"));
        }
        // Any size python writes, up to python's own limit on decimal digits.
        crate::value::parse_decimal_int(text.as_bytes()).map_err(|e| self.error(&e))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::value::BigInt;
    use proptest::prelude::*;

    #[test]
    fn reads_python_output_including_non_finite_floats() {
        let v = from_slice_value(br#" {"a": [1, -2.5e-3, NaN, Infinity, -Infinity], "b": {"c": null}, "d": "\u00e9\ud83d\ude00\n", "e": true, "big": 18446744073709551616} "#).unwrap();
        let Value::Dict(items) = v else {
            panic!("not a dict")
        };
        let Value::List(list) = &items[0].1 else {
            panic!("not a list")
        };
        assert_eq!(list[0], Value::Int(1));
        assert_eq!(list[1], Value::Float(-2.5e-3));
        assert!(matches!(list[2], Value::Float(f) if f.is_nan()));
        assert_eq!(list[3], Value::Float(f64::INFINITY));
        assert_eq!(list[4], Value::Float(f64::NEG_INFINITY));
        assert_eq!(
            items[1].1,
            Value::Dict(vec![(Value::Str("c".into()), Value::None)])
        );
        assert_eq!(items[2].1, Value::Str("\u{e9}\u{1f600}\n".into()));
        assert_eq!(items[3].1, Value::Bool(true));
        assert_eq!(items[4].1, Value::BigInt(BigInt::from_u128(1 << 64)));
        // Beyond 128 bits, as python's JSONDisk writes 2**130.
        let big = from_slice_value(b"1361129467683753853853498429727072845824").unwrap();
        let mut le = [0u8; 17];
        le[16] = 4;
        assert_eq!(big, Value::BigInt(BigInt::from_signed_bytes_le(&le)));
    }

    #[test]
    fn refuses_what_python_refuses_and_more() {
        for bad in [
            &b""[..],
            b"[1,",
            b"{\"a\" 1}",
            b"[1] 2",
            b"01",
            b"1.",
            b"-",
            b"\"\\x\"",
            b"\"\x01\"",
            b"\"\\ud800\"",
            b"nan",
            b"[1,]",
            b"{\"a\":1,}",
            b"1e",
            b"\"unterminated",
        ] {
            assert!(
                from_slice_value(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(from_slice_value(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(from_slice_value(ok.as_bytes()).is_ok());
    }

    #[test]
    fn reads_every_golden_text_python_wrote() {
        for line in include_str!("../../tests/data/json_golden.txt").lines() {
            let hex = line.split('\t').nth(1).unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            from_slice_value(&bytes).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = from_slice_value(&bytes);
        }

        #[test]
        fn round_trips_what_dcache_writes(x in any::<f64>(), s in ".*", n in any::<i64>()) {
            let text = super::super::to_vec(&(x, &s, n, vec![Some(x)])).unwrap();
            let v = from_slice_value(&text).unwrap();
            let Value::List(items) = v else { panic!("not a list") };
            match &items[0] {
                Value::Float(f) => prop_assert!(f.to_bits() == x.to_bits() || (f.is_nan() && x.is_nan())),
                other => prop_assert!(false, "{other:?}"),
            }
            prop_assert_eq!(&items[1], &Value::Str(s.clone()));
            prop_assert_eq!(&items[2], &Value::Int(n));
        }
    }
}
