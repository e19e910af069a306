//! Python values as tagged JSON, the encoding `tests/interop/common.py` speaks.
//!
//! `{"none": null}`, `{"bool": b}`, `{"int": "<decimal>"}`, `{"float": "<IEEE-754 bits as a
//! decimal u64>"}`, `{"str": s}`, `{"bytes": "<hex>"}`, `{"list" | "tuple" | "set" |
//! "frozenset": [..]}`, `{"dict": [[k, v], ..]}`. Floats travel as their bits, so `-0.0`, the
//! infinities and NaN survive, and two values compare equal only when they are the same python
//! value of the same type.

use dcache::Value;
use dcache::disk::BigInt;
use serde_json::{Value as Json, json};

/// `value` as tagged JSON.
pub fn tag(value: &Value) -> Json {
    let seq = |items: &[Value]| Json::Array(items.iter().map(tag).collect());
    match value {
        Value::None => json!({ "none": null }),
        Value::Bool(b) => json!({ "bool": b }),
        Value::Int(i) => json!({ "int": i.to_string() }),
        Value::BigInt(b) => json!({ "int": b.to_string() }),
        Value::Float(f) => json!({ "float": f.to_bits().to_string() }),
        Value::Str(s) => json!({ "str": s }),
        Value::Bytes(b) => json!({ "bytes": hex(b) }),
        Value::List(items) => json!({ "list": seq(items) }),
        Value::Tuple(items) => json!({ "tuple": seq(items) }),
        Value::Set(items) => json!({ "set": seq(items) }),
        Value::FrozenSet(items) => json!({ "frozenset": seq(items) }),
        Value::Dict(pairs) => json!({
            "dict": pairs.iter().map(|(k, v)| json!([tag(k), tag(v)])).collect::<Vec<_>>()
        }),
        other => panic!("no tagged form for {other:?}"),
    }
}

/// Anything convertible to a [`Value`], as tagged JSON.
pub fn t(value: impl Into<Value>) -> Json {
    tag(&value.into())
}

/// The [`Value`] a tagged JSON value stands for. Panics on malformed input (a test bug).
pub fn untag(json: &Json) -> Value {
    let (kind, inner) = json
        .as_object()
        .and_then(|o| o.iter().next())
        .unwrap_or_else(|| panic!("not a tagged value: {json}"));
    let items = || -> Vec<Value> {
        inner
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {json}"))
            .iter()
            .map(untag)
            .collect()
    };
    let text = || {
        inner
            .as_str()
            .unwrap_or_else(|| panic!("not a string: {json}"))
    };
    match kind.as_str() {
        "none" => Value::None,
        "bool" => Value::Bool(inner.as_bool().expect("a bool")),
        "int" => text().parse::<i64>().map_or_else(
            |_| Value::BigInt(BigInt::from_i128(text().parse().expect("an int in i128"))),
            Value::Int,
        ),
        "float" => Value::Float(f64::from_bits(text().parse().expect("float bits"))),
        "str" => Value::Str(text().to_owned()),
        "bytes" => Value::Bytes(unhex(text())),
        "list" => Value::List(items()),
        "tuple" => Value::Tuple(items()),
        "set" => Value::Set(items()),
        "frozenset" => Value::FrozenSet(items()),
        "dict" => Value::Dict(
            inner
                .as_array()
                .expect("dict pairs")
                .iter()
                .map(|pair| (untag(&pair[0]), untag(&pair[1])))
                .collect(),
        ),
        other => panic!("unknown tag {other} in {json}"),
    }
}

/// Lowercase hex, as python's `bytes.hex()`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        write!(out, "{b:02x}").expect("writing to a String");
        out
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
