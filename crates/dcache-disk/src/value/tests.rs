//! Tests of [`Value`] and [`BigInt`]: conversions, `repr`, serde both ways.

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
    assert!(wrong(from_value::<[u8; 3]>(Value::Bytes(vec![1, 2])).map(drop)).contains("length 2"));
    assert!(
        wrong(from_value::<(i32,)>(Value::Tuple(vec![i(1), i(2)])).map(drop)).contains("length 2")
    );
    let mut bytes = vec![0; 20];
    bytes.push(1);
    let huge = Value::BigInt(BigInt::from_signed_bytes_le(&bytes));
    assert!(wrong(from_value::<u128>(huge.clone()).map(drop)).contains("too large for 128 bits"));
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
