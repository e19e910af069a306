//! Structured (pickled) values and keys between dcache's default `Disk` and python-diskcache
//! 5.6.3: Rust structs, maps, tuples and options read in python as dicts, tuples and None;
//! python's builtin types read into serde types; class instances are refused, never run.
//!
//! Each test runs `tests/interop/values.py` once.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::path_str;
use common::tagged::{t, tag};
use dcache::CheckMode;
use dcache::cache::Error;
use dcache::disk::{BigInt, Error as DiskError};
use dcache::{Cache, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCRIPT: &str = "values.py";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    langs: Vec<String>,
    admin: bool,
    age: Option<u32>,
    scores: BTreeMap<String, f64>,
    avatar: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Color {
    Red,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Document {
    text: String,
    n: i64,
}

fn ada() -> User {
    User {
        name: "Ada".into(),
        langs: vec!["analytical engine".into(), "notes".into()],
        admin: true,
        age: None,
        scores: BTreeMap::from([("math".into(), 9.5)]),
        avatar: b"\x89PNG".to_vec(),
    }
}

fn dict(pairs: Vec<(Value, Value)>) -> Value {
    Value::Dict(pairs)
}

fn s(v: &str) -> Value {
    Value::from(v)
}

/// python's view of [`ada`].
fn ada_dict() -> Value {
    dict(vec![
        (s("name"), s("Ada")),
        (
            s("langs"),
            Value::List(vec![s("analytical engine"), s("notes")]),
        ),
        (s("admin"), Value::Bool(true)),
        (s("age"), Value::None),
        (s("scores"), dict(vec![(s("math"), Value::from(9.5))])),
        (s("avatar"), Value::from(&b"\x89PNG"[..])),
    ])
}

#[test]
fn structured_values_cross_as_python_builtins_and_serde_types() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cache = Cache::open(rust_dir.path())?;
    let big = "z".repeat(40_000);
    cache.set("struct", ada())?;
    cache.set("map", BTreeMap::from([("a", 1), ("b", 2)]))?;
    cache.set("tuple", (1, "x", None::<String>, 2.5))?;
    cache.set("none", None::<i64>)?;
    cache.set("some", Some(5))?;
    cache.set("unit", ())?;
    cache.set("bool", true)?;
    cache.set("vec", vec![1, 2, 3])?;
    cache.set("nested", vec![(1, vec!["a"]), (2, vec![])])?;
    cache.set("u64_max", u64::MAX)?;
    cache.set("i128_min", i128::MIN)?;
    cache.set("nan", f64::NAN)?;
    cache.set("empty_vec", Vec::<i64>::new())?;
    cache.set("empty_in_tuple", (Vec::<i64>::new(),))?;
    cache.set("set", BTreeSet::from([3, 1, 2]))?;
    cache.set("char", 'é')?;
    cache.set("unit_variant", Color::Red)?;
    cache.set("newtype_variant", Shape::Circle(1.5))?;
    cache.set(
        "file",
        Document {
            text: big.clone(),
            n: 1,
        },
    )?;

    let out = py.call(
        SCRIPT,
        "structured_values",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    let found = &out["found"];
    let expect = |key: &str, value: Value| assert_eq!(found[key], tag(&value), "{key}");
    expect("struct", ada_dict());
    expect(
        "map",
        dict(vec![(s("a"), Value::from(1)), (s("b"), Value::from(2))]),
    );
    expect(
        "tuple",
        Value::Tuple(vec![Value::from(1), s("x"), Value::None, Value::from(2.5)]),
    );
    expect("none", Value::None);
    expect("some", Value::from(5));
    expect("unit", Value::None);
    expect("bool", Value::Bool(true));
    expect(
        "vec",
        Value::List(vec![Value::from(1), Value::from(2), Value::from(3)]),
    );
    expect(
        "nested",
        Value::List(vec![
            Value::Tuple(vec![Value::from(1), Value::List(vec![s("a")])]),
            Value::Tuple(vec![Value::from(2), Value::List(vec![])]),
        ]),
    );
    expect(
        "u64_max",
        Value::BigInt(BigInt::from_u128(u128::from(u64::MAX))),
    );
    expect("i128_min", Value::BigInt(BigInt::from_i128(i128::MIN)));
    // A NaN value is pickled (python would bind it as NULL and read back None).
    expect("nan", Value::Float(f64::NAN));
    assert_eq!(out["nan_is_nan"], true);
    // An empty sequence value is a list, as inside a structure (an empty `Vec<u8>` is `b''`).
    expect("empty_vec", Value::List(vec![]));
    expect("empty_in_tuple", Value::Tuple(vec![Value::List(vec![])]));
    // A Rust set is a serde sequence: a python list.
    expect(
        "set",
        Value::List(vec![Value::from(1), Value::from(2), Value::from(3)]),
    );
    expect("char", s("é"));
    expect("unit_variant", s("Red"));
    expect(
        "newtype_variant",
        dict(vec![(s("Circle"), Value::from(1.5))]),
    );
    expect(
        "file",
        dict(vec![(s("text"), s(&big)), (s("n"), Value::from(1))]),
    );
    assert_eq!(found.as_object().unwrap().len(), 19);

    // Python's builtins read into serde types.
    let cache = Cache::open(py_dir.path())?;
    assert_eq!(cache.get::<User>("struct")?, Some(ada()));
    assert_eq!(
        cache.get::<HashMap<String, i64>>("map")?,
        Some(HashMap::from([("a".into(), 1), ("b".into(), 2)]))
    );
    assert_eq!(
        cache.get::<(i64, String, Option<String>, f64)>("tuple")?,
        Some((1, "x".into(), None, 2.5))
    );
    assert_eq!(cache.get::<Vec<i64>>("list")?, Some(vec![1, 2, 3]));
    assert_eq!(cache.get::<[i64; 3]>("list")?, Some([1, 2, 3]));
    assert_eq!(cache.get::<Option<i64>>("none")?, Some(None));
    assert_eq!(cache.get::<()>("none")?, Some(()));
    assert_eq!(cache.get::<bool>("true")?, Some(true));
    assert_eq!(cache.get::<i64>("i64_max")?, Some(i64::MAX));
    assert_eq!(cache.get::<u64>("u64_max")?, Some(u64::MAX));
    assert_eq!(cache.get::<i128>("neg_big")?, Some(-(1i128 << 100)));
    assert_eq!(
        cache.get::<BTreeSet<i64>>("set")?,
        Some(BTreeSet::from([1, 2, 3]))
    );
    assert_eq!(
        cache.get::<HashSet<String>>("frozenset")?,
        Some(HashSet::from(["a".into(), "b".into()]))
    );
    assert_eq!(
        cache.get::<Vec<(i64, Vec<String>)>>("nested")?,
        Some(vec![(1, vec!["a".into()]), (2, vec![])])
    );
    assert_eq!(
        cache.get::<BTreeMap<i64, String>>("int_keys")?,
        Some(BTreeMap::from([(1, "a".into()), (2, "b".into())]))
    );
    assert_eq!(cache.get::<Vec<u8>>("bytearray")?, Some(b"xy".to_vec()));
    assert_eq!(cache.get::<Color>("unit_variant")?, Some(Color::Red));
    assert_eq!(
        cache.get::<Shape>("newtype_variant")?,
        Some(Shape::Circle(1.5))
    );
    assert_eq!(out["py_modes"]["file"], 4, "a pickle in a value file");
    assert_eq!(
        cache.get::<Document>("file")?,
        Some(Document { text: big, n: 1 })
    );
    // An int too large for the Rust type is a clear type error; `Value` holds any int.
    let err = cache
        .get::<i128>("too_big")
        .expect_err("2**200 is not an i128");
    assert!(
        matches!(err, Error::Disk(DiskError::WrongType { .. })),
        "{err}"
    );
    let Some(Value::BigInt(big)) = cache.get::<Value>("too_big")? else {
        panic!("2**200 reads as a big integer");
    };
    assert_eq!(big.as_signed_bytes_le().len(), 26);
    assert_eq!(cache.check(CheckMode::Report)?, []);
    Ok(())
}

#[test]
fn pickled_class_instances_are_an_error_never_code_execution() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("executed");
    py.call(
        SCRIPT,
        "class_instances",
        &json!({ "dir": path_str(dir.path()), "marker": path_str(&marker) }),
    );
    let cache = Cache::open(dir.path())?;
    let err = cache
        .get::<Value>("point")
        .expect_err("a class instance is refused");
    match &err {
        Error::Disk(DiskError::PickleGlobal { module, name }) => {
            assert_eq!((module.as_str(), name.as_str()), ("__main__", "Point"));
        }
        other => panic!("expected PickleGlobal, got {other:?}"),
    }
    assert!(
        err.to_string().contains("never executes pickled code"),
        "{err}"
    );
    // A pickle that would run a command names `posix.system`; dcache refuses it and runs
    // nothing, whatever type it is asked for.
    for result in [
        cache.get::<Value>("evil").map(drop),
        cache.get::<String>("evil").map(drop),
        cache.pop::<Value>("evil").map(drop),
    ] {
        let err = result.expect_err("a pickled function call is refused");
        assert!(
            matches!(&err, Error::Disk(DiskError::PickleGlobal { name, .. }) if name == "system"),
            "{err}"
        );
    }
    assert!(!marker.exists(), "the pickled command must never run");
    // The refusal is per entry: the rest of the cache reads and checks normally.
    assert_eq!(
        cache.get::<BTreeMap<String, String>>("plain")?,
        Some(BTreeMap::from([("still".into(), "readable".into())]))
    );
    assert_eq!(cache.get::<i64>(("evil-key",))?, Some(1));
    assert_eq!(cache.len()?, 4);
    assert_eq!(cache.check(CheckMode::Report)?, []);
    Ok(())
}

#[derive(Debug, Serialize)]
struct Pt {
    x: i64,
    y: i64,
}

#[test]
fn structured_keys_are_iterated_both_ways_and_simple_tuples_are_shared() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cache = Cache::open(rust_dir.path())?;
    cache.set((1, "x"), "t1")?;
    cache.set(("user", 42), "t2")?;
    cache.set((None::<i64>, true), "t3")?;
    cache.set(u64::MAX, "t4")?;
    cache.set(true, "t5")?;
    cache.set(((1, 2), "a"), "t6")?;
    cache.set(Pt { x: 1, y: 2 }, "struct")?;
    cache.set(vec![1, 2], "list")?;
    cache.set(("a", "a"), "t9")?;

    let tuple = |items: Vec<Value>| Value::Tuple(items);
    // The hashable keys both sides write, as python values.
    let shared = [
        tuple(vec![Value::from(1), s("x")]),
        tuple(vec![s("user"), Value::from(42)]),
        tuple(vec![Value::None, Value::Bool(true)]),
        Value::BigInt(BigInt::from_u128(u128::from(u64::MAX))),
        Value::Bool(true),
        tuple(vec![tuple(vec![Value::from(1), Value::from(2)]), s("a")]),
        // A struct is a dict: python never hashes a Cache key, it pickles it, so it can look
        // up a dict key too.
        dict(vec![(s("x"), Value::from(1)), (s("y"), Value::from(2))]),
    ];
    let out = py.call(
        SCRIPT,
        "structured_keys",
        &json!({
            "rust_dir": path_str(rust_dir.path()),
            "py_dir": path_str(py_dir.path()),
            "lookups": shared.iter().map(tag).collect::<Vec<_>>(),
        }),
    );
    // Python lists every key dcache wrote, structs and lists included.
    let mut expected_keys: Vec<Json> = shared.iter().map(tag).collect();
    expected_keys.push(tag(&Value::List(vec![Value::from(1), Value::from(2)])));
    expected_keys.push(tag(&tuple(vec![s("a"), s("a")])));
    assert_eq!(out["keys"], Json::Array(expected_keys));
    // dcache's pickles of these keys are python's bytes, so python finds each row by its own
    // equal key.
    let values: Vec<Json> = ["t1", "t2", "t3", "t4", "t5", "t6", "struct"]
        .map(t)
        .to_vec();
    assert_eq!(out["lookups"], Json::Array(values));
    for (i, py_bytes) in out["py_bytes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            out["rust_rows"][i]["key"]["bytes"], *py_bytes,
            "key {i}: dcache's pickle differs from python's"
        );
    }

    // dcache lists every key python wrote, and finds the simple ones by its own equal keys.
    let cache = Cache::open(py_dir.path())?;
    let keys: Vec<Json> = cache
        .keys::<Value>()?
        .map(|k| k.map(|k| tag(&k)))
        .collect::<Result<_, _>>()?;
    let mut expected_keys: Vec<Json> = shared[..6].iter().map(tag).collect();
    expected_keys.push(tag(&Value::FrozenSet(vec![Value::from(1)])));
    expected_keys.push(tag(&Value::BigInt(BigInt::from_i128(1 << 100))));
    expected_keys.push(tag(&tuple(vec![s("a"), s("a")])));
    assert_eq!(keys, expected_keys);
    assert_eq!(cache.get::<String>((1, "x"))?.as_deref(), Some("t1"));
    assert_eq!(cache.get::<String>(("user", 42))?.as_deref(), Some("t2"));
    assert_eq!(
        cache.get::<String>((None::<i64>, true))?.as_deref(),
        Some("t3")
    );
    assert_eq!(cache.get::<String>(u64::MAX)?.as_deref(), Some("t4"));
    assert_eq!(cache.get::<String>(true)?.as_deref(), Some("t5"));
    assert_eq!(cache.get::<String>(((1, 2), "a"))?.as_deref(), Some("t6"));
    assert_eq!(cache.get::<String>(1u128 << 100)?.as_deref(), Some("t8"));
    // Python pickled its `('a', 'a')` with a memo reference to the one `'a'` object: the bytes
    // differ from dcache's, so the same-looking key is another row.
    assert_eq!(cache.get::<String>(("a", "a"))?, None);
    assert_eq!(cache.check(CheckMode::Report)?, []);
    Ok(())
}

#[test]
fn memoized_results_use_different_keys_on_each_side() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    let square = cache.memoize("square");
    let v: i64 = square.call(&(12,), || -> dcache::cache::Result<i64> { Ok(144) })?;
    assert_eq!(v, 144);

    let out = py.call(SCRIPT, "memoize", &json!({ "dir": path_str(dir.path()) }));
    // dcache's key is `(name, args)`; python's is flat, `(name, *args, None)`: python does
    // not find dcache's result and computes its own.
    let ours = Value::Tuple(vec![s("square"), Value::Tuple(vec![Value::from(12)])]);
    let theirs = Value::Tuple(vec![s("square"), Value::from(12), Value::None]);
    assert_eq!(out["calls"], json!([12]));
    assert_eq!(out["result"], 144);
    assert_eq!(out["python_key"], tag(&theirs));
    assert_eq!(out["keys"], json!([tag(&ours), tag(&theirs)]));
    // Either side can read the other's result by spelling its key.
    assert_eq!(cache.get::<i64>(("square", 12, None::<i64>))?, Some(144));
    assert_eq!(cache.get::<i64>(square.key(&(12,)))?, Some(144));
    Ok(())
}

/// A value of every byte type, small (inline) and large (a value file), is python `bytes`;
/// an empty `Vec<String>` is `[]` and an empty `Vec<u8>` is `b''`.
#[test]
fn every_byte_type_is_python_bytes() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cache = Cache::open(rust_dir.path())?;
    let mut expected = BTreeMap::new();
    for (size, len) in [("small", 100), ("large", 100_000)] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 13 % 256) as u8).collect();
        let key = |what: &str| format!("{size}-{what}");
        cache.set(key("slice"), bytes.as_slice())?;
        cache.set(key("vec"), bytes.clone())?;
        cache.set(key("vec_ref"), &bytes)?;
        cache.set(key("box"), bytes.clone().into_boxed_slice())?;
        cache.set(key("bytes_crate"), bytes::Bytes::from(bytes.clone()))?;
        cache.set(key("serde_bytes"), serde_bytes::Bytes::new(&bytes))?;
        cache.set(key("byte_buf"), serde_bytes::ByteBuf::from(bytes.clone()))?;
        for what in [
            "slice",
            "vec",
            "vec_ref",
            "box",
            "bytes_crate",
            "serde_bytes",
            "byte_buf",
        ] {
            expected.insert(key(what), Value::Bytes(bytes.clone()));
            // Read back whole as each byte type.
            assert_eq!(cache.get::<Vec<u8>>(key(what))?.as_ref(), Some(&bytes));
            assert_eq!(
                cache.get::<Box<[u8]>>(key(what))?.as_deref(),
                Some(bytes.as_slice())
            );
            assert_eq!(
                cache.get::<bytes::Bytes>(key(what))?.as_deref(),
                Some(bytes.as_slice())
            );
            assert_eq!(
                cache.get::<serde_bytes::ByteBuf>(key(what))?.as_deref(),
                Some(&bytes)
            );
        }
    }
    cache.set("empty_strings", Vec::<String>::new())?;
    cache.set("empty_bytes", Vec::<u8>::new())?;
    expected.insert("empty_strings".into(), Value::List(vec![]));
    expected.insert("empty_bytes".into(), Value::Bytes(vec![]));
    // The script compares this one with itself.
    cache.set("nan", f64::NAN)?;
    expected.insert("nan".into(), Value::Float(f64::NAN));
    assert_eq!(cache.get::<Vec<String>>("empty_strings")?, Some(vec![]));
    assert_eq!(cache.get::<Vec<u8>>("empty_bytes")?, Some(vec![]));

    let out = py.call(
        SCRIPT,
        "structured_values",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    let found = &out["found"];
    for (key, value) in &expected {
        assert_eq!(found[key.as_str()], tag(value), "{key}");
    }
    assert_eq!(found.as_object().unwrap().len(), expected.len());
    Ok(())
}
