//! Python values as structured JSON, and back.
//!
//! What JSON has is itself: `None` is `null`, a `bool` a boolean, an `int` within 64 bits a
//! number, a finite `float` a number with a fraction or exponent (`1.0`, so it stays a
//! float), a `str` a string, a `list` an array, and a `dict` whose keys are all strings an
//! object. Everything else is an object with one `$`-tag, so it round-trips:
//!
//! | python | JSON |
//! |---|---|
//! | `bytes` | `{"$bytes": "<base64>"}` |
//! | `tuple` | `{"$tuple": [...]}` |
//! | `set`, `frozenset` | `{"$set": [...]}`, `{"$frozenset": [...]}` |
//! | `int` beyond 64 bits | `{"$int": "<decimal>"}` |
//! | `inf`, `-inf`, `nan` | `{"$float": "inf"}`, … |
//! | other `dict` | `{"$dict": [[key, value], ...]}` |
//!
//! A dict with string keys whose only key starts with `$` is written as `$dict` too, so it
//! is never taken for a tag.

use dcache::Value;
use dcache::disk::BigInt;
use serde_json::{Map, Value as J};

use crate::render::base64;

/// A value as structured JSON (see the module docs).
pub(crate) fn to_json(value: &Value) -> J {
    match value {
        Value::None => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::BigInt(b) => tagged("$int", J::String(b.to_string())),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
            || {
                let name = if f.is_nan() {
                    "nan"
                } else if *f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                tagged("$float", J::String(name.to_owned()))
            },
            J::Number,
        ),
        Value::Str(s) => J::String(s.clone()),
        Value::Bytes(b) => tagged("$bytes", J::String(base64(b))),
        Value::List(items) => array(items),
        Value::Tuple(items) => tagged("$tuple", array(items)),
        Value::Set(items) => tagged("$set", array(items)),
        Value::FrozenSet(items) => tagged("$frozenset", array(items)),
        Value::Dict(pairs) => {
            let plain = pairs.iter().all(|(k, _)| matches!(k, Value::Str(_)))
                && !(pairs.len() == 1
                    && matches!(&pairs[0].0, Value::Str(s) if s.starts_with('$')));
            let unique = {
                let mut names: Vec<&str> = pairs.iter().filter_map(|(k, _)| k.as_str()).collect();
                names.sort_unstable();
                names.windows(2).all(|w| w[0] != w[1])
            };
            if plain && unique {
                let map: Map<String, J> = pairs
                    .iter()
                    .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), to_json(v))))
                    .collect();
                J::Object(map)
            } else {
                tagged(
                    "$dict",
                    J::Array(
                        pairs
                            .iter()
                            .map(|(k, v)| J::Array(vec![to_json(k), to_json(v)]))
                            .collect(),
                    ),
                )
            }
        }
        // A kind of value added to the library later: its repr, which `load` refuses.
        other => tagged("$repr", J::String(other.to_string())),
    }
}

fn array(items: &[Value]) -> J {
    J::Array(items.iter().map(to_json).collect())
}

fn tagged(tag: &str, inner: J) -> J {
    let mut map = Map::new();
    map.insert(tag.to_owned(), inner);
    J::Object(map)
}

/// Reads structured JSON back into a value; the error says what is wrong and where.
pub(crate) fn from_json(json: &J) -> Result<Value, String> {
    Ok(match json {
        J::Null => Value::None,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::BigInt(BigInt::from_u128(u128::from(u)))
            } else {
                Value::Float(n.as_f64().ok_or_else(|| format!("{n} is not a number"))?)
            }
        }
        J::String(s) => Value::Str(s.clone()),
        J::Array(items) => Value::List(items_of(items)?),
        J::Object(map) => {
            if map.len() == 1
                && let Some((tag, inner)) = map.iter().next()
                && tag.starts_with('$')
            {
                return from_tagged(tag, inner);
            }
            Value::Dict(
                map.iter()
                    .map(|(k, v)| Ok((Value::Str(k.clone()), from_json(v)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
    })
}

fn items_of(items: &[J]) -> Result<Vec<Value>, String> {
    items.iter().map(from_json).collect()
}

fn from_tagged(tag: &str, inner: &J) -> Result<Value, String> {
    let list = || match inner {
        J::Array(items) => items_of(items),
        other => Err(format!("{tag} needs an array, not {other}")),
    };
    let text = || match inner {
        J::String(s) => Ok(s.as_str()),
        other => Err(format!("{tag} needs a string, not {other}")),
    };
    Ok(match tag {
        "$bytes" => Value::Bytes(parse_base64(text()?)?),
        "$tuple" => Value::Tuple(list()?),
        "$set" => Value::Set(list()?),
        "$frozenset" => Value::FrozenSet(list()?),
        "$int" => parse_int(text()?)?,
        "$float" => Value::Float(match text()? {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => return Err(format!("$float is inf, -inf or nan, not {other:?}")),
        }),
        "$dict" => {
            let J::Array(pairs) = inner else {
                return Err(format!(
                    "$dict needs an array of [key, value] pairs, not {inner}"
                ));
            };
            Value::Dict(
                pairs
                    .iter()
                    .map(|pair| match pair {
                        J::Array(kv) if kv.len() == 2 => {
                            Ok((from_json(&kv[0])?, from_json(&kv[1])?))
                        }
                        other => Err(format!("a $dict item is a [key, value] pair, not {other}")),
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        "$repr" => {
            return Err(format!(
                "{inner} is only the repr of a value this version cannot represent"
            ));
        }
        other => {
            return Err(format!(
                "unknown tag {other:?} (known: $bytes, $tuple, $set, $frozenset, $int, $float, \
                 $dict)"
            ));
        }
    })
}

/// A decimal integer of any size.
pub(crate) fn parse_int(text: &str) -> Result<Value, String> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a decimal integer"));
    }
    // The magnitude, little-endian base 256.
    let mut magnitude: Vec<u8> = Vec::new();
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in &mut magnitude {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // A sign byte, then two's complement for negatives.
    magnitude.push(0);
    if negative {
        let mut carry = 1u16;
        for byte in &mut magnitude {
            let v = u16::from(!*byte) + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
    }
    let big = BigInt::from_signed_bytes_le(&magnitude);
    Ok(big.to_i64().map_or(Value::BigInt(big.clone()), Value::Int))
}

/// Standard base64 (padding optional), as [`base64`] writes it.
pub(crate) fn parse_base64(text: &str) -> Result<Vec<u8>, String> {
    let sextet = |c: u8| -> Result<u32, String> {
        Ok(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("{:?} is not base64", char::from(c))),
        }))
    };
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 {
        return Err(format!("{text:?} is not base64 (wrong length)"));
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= sextet(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Value) {
        let json = to_json(v);
        let text = json.to_string();
        let parsed: J = serde_json::from_str(&text).expect("valid JSON");
        let back = from_json(&parsed).expect("decodes");
        match (v, &back) {
            (Value::Float(a), Value::Float(b)) if a.is_nan() => assert!(b.is_nan()),
            _ => assert_eq!(&back, v, "{text}"),
        }
    }

    #[test]
    fn every_type_round_trips() {
        for v in [
            Value::None,
            Value::Bool(true),
            Value::Int(-7),
            Value::Int(i64::MAX),
            Value::from(u128::MAX),
            Value::BigInt(BigInt::from_i128(-(1i128 << 100))),
            Value::Float(1.0),
            Value::Float(-0.5),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(f64::NAN),
            Value::from("héllo"),
            Value::from(b"\x00\xff".to_vec()),
            Value::List(vec![]),
            Value::Tuple(vec![Value::Int(1), Value::from("a")]),
            Value::Set(vec![Value::Int(1)]),
            Value::FrozenSet(vec![]),
            Value::Dict(vec![(Value::from("name"), Value::from("ada"))]),
            Value::Dict(vec![(Value::Int(1), Value::None)]),
            Value::Dict(vec![(Value::from("$bytes"), Value::from("x"))]),
        ] {
            round_trip(&v);
        }
    }

    #[test]
    fn plain_values_are_plain_json() {
        let v = Value::Dict(vec![
            (Value::from("name"), Value::from("ada")),
            (
                Value::from("tags"),
                Value::List(vec![Value::Int(1), Value::Float(2.0)]),
            ),
        ]);
        assert_eq!(to_json(&v).to_string(), r#"{"name":"ada","tags":[1,2.0]}"#);
        assert_eq!(
            to_json(&Value::from(b"foo".to_vec())).to_string(),
            r#"{"$bytes":"Zm9v"}"#
        );
        assert!(from_json(&serde_json::json!({"$nope": 1})).is_err());
    }

    #[test]
    fn decimal_integers_of_any_size() {
        assert_eq!(parse_int("42"), Ok(Value::Int(42)));
        assert_eq!(
            parse_int("1267650600228229401496703205376"),
            Ok(Value::BigInt(BigInt::from_u128(1u128 << 100)))
        );
        assert_eq!(
            parse_int("-9223372036854775809"),
            Ok(Value::BigInt(BigInt::from_i128(i128::from(i64::MIN) - 1)))
        );
        assert!(parse_int("12a").is_err());
        assert!(parse_int("-").is_err());
    }

    #[test]
    fn base64_decodes_what_it_encodes() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"\xff\xfe\xfd",
        ] {
            assert_eq!(parse_base64(&base64(input)).as_deref(), Ok(input));
        }
        assert!(parse_base64("a").is_err());
        assert!(parse_base64("@@@@").is_err());
    }
}
