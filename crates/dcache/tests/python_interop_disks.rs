//! The other disks against python-diskcache 5.6.3: `JsonDisk` directories are python
//! `JSONDisk` directories (keys byte-identical), `MsgpackDisk` directories stay readable by
//! python (its mode-5 values read as `None`), and text value files are read byte-exact.
//!
//! Each test runs `tests/interop/disks.py` once or twice.

mod common;

use std::collections::BTreeMap;

use common::path_str;
use common::tagged::{t, tag};
use dcache::CheckMode;
use dcache::disk::SqlValue;
use dcache::{Cache, JsonDisk, MsgpackDisk, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCRIPT: &str = "disks.py";

/// The dict key of the JSON cases, its fields in python's insertion order.
#[derive(Debug, Serialize)]
struct DictKey {
    k: i64,
    j: Vec<Option<i64>>,
}

fn big_list() -> Json {
    json!((0..500).map(|i| i * i % 1000).collect::<Vec<i64>>())
}

/// `json_cases()` of disks.py, as JSON.
fn json_cases() -> Json {
    json!([
        ["str", "héllo ✓"],
        [42, [1, 2.5, "x", null, true]],
        [1.5, {"a": 1, "b": [true, false]}],
        [[1, "x"], {"nested": {"deep": [1, 2, 3]}}],
        [{"k": 1, "j": [null]}, "dict key"],
        [null, 0],
        [true, -1.25],
        ["unicode-é-🦀", 9_223_372_036_854_775_807_i64],
        ["big", big_list()],
    ])
}

/// Writes the cases, each key as the Rust type that spells it.
fn write_cases(cache: &Cache<JsonDisk>) -> dcache::cache::Result<()> {
    let cases = json_cases();
    let value = |i: usize| &cases[i][1];
    cache.set("str", value(0))?;
    cache.set(42, value(1))?;
    cache.set(1.5, value(2))?;
    cache.set((1, "x"), value(3))?;
    cache.set(
        DictKey {
            k: 1,
            j: vec![None],
        },
        value(4),
    )?;
    cache.set(None::<i64>, value(5))?;
    cache.set(true, value(6))?;
    cache.set("unicode-é-🦀", value(7))?;
    cache.set("big", value(8))
}

/// The values of the cases, python's JSON.
fn case_values() -> Vec<Json> {
    json_cases()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[1].clone())
        .collect()
}

/// The same cases, read (not written) by their Rust keys.
fn read_cases(cache: &Cache<JsonDisk>) -> dcache::cache::Result<Vec<Option<Json>>> {
    Ok(vec![
        cache.get("str")?,
        cache.get(42)?,
        cache.get(1.5)?,
        cache.get((1, "x"))?,
        cache.get(DictKey {
            k: 1,
            j: vec![None],
        })?,
        cache.get(None::<i64>)?,
        cache.get(true)?,
        cache.get("unicode-é-🦀")?,
        cache.get("big")?,
    ])
}

#[test]
fn json_disk_directories_are_python_jsondisk_directories() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cache = Cache::builder()
        .disk(JsonDisk::new().with_compress_level(6)?)
        .disk_min_file_size(64)
        .open(rust_dir.path())?;
    write_cases(&cache)?;
    let values = case_values();
    let read: Vec<Json> = read_cases(&cache)?.into_iter().flatten().collect();
    assert_eq!(read, values);

    let out = py.call(
        SCRIPT,
        "json_disk",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    // Python's JSONDisk, configured from the settings dcache stored, reads every key and value
    // and makes the very same key bytes, so it finds each row by its own key.
    assert_eq!(
        out["settings"],
        json!({ "compress_level": 6, "min_file_size": 64 })
    );
    assert_eq!(out["found"], json_cases());
    assert_eq!(out["same_key_bytes"], true);
    assert_eq!(out["lookups"], Json::Array(values.clone()));
    assert_eq!(out["rust_modes"], json!([1, 1, 1, 1, 1, 1, 1, 1, 2]));
    assert_eq!(out["check"], json!([]));

    // dcache opens python's JSONDisk directory (compress level 9 from its settings, not the
    // default 1) and finds python's rows by its own keys.
    let cache = Cache::builder().disk(JsonDisk::new()).open(py_dir.path())?;
    assert_eq!(
        cache.settings().get("disk_compress_level"),
        Some(&SqlValue::Integer(9))
    );
    assert_eq!(out["py_modes"], json!([1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1]));
    let read: Vec<Json> = read_cases(&cache)?
        .into_iter()
        .map(|v| v.expect("dcache finds python's row"))
        .collect();
    assert_eq!(read, values);
    let keys: Vec<Json> = cache.keys::<Json>()?.collect::<Result<_, _>>()?;
    let mut expected_keys: Vec<Json> = json_cases()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].clone())
        .collect();
    expected_keys.extend([json!("nan"), json!("inf")]);
    assert_eq!(keys, expected_keys);
    // Python writes NaN and Infinity (not standard JSON); dcache reads them as python does.
    assert!(cache.get::<f64>("nan")?.is_some_and(f64::is_nan));
    assert_eq!(cache.get::<f64>("inf")?, Some(f64::INFINITY));
    // JSON has no bytes: a Rust byte string becomes a list of numbers. Infinity is written as
    // python writes it.
    cache.set("from-rust", json!({"x": [1, 2]}))?;
    cache.set("rust-bytes", &b"ab"[..])?;
    cache.set("rust-inf", f64::INFINITY)?;
    cache.set("rust-nan", f64::NAN)?;
    let out = py.call(
        SCRIPT,
        "json_disk_after",
        &json!({ "dir": path_str(py_dir.path()) }),
    );
    assert_eq!(
        out,
        json!({
            "rust_value": {"x": [1, 2]},
            "bytes_value": [97, 98],
            "inf_is_inf": true,
            "nan_is_nan": true,
            "check": [],
        })
    );
    Ok(())
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    text: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct FromPython {
    a: i64,
    b: (bool, Option<i64>),
}

#[test]
fn msgpack_disk_directories_stay_readable_by_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk(MsgpackDisk::new()).open(dir.path())?;
    let doc = Doc {
        text: "z".repeat(40_000),
    };
    cache.set("struct", Point { x: 1, y: 2 })?;
    cache.set("big", &doc)?;
    cache.set("text", "hello")?;
    cache.set(7, 1.5)?;
    cache.set((1, "x"), vec![1, 2])?;

    let out = py.call(SCRIPT, "msgpack", &json!({ "dir": path_str(dir.path()) }));
    // Python lists every key (keys are encoded as the default Disk does) and reads natives;
    // its fetch has no mode 5, so MessagePack values read as None.
    let none = t(Value::None);
    assert_eq!(
        out["items"],
        json!([
            [t("struct"), none],
            [t("big"), none],
            [t("text"), t("hello")],
            [t(7), t(1.5)],
            [
                tag(&Value::Tuple(vec![Value::from(1), Value::from("x")])),
                none
            ],
        ])
    );
    let modes: Vec<&Json> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["mode"])
        .collect();
    assert_eq!(modes, [5, 5, 1, 1, 5, 4]);
    assert_eq!(
        out["rows"][1]["file"], true,
        "a large MessagePack value is a file"
    );
    assert_eq!(out["check"], json!([]));

    // MsgpackDisk reads its own entries and python's pickles; the default Disk reads both too.
    assert_eq!(cache.get::<Point>("struct")?, Some(Point { x: 1, y: 2 }));
    assert_eq!(cache.get::<Doc>("big")?.as_ref(), Some(&doc));
    assert_eq!(cache.get::<Vec<i64>>((1, "x"))?, Some(vec![1, 2]));
    let from_python = FromPython {
        a: 1,
        b: (true, None),
    };
    assert_eq!(cache.get::<FromPython>("from-python")?, Some(from_python));
    let disk = Cache::open(dir.path())?;
    assert_eq!(disk.get::<Point>("struct")?, Some(Point { x: 1, y: 2 }));
    assert_eq!(
        disk.get::<BTreeMap<String, Value>>("from-python")?
            .map(|m| m.len()),
        Some(2)
    );
    assert_eq!(disk.check(CheckMode::Report)?, []);
    Ok(())
}

#[test]
fn text_value_files_are_read_byte_exact_where_python_translates_newlines() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let text = "line one\r\nline two\n".repeat(2_000) + "lone\rcarriage return";
    assert!(text.chars().count() >= 32_768, "a text value file");
    let cache = Cache::open(rust_dir.path())?;
    cache.set("crlf", &text)?;
    assert_eq!(cache.get::<String>("crlf")?.as_ref(), Some(&text));

    let out = py.call(
        SCRIPT,
        "text_files",
        &json!({
            "rust_dir": path_str(rust_dir.path()),
            "py_dir": path_str(py_dir.path()),
            "text": text,
        }),
    );
    // The file dcache wrote holds the exact UTF-8; python's text mode reads `\r\n` and `\r`
    // as `\n`, even for its own value files.
    assert_eq!(
        out,
        json!({
            "rust_file_exact": true,
            "read_translated": true,
            "read_exact": false,
            "own_translated": true,
            "py_mode": 3,
        })
    );
    // dcache reads python's text file as the exact string python stored.
    let cache = Cache::open(py_dir.path())?;
    assert_eq!(cache.get::<String>("crlf")?.as_ref(), Some(&text));
    Ok(())
}

#[test]
fn json_disk_non_finite_floats_cross_both_ways() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    let rust = Cache::builder().disk(JsonDisk::new()).open(dir.path())?;
    rust.set(
        "rust",
        vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0],
    )?;
    let out = py.run(
        r"
import sys, math, diskcache
c = diskcache.Cache(sys.argv[1], disk=diskcache.JSONDisk)
v = c['rust']
assert math.isnan(v[0]) and v[1] == math.inf and v[2] == -math.inf and math.copysign(1, v[3]) == -1, v
c['python'] = {'x': [float('nan'), float('inf'), -float('inf')]}
sys.stdout.write('ok')
",
        &[path],
        "",
    );
    assert_eq!(out, "ok");
    let back: std::collections::BTreeMap<String, Vec<f64>> =
        rust.get("python")?.expect("python wrote it");
    let x = &back["x"];
    assert!(x[0].is_nan() && x[1] == f64::INFINITY && x[2] == f64::NEG_INFINITY);
    let ours: Vec<f64> = rust.get("rust")?.expect("written above");
    assert!(ours[0].is_nan() && ours[3].is_sign_negative());
    Ok(())
}
