//! Tests of the pickle encoder and decoder, against vectors made by CPython
//! (`tests/data/gen_pickles.py`) and against a live `python3` when one is available.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde::{Deserialize, Serialize, Serializer};

use super::{from_slice, to_vec, to_writer, value_from_slice, value_to_vec};
use crate::error::Error;
use crate::value::{BigInt, Value};

const PICKLES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/pickles.txt"
));
const OPTIMIZED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/optimized.txt"
));

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `(name, protocol, bytes)` of a vector file.
fn vectors(text: &str) -> Vec<(&str, u8, &str)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split('\t');
            let name = parts.next().unwrap();
            let proto = parts.next().unwrap().parse().unwrap();
            let data = parts.next().unwrap();
            (name, proto, data)
        })
        .collect()
}

fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn i(v: i64) -> Value {
    Value::Int(v)
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn b(v: &[u8]) -> Value {
    Value::Bytes(v.to_vec())
}

fn list(v: Vec<Value>) -> Value {
    Value::List(v)
}

fn tuple(v: Vec<Value>) -> Value {
    Value::Tuple(v)
}

fn dict(v: Vec<(Value, Value)>) -> Value {
    Value::Dict(v)
}

fn big(bytes: &[u8]) -> Value {
    Value::BigInt(BigInt::from_signed_bytes_le(bytes))
}

/// 2**512 as Python's `encode_long` writes it.
fn two_pow_512() -> Value {
    let mut bytes = vec![0; 64];
    bytes.push(1);
    big(&bytes)
}

/// A list nested `depth` levels deep (`nested(1) == []`).
fn nested(depth: usize) -> Value {
    let mut v = list(vec![]);
    for _ in 1..depth {
        v = list(vec![v]);
    }
    v
}

/// Structural equality with floats compared bit for bit (so NaN equals itself).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::List(x), Value::List(y))
        | (Value::Tuple(x), Value::Tuple(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::FrozenSet(x), Value::FrozenSet(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => a == b,
    }
}

fn is_decode_error(r: &crate::error::Result<Value>, needle: &str) -> bool {
    matches!(r, Err(Error::Decode { reason, .. }) if reason.contains(needle))
}

// ------------------------------------------------------------------------------------------
// CPython → Rust: pickles.txt
// ------------------------------------------------------------------------------------------

enum Expect {
    Value(Value),
    Global(&'static str, &'static str),
    Decode(&'static str),
}

#[allow(clippy::too_many_lines, clippy::match_same_arms)]
fn expected(name: &str) -> Expect {
    use Expect::{Decode, Global};
    let v = match name {
        "none" => Value::None,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "int_0" => i(0),
        "int_1" => i(1),
        "int_255" => i(255),
        "int_256" => i(256),
        "int_65535" => i(65535),
        "int_65536" => i(65536),
        "int_m1" => i(-1),
        "int_2p31" => i(1 << 31),
        "int_m2p31m1" => i(-(1 << 31) - 1),
        "int_i64max" => i(i64::MAX),
        "int_i64min" => i(i64::MIN),
        "int_2p64" => big(&[0, 0, 0, 0, 0, 0, 0, 0, 1]),
        "int_2p512" => two_pow_512(),
        "int_m2p100" => big(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0]),
        "float_0" => Value::Float(0.0),
        "float_m0" => Value::Float(-0.0),
        "float_1_5" => Value::Float(1.5),
        "float_inf" => Value::Float(f64::INFINITY),
        "float_minf" => Value::Float(f64::NEG_INFINITY),
        "str_empty" => s(""),
        "str_hello" => s("héllo"),
        "str_nul" => s("\0"),
        "str_300" => Value::Str(
            (0..300u32)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect(),
        ),
        "str_special" => s("a\\b\nc\r\x1a\u{1234}\u{1f600}'\""),
        "str_surrogate" | "py2_unicode_surrogate" => return Decode("surrogate"),
        "bytes_empty" | "bytearray_empty" | "bytes_global" => b(b""),
        "bytes_00ff" => b(b"\x00\xff"),
        "bytes_300" => {
            let mut v: Vec<u8> = (0..=255).collect();
            v.extend([0; 44]);
            Value::Bytes(v)
        }
        "bytearray_ab" | "py2_bytearray" => b(b"ab"),
        "list_empty" => list(vec![]),
        "list_mixed" => list(vec![i(1), s("a"), Value::None]),
        "list_2500" => list((0..2500).map(i).collect()),
        "tuple_0" => tuple(vec![]),
        "tuple_1" => tuple(vec![i(1)]),
        "tuple_2" => tuple(vec![i(1), i(2)]),
        "tuple_3" => tuple(vec![i(1), i(2), i(3)]),
        "tuple_4" => tuple(vec![i(1), i(2), i(3), i(4)]),
        "dict_empty" => dict(vec![]),
        "dict_ab" | "py2_dict" => dict(vec![(s("a"), i(1)), (s("b"), list(vec![i(1), i(2)]))]),
        "dict_mixed" => dict(vec![(i(1), s("x")), (tuple(vec![i(1), i(2)]), b(b"y"))]),
        "dict_1500" => dict(
            (0..1500)
                .map(|n| (Value::Str(n.to_string()), i(n)))
                .collect(),
        ),
        "set_empty" => Value::Set(vec![]),
        "set_12" | "py2_set" => Value::Set(vec![i(1), i(2)]),
        "frozenset_empty" => Value::FrozenSet(vec![]),
        "frozenset_3" => Value::FrozenSet(vec![i(3)]),
        "nested" => nested(3),
        "nested_256" => nested(256),
        "nested_257" => return Decode("deeper than 256"),
        "shared" => list(vec![list(vec![i(1)]), list(vec![i(1)])]),
        "shared_keys" => list(vec![
            dict(vec![(s("name"), i(1))]),
            dict(vec![(s("name"), i(2))]),
        ]),
        "cyclic" | "text_memo" => return Decode("recursive"),
        "decimal" | "stack_global_class" => return Global("decimal", "Decimal"),
        "date" => return Global("datetime", "date"),
        "memoize_key" => tuple(vec![s("__main__.f"), i(1), Value::None, s("b"), i(3)]),
        "py2_string" | "py2_binstring" | "py2_short_binstring" => s("abc"),
        "py2_string_escapes" => s("a\nA'\\A"),
        "py2_string_dquote" => s("it's"),
        "py2_string_nonascii" => return Decode("non-ASCII"),
        "py2_long" => Value::from(12_345_678_901_234_567_890_u64),
        "py2_long_small" => i(-5),
        "py2_ints" => list(vec![
            Value::Bool(true),
            Value::Bool(false),
            i(42),
            i(-7),
            i(i64::MAX),
        ]),
        "py2_unicode" => s("é\u{1f600}x\\\\y"),
        "py2_float" => Value::Float(1.5),
        "py2_float_exp" => Value::Float(-1e100),
        "py2_instance" | "py2_reconstructor" => return Global("__main__", "Foo"),
        "dup" => tuple(vec![i(1), i(1)]),
        "pop_mark" => i(3),
        "pop" | "pop_on_mark" | "trailing_bytes" | "long1_nonminimal" => i(1),
        "long_memo" => i(7),
        "memoize_text_get" => tuple(vec![s("a"), s("a")]),
        "frame_ok" => i(5),
        "codecs_encode" => b(b"\xe9\xff"),
        "long4" => i(-32768),
        "empty_long1" => i(0),
        "set_additems_frozenset" => {
            tuple(vec![Value::Set(vec![i(1)]), Value::FrozenSet(vec![i(2)])])
        }
        "dict_op" => dict(vec![(i(1), i(2)), (i(3), i(4))]),
        "list_op" => list(vec![i(1), i(2)]),
        _ => panic!("no expectation for test vector {name:?}"),
    };
    Expect::Value(v)
}

#[test]
fn decodes_cpython_pickles() {
    let vectors = vectors(PICKLES);
    assert!(vectors.len() > 300);
    for (name, proto, data) in vectors {
        let bytes = hex(data);
        let got = value_from_slice(&bytes);
        let context = format!("{name} (protocol {proto})");
        match expected(name) {
            Expect::Value(want) => {
                let got = got.unwrap_or_else(|e| panic!("{context}: {e}"));
                assert!(same(&got, &want), "{context}: got {got:?}, want {want:?}");
                // What we read, we write back and read again identically.
                for p in 3..=5 {
                    let again = value_from_slice(&value_to_vec(&got, p).unwrap()).unwrap();
                    assert!(
                        same(&again, &want),
                        "{context}: round trip with protocol {p}"
                    );
                }
            }
            Expect::Global(module, global) => match got {
                Err(Error::PickleGlobal { module: m, name: n }) => {
                    assert_eq!((m.as_str(), n.as_str()), (module, global), "{context}");
                }
                other => panic!("{context}: expected PickleGlobal, got {other:?}"),
            },
            Expect::Decode(needle) => {
                assert!(is_decode_error(&got, needle), "{context}: got {got:?}");
            }
        }
    }
}

#[test]
fn every_truncation_of_a_cpython_pickle_fails() {
    for (name, proto, data) in vectors(PICKLES) {
        let bytes = hex(data);
        if bytes.len() > 600 {
            continue;
        }
        for len in 0..bytes.len() {
            if name == "trailing_bytes" && len > 4 {
                continue; // the STOP is at byte 4
            }
            let result = value_from_slice(&bytes[..len]);
            assert!(
                result.is_err(),
                "{name} (protocol {proto}) truncated to {len}: {result:?}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Rust → CPython bytes: optimized.txt
// ------------------------------------------------------------------------------------------

/// A map serialized in the given order.
struct Ordered<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Bytes serialized with `serialize_bytes` (what `serde_bytes` does).
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Struct {
    a: i64,
    b: Vec<i64>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Unit {
    Name,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Newtype {
    Name(i64),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum TupleVariant {
    Name(i64, i64),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum StructVariant {
    Name { x: i64 },
}

#[allow(clippy::too_many_lines)]
fn rust_pickle(name: &str, p: u8) -> crate::error::Result<Vec<u8>> {
    let ints = |n: i64| (0..n).collect::<Vec<i64>>();
    match name {
        "none" => to_vec(&None::<i32>, p),
        "true" => to_vec(&true, p),
        "false" => to_vec(&false, p),
        "int_0" => to_vec(&0u8, p),
        "int_255" => to_vec(&255i16, p),
        "int_256" => to_vec(&256u16, p),
        "int_65535" => to_vec(&65535u32, p),
        "int_65536" => to_vec(&65536i32, p),
        "int_m1" => to_vec(&-1i8, p),
        "int_m256" => to_vec(&-256i64, p),
        "int_2p31" => to_vec(&(1u64 << 31), p),
        "int_m2p31" => to_vec(&i32::MIN, p),
        "int_m2p31m1" => to_vec(&(i64::from(i32::MIN) - 1), p),
        "int_i64max" => to_vec(&i64::MAX, p),
        "int_i64min" => to_vec(&i64::MIN, p),
        "int_u64max" => to_vec(&u64::MAX, p),
        "int_i128min" => to_vec(&i128::MIN, p),
        "int_u128max" => to_vec(&u128::MAX, p),
        "float_1_5" => to_vec(&1.5f32, p),
        "float_m0" => to_vec(&-0.0f64, p),
        "float_inf" => to_vec(&f64::INFINITY, p),
        "float_nan" => to_vec(&f64::NAN, p),
        "str_empty" => to_vec("", p),
        "str_a" => to_vec(&'a', p),
        "str_hello" => to_vec(&String::from("héllo"), p),
        "str_255" => to_vec(&"x".repeat(255), p),
        "str_256" => to_vec(&"x".repeat(256), p),
        "str_70000" => to_vec(&"y".repeat(70000), p),
        "bytes_empty" => to_vec(&RawBytes(b""), p),
        "bytes_00ff" => to_vec(&vec![0u8, 0xff], p),
        "bytes_256" => to_vec(&[0u8; 256][..], p),
        "bytes_70000" => to_vec(&RawBytes(&vec![0; 70000]), p),
        "list_empty" => to_vec(&Vec::<i64>::new(), p),
        "list_1" => to_vec(&vec![1i64], p),
        "list_123" => to_vec(&vec![1i32, 2, 3], p),
        "list_1000" => to_vec(&ints(1000), p),
        "list_1001" => to_vec(&ints(1001), p),
        "list_2000" => to_vec(&ints(2000), p),
        "list_100000" => to_vec(&ints(100_000), p),
        "list_bools" => to_vec(&vec![true, false], p),
        "list_two_40000_bytes" => to_vec(&vec![vec![0u8; 40000], vec![0u8; 40000]], p),
        "list_of_lists" => to_vec(&vec![vec![1i64], vec![], vec![2, 3]], p),
        "tuple_0" => to_vec(&Value::Tuple(vec![]), p),
        "tuple_1" => to_vec(&(1i64,), p),
        "tuple_2" => to_vec(&(1i64, "a"), p),
        "tuple_3" => to_vec(&(1i64, "a", None::<i64>), p),
        "tuple_4" => to_vec(&(1i64, 2i64, 3i64, 4i64), p),
        "tuple_nested" => to_vec(&((1i64, 2i64), "x"), p),
        "dict_empty" => to_vec(&BTreeMap::<String, i64>::new(), p),
        "dict_1" => to_vec(&BTreeMap::from([("a", 1)]), p),
        "dict_struct" => to_vec(
            &Struct {
                a: 1,
                b: vec![1, 2],
            },
            p,
        ),
        "dict_1000" => to_vec(
            &ints(1000)
                .into_iter()
                .map(|n| (n, n))
                .collect::<BTreeMap<_, _>>(),
            p,
        ),
        "dict_1500" => to_vec(&Ordered((0..1500).map(|n| (n.to_string(), n)).collect()), p),
        "dict_2000" => to_vec(
            &ints(2000)
                .into_iter()
                .map(|n| (n, n))
                .collect::<BTreeMap<_, _>>(),
            p,
        ),
        "enum_unit" => to_vec(&Unit::Name, p),
        "enum_newtype" => to_vec(&Newtype::Name(5), p),
        "enum_tuple" => to_vec(&TupleVariant::Name(1, 2), p),
        "enum_struct" => to_vec(&StructVariant::Name { x: 1 }, p),
        "set_12" => to_vec(&Value::Set(vec![i(1), i(2)]), p),
        "set_1000" => to_vec(&Value::Set((0..1000).map(i).collect()), p),
        "frozenset_12" => to_vec(&Value::FrozenSet(vec![i(1), i(2)]), p),
        "bigint_2p512" => to_vec(&two_pow_512(), p),
        "memoize_key" => to_vec(&("__main__.f", 1i64, None::<i64>, "b", 3i64), p),
        _ => panic!("no Rust value for {name:?}"),
    }
}

#[test]
fn encodes_like_pickletools_optimize() {
    let vectors = vectors(OPTIMIZED);
    assert!(vectors.len() > 150);
    for (name, proto, want) in vectors {
        let got = rust_pickle(name, proto).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(summary) = want.strip_prefix("fnv:") {
            let mut parts = summary.split(':');
            let len: usize = parts.next().unwrap().parse().unwrap();
            let hash = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
            let head = hex(parts.next().unwrap());
            assert_eq!(
                &got[..head.len().min(got.len())],
                &head[..],
                "{name} protocol {proto}: head"
            );
            assert_eq!(got.len(), len, "{name} protocol {proto}: length");
            assert_eq!(fnv1a64(&got), hash, "{name} protocol {proto}: content");
        } else {
            assert_eq!(to_hex(&got), want, "{name} protocol {proto}");
        }
    }
}

#[test]
fn byte_exact_spot_checks() {
    assert_eq!(to_vec(&None::<i32>, 5).unwrap(), [0x80, 5, b'N', b'.']);
    assert_eq!(to_vec(&true, 5).unwrap(), [0x80, 5, 0x88, b'.']);
    assert_eq!(to_vec(&(), 4).unwrap(), [0x80, 4, b'N', b'.']);
    assert_eq!(to_vec(&0u8, 5).unwrap(), [0x80, 5, b'K', 0, b'.']);
    // Four body bytes get a frame, as CPython's framer does.
    assert_eq!(
        to_hex(&to_vec("a", 5).unwrap()),
        "80059504000000000000008c01612e"
    );
    assert_eq!(to_hex(&to_vec("a", 3).unwrap()), "80035801000000612e");
    assert_eq!(to_hex(&to_vec(&[1u8, 2], 3).unwrap()), "8003430201022e");
    // Python's encode_long.
    for (v, want) in [
        (255i128, "ff00"),
        (-1, "ff"),
        (-256, "00ff"),
        (1 << 63, "000000000000008000"),
        (-(1 << 31) - 1, "ffffff7fff"),
        (-128, "80"),
        (32767, "ff7f"),
    ] {
        assert_eq!(
            to_hex(BigInt::from_i128(v).as_signed_bytes_le()),
            want,
            "{v}"
        );
    }
}

#[test]
fn protocols() {
    for p in 0..=3 {
        assert_eq!(to_vec(&1, p).unwrap(), to_vec(&1, 3).unwrap());
    }
    assert_eq!(to_vec(&1, 4).unwrap()[1], 4);
    assert!(matches!(to_vec(&1, 6), Err(Error::Encode { .. })));
    // Protocol 3 never uses protocol 4 opcodes.
    let v = Value::Tuple(vec![
        s("x"),
        Value::Set(vec![i(1)]),
        Value::FrozenSet(vec![]),
        Value::Bytes(vec![1; 300]),
    ]);
    let bytes = value_to_vec(&v, 3).unwrap();
    for op in [0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x93, 0x94, 0x95] {
        assert!(
            !bytes.contains(&op),
            "protocol 3 pickle contains opcode 0x{op:02x}"
        );
    }
    assert_eq!(value_from_slice(&bytes).unwrap(), v);
}

#[test]
fn to_writer_writes_and_reports_errors() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Vec::new();
    to_writer(&mut out, &(1, "a"), 5).unwrap();
    assert_eq!(out, to_vec(&(1, "a"), 5).unwrap());

    let err = to_writer(Broken, &1, 5).unwrap_err();
    assert!(matches!(&err, Error::Encode { reason, .. } if reason.contains("disk on fire")));
}

// ------------------------------------------------------------------------------------------
// Encoder corner cases
// ------------------------------------------------------------------------------------------

/// A sequence whose elements start as `u8` and then are not.
struct U8ThenStr;

impl Serialize for U8ThenStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(&1u8)?;
        seq.serialize_element(&2u8)?;
        seq.serialize_element("x")?;
        seq.serialize_element(&3u8)?;
        seq.end()
    }
}

/// Like [`U8ThenStr`] as a tuple.
struct U8ThenStrTuple;

impl Serialize for U8ThenStrTuple {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = serializer.serialize_tuple(4)?;
        t.serialize_element(&1u8)?;
        t.serialize_element(&2u8)?;
        t.serialize_element("x")?;
        t.serialize_element(&3u8)?;
        t.end()
    }
}

/// A sequence and a tuple that announce a wrong length.
struct Liar {
    announced: usize,
    actual: usize,
    tuple: bool,
}

impl Serialize for Liar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeTuple};
        if self.tuple {
            let mut t = serializer.serialize_tuple(self.announced)?;
            for n in 0..self.actual {
                t.serialize_element(&(n as i64))?;
            }
            t.end()
        } else {
            let mut seq = serializer.serialize_seq(Some(self.announced))?;
            for n in 0..self.actual {
                seq.serialize_element(&(n as i64))?;
            }
            seq.end()
        }
    }
}

/// A sequence and a map of unknown length.
struct Unsized(usize);

impl Serialize for Unsized {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for n in 0..self.0 {
            map.serialize_entry(&(n as i64), &UnsizedSeq(n))?;
        }
        map.end()
    }
}

struct UnsizedSeq(usize);

impl Serialize for UnsizedSeq {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.0 as i64).filter(|_| true))
    }
}

#[test]
fn u8_sequences_fall_back_to_lists() {
    let v = value_from_slice(&to_vec(&U8ThenStr, 5).unwrap()).unwrap();
    assert_eq!(v, list(vec![i(1), i(2), s("x"), i(3)]));
    assert_eq!(to_vec(&U8ThenStr, 5).unwrap(), value_to_vec(&v, 5).unwrap());
    let v = value_from_slice(&to_vec(&U8ThenStrTuple, 4).unwrap()).unwrap();
    assert_eq!(v, tuple(vec![i(1), i(2), s("x"), i(3)]));
    assert_eq!(
        to_vec(&U8ThenStrTuple, 4).unwrap(),
        value_to_vec(&v, 4).unwrap()
    );

    // Nested Vec<u8> and [u8; N] are bytes; empty ones are empty lists/tuples.
    let v: Value =
        from_slice(&to_vec(&(vec![1u8, 2], [3u8; 2], Vec::<u8>::new()), 5).unwrap()).unwrap();
    assert_eq!(v, tuple(vec![b(&[1, 2]), b(&[3, 3]), list(vec![])]));
    // Other integer types stay lists.
    let v: Value = from_slice(&to_vec(&vec![1u16, 2], 5).unwrap()).unwrap();
    assert_eq!(v, list(vec![i(1), i(2)]));
}

#[test]
fn wrong_and_unknown_lengths_still_give_cpython_bytes() {
    for (announced, actual) in [
        (0, 0),
        (0, 1),
        (1, 3),
        (5, 2),
        (1, 1),
        (2, 1),
        (0, 1001),
        (3000, 1000),
    ] {
        for tuple in [false, true] {
            let liar = Liar {
                announced,
                actual,
                tuple,
            };
            let got = value_from_slice(&to_vec(&liar, 5).unwrap()).unwrap();
            let items: Vec<Value> = (0..actual as i64).map(i).collect();
            let want = if tuple {
                Value::Tuple(items)
            } else {
                Value::List(items)
            };
            assert_eq!(got, want);
            // Same bytes as an honest value, unless a too-large announcement forced a MARK.
            let honest = announced == actual || announced < 2 || (tuple && announced <= 3);
            if honest {
                assert_eq!(
                    to_vec(&liar, 5).unwrap(),
                    value_to_vec(&want, 5).unwrap(),
                    "{announced} {actual} {tuple}"
                );
            }
        }
    }
    for n in [0, 1, 2, 1000, 2500] {
        let got = to_vec(&Unsized(n), 4).unwrap();
        let want = Value::Dict(
            (0..n)
                .map(|k| (i(k as i64), list((0..k as i64).map(i).collect())))
                .collect(),
        );
        assert_eq!(got, value_to_vec(&want, 4).unwrap(), "{n}");
    }
}

/// `u8`s from an iterator whose size hint is `announced`, whatever it yields.
struct LyingBytes {
    announced: (usize, Option<usize>),
    actual: usize,
}

struct LyingIter {
    announced: (usize, Option<usize>),
    left: usize,
}

impl Iterator for LyingIter {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        self.left = self.left.checked_sub(1)?;
        Some(self.left as u8)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.announced
    }
}

impl Serialize for LyingBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(LyingIter {
            announced: self.announced,
            left: self.actual,
        })
    }
}

#[test]
fn collections_of_u8_are_bytes_whatever_their_size_hint() {
    for (announced, actual) in [
        ((0, Some(0)), 0),
        ((0, Some(0)), 3),
        ((3, Some(3)), 3),
        ((3, Some(3)), 1),
        ((3, Some(3)), 0),
        ((1, Some(1)), 300),
        ((0, None), 300),
        ((0, None), 0),
        ((2, Some(9)), 5),
    ] {
        let got = to_vec(&(1u8, LyingBytes { announced, actual }), 5).unwrap();
        let bytes: Vec<u8> = (0..actual).rev().map(|n| n as u8).collect();
        let inner = if bytes.is_empty() {
            list(vec![])
        } else {
            b(&bytes)
        };
        let want = tuple(vec![i(1), inner]);
        assert_eq!(
            value_from_slice(&got).unwrap(),
            want,
            "{announced:?} {actual}"
        );
        assert_eq!(
            got,
            value_to_vec(&want, 5).unwrap(),
            "{announced:?} {actual}"
        );
    }
    // A large `Vec<u8>` inside a structure is written whole, as `serialize_bytes` writes it.
    let large = vec![9u8; 70_000];
    assert_eq!(
        to_vec(&(1u8, &large), 5).unwrap(),
        to_vec(&(1u8, RawBytes(&large)), 5).unwrap()
    );
}

#[test]
fn nesting_limit_is_the_same_both_ways() {
    let ok = nested(256);
    let bytes = value_to_vec(&ok, 5).unwrap();
    assert_eq!(value_from_slice(&bytes).unwrap(), ok);
    let too_deep = nested(257);
    assert!(matches!(
        value_to_vec(&too_deep, 5),
        Err(Error::Encode { .. })
    ));
    // Dicts count as levels too.
    let mut deep = nested(255);
    deep = Value::Dict(vec![(s("k"), deep)]);
    assert!(value_to_vec(&deep, 5).is_ok());
    deep = Value::Dict(vec![(s("k"), deep)]);
    assert!(value_to_vec(&deep, 5).is_err());
}

// ------------------------------------------------------------------------------------------
// Serde round trips
// ------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    data: Vec<u8>,
    fixed: [u8; 4],
    score: Option<f64>,
    missing: Option<i32>,
    pair: (i32, String),
    inner: Inner,
    kind: Kind,
    kinds: Vec<Kind>,
    map: BTreeMap<String, i64>,
    big: i128,
    huge: u128,
    ch: char,
    unit: (),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Inner {
    flag: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    skipped: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Kind {
    Unit,
    New(i64),
    Tup(i64, String),
    Struct { x: i64, y: Vec<u8> },
}

fn record() -> Record {
    Record {
        id: u64::MAX,
        name: "héllo 😀".into(),
        tags: vec!["a".into(), "b".into()],
        data: vec![0, 1, 255],
        fixed: [1, 2, 3, 4],
        score: Some(1.5),
        missing: None,
        pair: (-3, "x".into()),
        inner: Inner {
            flag: true,
            skipped: None,
        },
        kind: Kind::Struct { x: 2, y: vec![9] },
        kinds: vec![Kind::Unit, Kind::New(1), Kind::Tup(2, "t".into())],
        map: BTreeMap::from([("k".into(), 1), ("l".into(), -2)]),
        big: i128::MIN,
        huge: u128::MAX,
        ch: 'é',
        unit: (),
    }
}

#[test]
fn serde_types_round_trip() {
    for p in 0..=5 {
        let r = record();
        let back: Record = from_slice(&to_vec(&r, p).unwrap()).unwrap();
        assert_eq!(back, r);
    }
    let v: Value = from_slice(&to_vec(&record(), 5).unwrap()).unwrap();
    let Value::Dict(entries) = &v else {
        panic!("{v}")
    };
    assert!(
        entries
            .iter()
            .any(|(k, v)| k == &s("fixed") && v == &b(&[1, 2, 3, 4]))
    );
    assert!(
        entries
            .iter()
            .any(|(k, v)| k == &s("pair") && v == &tuple(vec![i(-3), s("x")]))
    );
}

#[test]
fn wrong_types_are_reported() {
    let bytes = to_vec(&300i64, 5).unwrap();
    assert!(matches!(
        from_slice::<u8>(&bytes),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        from_slice::<String>(&bytes),
        Err(Error::WrongType { .. })
    ));
    assert_eq!(
        from_slice::<f64>(&bytes).unwrap().to_bits(),
        300.0f64.to_bits()
    );
    let bytes = to_vec(&(1, 2), 5).unwrap();
    assert!(matches!(
        from_slice::<(i32, i32, i32)>(&bytes),
        Err(Error::WrongType { .. })
    ));
    let bytes = to_vec(&vec![1u8, 2, 3], 5).unwrap();
    assert!(matches!(
        from_slice::<[u8; 4]>(&bytes),
        Err(Error::WrongType { .. })
    ));
    assert_eq!(from_slice::<[u8; 3]>(&bytes).unwrap(), [1, 2, 3]);
}

#[test]
fn value_keeps_python_types_through_from_slice() {
    let v = Value::Tuple(vec![
        Value::Set(vec![i(1)]),
        Value::FrozenSet(vec![s("a")]),
        two_pow_512(),
        Value::Tuple(vec![]),
        Value::List(vec![Value::Tuple(vec![i(1)])]),
    ]);
    for p in 3..=5 {
        let bytes = value_to_vec(&v, p).unwrap();
        assert_eq!(from_slice::<Value>(&bytes).unwrap(), v);
        assert_eq!(to_vec(&v, p).unwrap(), bytes);
        // Inside a serde type too.
        let (n, inner): (i32, Value) = from_slice(&to_vec(&(7, &v), p).unwrap()).unwrap();
        assert_eq!((n, inner), (7, v.clone()));
    }
}

// ------------------------------------------------------------------------------------------
// Rust → live CPython
// ------------------------------------------------------------------------------------------

const LOADS_SCRIPT: &str = "
import pickle, sys
for line in sys.stdin:
    line = line.strip()
    try:
        print(repr(pickle.loads(bytes.fromhex(line))))
    except Exception as e:
        print('ERROR', type(e).__name__, e)
";

/// Runs `pickle.loads` on each pickle in CPython; `None` if python cannot be run.
fn python_reprs(pickles: &[Vec<u8>]) -> Option<Vec<String>> {
    let python = std::env::var("DCACHE_PYTHON").unwrap_or_else(|_| "python3".into());
    let child = Command::new(&python)
        .args(["-c", LOADS_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot run {python} on CI: {e}"
            );
            eprintln!(
                "!!!!! SKIPPED: cannot run {python} ({e}); set DCACHE_PYTHON to test pickles against CPython"
            );
            return None;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let input: String = pickles.iter().map(|p| to_hex(p) + "\n").collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    Some(
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn cpython_reads_what_we_write() {
    let record_repr = "{'id': 18446744073709551615, 'name': 'héllo 😀', 'tags': ['a', 'b'], \
        'data': b'\\x00\\x01\\xff', 'fixed': b'\\x01\\x02\\x03\\x04', 'score': 1.5, \
        'missing': None, 'pair': (-3, 'x'), 'inner': {'flag': True}, \
        'kind': {'Struct': {'x': 2, 'y': b'\\t'}}, \
        'kinds': ['Unit', {'New': 1}, {'Tup': (2, 't')}], 'map': {'k': 1, 'l': -2}, \
        'big': -170141183460469231731687303715884105728, \
        'huge': 340282366920938463463374607431768211455, 'ch': 'é', 'unit': None}";
    let floats = vec![
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e300,
        5e-324,
        0.1,
        1e16,
        1e15,
        1e-5,
    ];
    let values = [
        Value::Float(f64::NAN),
        Value::List(floats.iter().copied().map(Value::Float).collect()),
        s("日本語 😀 \0 ' \" \\ \u{7f} \u{a0} \u{2028}"),
        b(b"'\"\\\x00\x7f\xff"),
        b(b"'"),
        two_pow_512(),
        Value::from(-i128::from(u64::MAX) * 3),
        Value::Set(vec![i(1), i(2)]),
        Value::Set(vec![]),
        Value::FrozenSet(vec![i(1), i(2)]),
        Value::FrozenSet(vec![]),
        Value::Tuple(vec![]),
        Value::Tuple(vec![i(1)]),
        Value::Tuple((1..=5).map(i).collect()),
        Value::Dict(vec![
            (tuple(vec![i(1), s("a")]), Value::None),
            (Value::Bool(false), b(b"")),
        ]),
        list((0..2500).map(i).collect()),
        dict(
            (0..1500)
                .map(|n| (Value::Str(n.to_string()), i(n)))
                .collect(),
        ),
        list((0..100_000).map(i).collect()),
        Value::Str("z".repeat(70_000)),
        Value::Bytes(vec![7; 70_000]),
        list(vec![b(&[1; 40_000]), b(&[2; 40_000]), s("end")]),
        nested(256),
    ];
    let mut cases: Vec<(Vec<u8>, String)> = Vec::new();
    for p in 3..=5 {
        cases.push((to_vec(&record(), p).unwrap(), record_repr.to_owned()));
        cases.push((to_vec(&u64::MAX, p).unwrap(), "18446744073709551615".into()));
        cases.push((
            to_vec(&i128::MIN, p).unwrap(),
            "-170141183460469231731687303715884105728".into(),
        ));
        cases.push((
            to_vec(&(vec![1u8, 2], [3u8; 2]), p).unwrap(),
            "(b'\\x01\\x02', b'\\x03\\x03')".into(),
        ));
        cases.push((to_vec(&Some(Some(())), p).unwrap(), "None".into()));
        for v in &values {
            // Our Display must be Python's repr.
            cases.push((value_to_vec(v, p).unwrap(), v.to_string()));
        }
    }
    let pickles: Vec<Vec<u8>> = cases.iter().map(|(p, _)| p.clone()).collect();
    let Some(reprs) = python_reprs(&pickles) else {
        return;
    };
    assert_eq!(reprs.len(), cases.len());
    for ((pickle, want), got) in cases.iter().zip(&reprs) {
        assert_eq!(
            got,
            want,
            "pickle {}",
            to_hex(&pickle[..pickle.len().min(40)])
        );
    }
}

// ------------------------------------------------------------------------------------------
// Hostile input
// ------------------------------------------------------------------------------------------

fn assert_fast_decode_error(bytes: &[u8], needle: &str) {
    let start = Instant::now();
    let result = value_from_slice(bytes);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(is_decode_error(&result, needle), "{result:?}");
}

#[test]
fn billion_laughs_fails_fast() {
    // Each level is a tuple of two references to the previous one, through the memo...
    let mut p = vec![0x80, 4, b']', 0x94];
    for k in 0..60u8 {
        p.extend([b'h', k, b'h', k, 0x86, 0x94]);
    }
    p.push(b'.');
    assert_fast_decode_error(&p, "far larger");
    // ... or through DUP.
    let mut p = vec![0x80, 2, b'K', 1];
    for _ in 0..60 {
        p.extend([b'2', 0x86]);
    }
    p.push(b'.');
    assert_fast_decode_error(&p, "far larger");
    // A long string referenced many times.
    let mut p = vec![0x80, 4, b'B', 0, 0, 1, 0];
    p.extend(vec![b'x'; 65536]);
    p.extend([0x94, b'(']);
    for _ in 0..100_000 {
        p.extend([b'h', 0]);
    }
    p.extend([b'l', b'.']);
    assert_fast_decode_error(&p, "far larger");
}

#[test]
fn shared_objects_python_writes_once_are_read_as_python_reads_them() {
    // `x = 'a' * 100_000; pickle.dumps([x] * 1000, 4)`: the string once, then 999 memo refs.
    let mut p = vec![0x80, 4, b']', 0x94, b'(', 0x8d];
    p.extend(100_000u64.to_le_bytes());
    p.extend(vec![b'a'; 100_000]);
    p.push(0x94);
    for _ in 0..999 {
        p.extend([b'h', 1]);
    }
    p.extend([b'e', b'.']);
    let Value::List(items) = value_from_slice(&p).unwrap() else {
        panic!("not a list");
    };
    assert_eq!(items.len(), 1000);
    assert!(
        items
            .iter()
            .all(|v| matches!(v, Value::Str(s) if s.len() == 100_000))
    );
    // `d = {str(i): i for i in range(100)}; pickle.dumps([d] * 2000, 4)`.
    let mut p = vec![0x80, 4, b']', 0x94, b'(', b'}', 0x94, b'('];
    for i in 0..100u8 {
        let key = i.to_string();
        p.push(0x8c);
        p.push(key.len() as u8);
        p.extend(key.as_bytes());
        p.extend([b'K', i]);
    }
    p.push(b'u');
    for _ in 0..1999 {
        p.extend([b'h', 1]);
    }
    p.extend([b'e', b'.']);
    let Value::List(items) = value_from_slice(&p).unwrap() else {
        panic!("not a list");
    };
    assert_eq!(items.len(), 2000);
    assert!(
        items
            .iter()
            .all(|v| matches!(v, Value::Dict(d) if d.len() == 100))
    );
}

#[test]
fn deep_nesting_fails_without_overflow() {
    let n = 100_000;
    let mut p = vec![0x80, 4];
    p.extend(std::iter::repeat_n(b']', n));
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    assert_fast_decode_error(&p, "deeper than 256");

    let mut p = vec![0x80, 4, b')'];
    p.extend(std::iter::repeat_n(0x85, n));
    p.push(b'.');
    assert_fast_decode_error(&p, "deeper than 256");

    let mut p = vec![0x80, 4];
    p.extend(std::iter::repeat_n(b'(', n));
    p.push(b'.');
    assert_fast_decode_error(&p, "underflow");
}

#[test]
fn malformed_pickles_give_clear_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "without a STOP"),
        (b"\x80\x05", "without a STOP"),
        (b"\x80\x06N.", "unsupported pickle protocol 6"),
        (b".", "underflow"),
        (b"(.", "underflow"),
        (b"a.", "underflow"),
        (b"N(a.", "underflow"),
        (b"e.", "MARK missing"),
        (b"K\x01K\x01a.", "APPEND applied to a int"),
        (b"}(K\x01u.", "odd number"),
        (b"h\x00.", "memo key 0 not found"),
        (b"g12\n.", "memo key 12 not found"),
        (b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", "declared length"),
        (
            b"\x95\xff\x00\x00\x00\x00\x00\x00\x00N.",
            "frame of 255 bytes",
        ),
        (b"X\x02\x00\x00\x00\xff\xfe.", "not valid UTF-8"),
        (b"\x8c\x03\xed\xa0\x80.", "lone surrogate"),
        (b"\x8b\xff\xff\xff\xff.", "negative byte count"),
        (b"Inot a number\n.", "invalid integer"),
        (b"I12", "no newline"),
        (b"Fabc\n.", "invalid FLOAT"),
        (b"Sabc\n.", "must be quoted"),
        (b"S'\\x4'\n.", "invalid \\x escape"),
        (b"\xff.", "invalid opcode 0xff"),
        (b"P1\n.", "persistent IDs"),
        (b"\x82\x01.", "extension codes"),
        (b"\x97.", "out-of-band buffers"),
        (b"N\x81.", "NEWOBJ builds a class instance"),
        (b"}}b.", "BUILD"),
        (b"NN\x93.", "STACK_GLOBAL requires two str"),
        (b"N)R.", "REDUCE calls a NoneType"),
        (b"cbuiltins\nset\nNR.", "not a tuple"),
        (
            b"cbuiltins\nset\nK\x01\x85R.",
            "cannot build a set from a int",
        ),
        (
            b"c_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80X\x06\x00\x00\x00latin1\x86R.",
            "above U+00FF",
        ),
        (
            b"c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",
            "unsupported encoding",
        ),
        (b"cbuiltins\nset\n.", ""),
        (b"L1", "no newline"),
    ];
    for (bytes, needle) in cases {
        let result = value_from_slice(bytes);
        if bytes == b"cbuiltins\nset\n." {
            assert!(
                matches!(&result, Err(Error::PickleGlobal { module, name }) if module == "builtins" && name == "set"),
                "{result:?}"
            );
            continue;
        }
        assert!(
            is_decode_error(&result, needle),
            "{}: {result:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Python refuses int strings above 4300 digits; so do we.
    let mut p = b"I".to_vec();
    p.extend(vec![b'7'; 4301]);
    p.extend(b"\n.");
    assert!(is_decode_error(&value_from_slice(&p), "4300"));
    p.drain(1..2);
    assert!(matches!(value_from_slice(&p), Ok(Value::BigInt(_))));
    // Any other global is refused before anything else happens.
    let r = value_from_slice(b"cos\nsystem\n(S'echo hi'\ntR.");
    assert!(
        matches!(&r, Err(Error::PickleGlobal { module, name }) if module == "os" && name == "system")
    );
}

// ------------------------------------------------------------------------------------------
// Property tests
// ------------------------------------------------------------------------------------------

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>().prop_map(Value::from),
        any::<u128>().prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|b| Value::from(BigInt::from_signed_bytes_le(&b))),
        any::<f64>().prop_map(Value::Float),
        any::<String>().prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(5, 128, 10, |inner| {
        let items = proptest::collection::vec(inner.clone(), 0..10);
        prop_oneof![
            items.clone().prop_map(Value::List),
            items.clone().prop_map(Value::Tuple),
            items.clone().prop_map(Value::Set),
            items.prop_map(Value::FrozenSet),
            proptest::collection::vec((inner.clone(), inner), 0..10).prop_map(Value::Dict),
        ]
    })
}

/// Opcodes, so random byte strings get past the first byte more often.
const OPCODES: &[u8] = b"(.012FIJKLMNPQRSTUVXabcdeghijlopqrstu}])GBC\
    \x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98";

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        vectors(PICKLES)
            .into_iter()
            .map(|(_, _, data)| hex(data))
            .filter(|p| p.len() < 2000)
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if let Some(b) = bytes.get_mut(i % len) {
                    *b ^= x;
                }
            }
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % len);
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

type Mixed = (
    i64,
    String,
    Vec<u8>,
    Option<f64>,
    BTreeMap<String, i64>,
    (u64, i128, u128, bool, char),
);

proptest! {
    // PROPTEST_CASES=100000 for a longer run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn values_round_trip(v in arb_value(), p in 3u8..=5) {
        let bytes = value_to_vec(&v, p).unwrap();
        let back = value_from_slice(&bytes).unwrap();
        prop_assert!(same(&back, &v), "{:?} != {:?}", back, v);
        // Deterministic, and re-encoding what was read gives the same bytes.
        prop_assert_eq!(value_to_vec(&back, p).unwrap(), bytes.clone());
        // Through serde as well.
        let via_serde: Value = from_slice(&bytes).unwrap();
        prop_assert!(same(&via_serde, &v));
    }

    #[test]
    fn serde_types_round_trip_prop(
        t in (
            any::<i64>(),
            any::<String>(),
            proptest::collection::vec(any::<u8>(), 0..100),
            proptest::option::of(any::<f64>().prop_filter("NaN", |f| !f.is_nan())),
            proptest::collection::btree_map(any::<String>(), any::<i64>(), 0..10),
            any::<(u64, i128, u128, bool, char)>(),
        ),
        p in 0u8..=5,
    ) {
        let bytes = to_vec(&t, p).unwrap();
        let back: Mixed = from_slice(&bytes).unwrap();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(
            prop_oneof![any::<u8>(), proptest::sample::select(OPCODES)], 0..300),
        proto in proptest::option::of(0u8..=6),
    ) {
        let mut bytes = proto.map(|p| vec![0x80, p]).unwrap_or_default();
        bytes.extend(body);
        let _ = value_from_slice(&bytes);
        let _ = from_slice::<Record>(&bytes);
    }

    #[test]
    fn mutated_pickles_never_panic(
        index in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(arb_mutation(), 1..6),
    ) {
        let original = index.get(corpus()).clone();
        let bytes = mutate(original, &mutations);
        if let Ok(v) = value_from_slice(&bytes) {
            // Whatever decodes can be written back and read again.
            let again = value_from_slice(&value_to_vec(&v, 5).unwrap()).unwrap();
            prop_assert!(same(&again, &v));
            let _ = v.to_string();
        }
    }
}
