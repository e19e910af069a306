//! dcache and python-diskcache 5.6.3 share cache directories, both ways: what one side writes
//! (entries, expiry, tags, settings, queues) the other reads, and what one side culls, evicts
//! or damages the other checks and repairs.
//!
//! Each test runs `tests/interop/cache.py` once or twice: python reads the directory dcache
//! wrote and writes the same content into a directory of its own, which dcache then reads.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::path_str;
use common::tagged::{t, tag};
use dcache::{
    Cache, EvictionPolicy, ManualClock, PushOptions, QueueKey, SetOptions, Side, Tag, Value,
    Warning,
};
use dcache::{CheckMode, Order};
use serde::{Serialize, Serializer};
use serde_json::{Value as Json, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCRIPT: &str = "cache.py";
const HOUR: Duration = Duration::from_secs(3600);

/// A handle on `dir` whose clock is `ago` in the past, to write entries that are already
/// expired in real time.
fn past_handle(dir: &Path, ago: Duration) -> dcache::cache::Result<Cache> {
    Cache::builder()
        .clock(Arc::new(ManualClock::new(SystemTime::now() - ago)))
        .open(dir)
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn tag_value(tag: &Tag) -> Value {
    match tag {
        Tag::Text(s) => Value::Str(s.clone()),
        Tag::Blob(b) => Value::Bytes(b.clone()),
        Tag::Integer(i) => Value::Int(*i),
        Tag::Real(f) => Value::Float(*f),
    }
}

// ----- str, bytes, int and float keys and values -----

/// A native key or value, serialized as the plain Rust type it stands for (`&str`, `&[u8]`,
/// `i64`, `f64`).
#[derive(Debug, Clone)]
enum Native {
    Str(String),
    Bytes(Vec<u8>),
    Int(i64),
    Float(f64),
}

impl Serialize for Native {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Native::Str(v) => v.as_str().serialize(s),
            Native::Bytes(v) => v.as_slice().serialize(s),
            Native::Int(v) => v.serialize(s),
            Native::Float(v) => v.serialize(s),
        }
    }
}

impl Native {
    fn value(&self) -> Value {
        match self {
            Native::Str(v) => Value::Str(v.clone()),
            Native::Bytes(v) => Value::Bytes(v.clone()),
            Native::Int(v) => Value::Int(*v),
            Native::Float(v) => Value::Float(*v),
        }
    }
}

fn s(v: &str) -> Native {
    Native::Str(v.to_owned())
}

fn b(v: &[u8]) -> Native {
    Native::Bytes(v.to_vec())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 256) as u8).collect()
}

/// Keys and values of every native type, with the edge values, inline and in value files
/// (python's rule: 32768 characters or bytes and up go to a file).
fn primitive_cases() -> Vec<(Native, Native)> {
    vec![
        (s(""), s("")),
        (s("héllo wörld ✓ 🦀"), s("unicode ✓ 🦀 value")),
        (s("nul\0key"), s("nul\0value\0")),
        (s("crlf-inline"), s("line 1\r\nline 2\rline 3\n")),
        (b(b""), b(b"")),
        (b(b"\x00\xffbytes\x00"), b(b"\x00\x01\x02\xff")),
        (Native::Int(i64::MIN), Native::Int(i64::MAX)),
        (Native::Int(i64::MAX), Native::Int(i64::MIN)),
        (Native::Int(-1), Native::Int(0)),
        (Native::Float(0.5), Native::Float(-0.0)),
        (Native::Float(-0.0), Native::Float(f64::INFINITY)),
        (
            Native::Float(f64::INFINITY),
            Native::Float(f64::NEG_INFINITY),
        ),
        (Native::Float(f64::NEG_INFINITY), Native::Float(0.1)),
        (Native::Float(1e300), Native::Float(5e-324)),
        (s("text-inline"), Native::Str("x".repeat(32_767))),
        (s("text-file"), Native::Str("x".repeat(32_768))),
        // 65 534 bytes but 32 767 characters: inline (python counts characters).
        (s("wide-inline"), Native::Str("é".repeat(32_767))),
        (s("wide-file"), Native::Str("é".repeat(32_768))),
        (s("bytes-inline"), Native::Bytes(pattern(32_767))),
        (s("bytes-file"), Native::Bytes(pattern(32_768))),
        (Native::Str("k".repeat(40_000)), Native::Int(1)),
    ]
}

/// Reads `key` as the Rust type of `expected` and as a [`Value`] (which keeps python's type).
fn assert_reads(cache: &Cache, key: &Native, expected: &Native) -> TestResult {
    match expected {
        Native::Str(v) => assert_eq!(cache.get::<String>(key)?.as_ref(), Some(v), "{key:?}"),
        Native::Bytes(v) => {
            assert_eq!(cache.get::<Vec<u8>>(key)?.as_ref(), Some(v), "{key:?}");
            assert_eq!(cache.get_bytes(key)?.as_ref(), Some(v), "{key:?}");
            let boxed = cache.get::<Box<[u8]>>(key)?;
            assert_eq!(boxed.as_deref(), Some(v.as_slice()), "{key:?}");
            let shared = cache.get::<bytes::Bytes>(key)?;
            assert_eq!(shared.as_deref(), Some(v.as_slice()), "{key:?}");
            let buf = cache.get::<serde_bytes::ByteBuf>(key)?;
            assert_eq!(buf.as_deref(), Some(v), "{key:?}");
        }
        Native::Int(v) => assert_eq!(cache.get::<i64>(key)?, Some(*v), "{key:?}"),
        Native::Float(v) => assert_eq!(
            cache.get::<f64>(key)?.map(f64::to_bits),
            Some(v.to_bits()),
            "{key:?}"
        ),
    }
    assert_eq!(
        cache.get::<Value>(key)?.as_ref().map(tag),
        Some(tag(&expected.value())),
        "{key:?}"
    );
    Ok(())
}

#[test]
fn native_keys_and_values_round_trip_with_their_types() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cases = primitive_cases();

    let cache = Cache::open(rust_dir.path())?;
    for (k, v) in &cases {
        cache.set(k, v)?;
    }
    let out = py.call(
        SCRIPT,
        "primitives",
        &json!({
            "rust_dir": path_str(rust_dir.path()),
            "py_dir": path_str(py_dir.path()),
            "cases": cases.iter().map(|(k, v)| json!([tag(&k.value()), tag(&v.value())])).collect::<Vec<_>>(),
        }),
    );

    // Python reads every entry dcache wrote with its exact type and value, in insertion order,
    // and finds each by its own equal key.
    let expected: Vec<Json> = cases
        .iter()
        .map(|(k, v)| json!([tag(&k.value()), tag(&v.value())]))
        .collect();
    assert_eq!(out["items"], Json::Array(expected));
    let values: Vec<Json> = cases.iter().map(|(_, v)| tag(&v.value())).collect();
    assert_eq!(out["lookups"], Json::Array(values));
    assert_eq!(out["len"], cases.len());
    // Both sides laid the rows out identically: key storage class, raw, mode, size, inline
    // value or file.
    assert_eq!(out["rust_rows"], out["py_rows"]);
    let files = out["py_rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["file"] == true)
        .count();
    assert_eq!(files, 3, "text-file, wide-file and bytes-file: {out}");

    // dcache reads python's entries as the Rust types, and iterates python's keys in order.
    let cache = Cache::open(py_dir.path())?;
    for (k, v) in &cases {
        assert_reads(&cache, k, v)?;
    }
    let keys: Vec<Json> = cache
        .keys::<Value>()?
        .map(|k| k.map(|k| tag(&k)))
        .collect::<Result<_, _>>()?;
    let expected_keys: Vec<Json> = cases.iter().map(|(k, _)| tag(&k.value())).collect();
    assert_eq!(keys, expected_keys);
    assert_eq!(cache.len()?, cases.len() as u64);
    // Keys compare as SQLite compares them: the float -1.0 finds python's int key -1, the
    // int 0 its float key -0.0; the str "" and the bytes b"" are two keys.
    assert_eq!(cache.get::<i64>(-1.0)?, Some(0));
    assert_eq!(cache.get::<f64>(0)?, Some(f64::INFINITY));
    assert_eq!(cache.get::<String>("")?.as_deref(), Some(""));
    assert_eq!(cache.get::<Vec<u8>>(&b""[..])?, Some(vec![]));
    assert_eq!(cache.check(CheckMode::Report)?, []);
    Ok(())
}

#[test]
fn streamed_values_are_binary_files_both_ways() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    // Small, yet a file: a stream always is (python's `set(read=True)`).
    let payload = pattern(1_000);
    let cache = Cache::open(rust_dir.path())?;
    cache.set_reader("stream", &mut &payload[..], SetOptions::new())?;
    let out = py.call(
        SCRIPT,
        "streams",
        &json!({
            "rust_dir": path_str(rust_dir.path()),
            "py_dir": path_str(py_dir.path()),
            "payload": common::tagged::hex(&payload),
        }),
    );
    assert_eq!(out["whole"], true);
    assert_eq!(out["streamed"], true);
    assert_eq!(out["rust_rows"], out["py_rows"]);
    assert_eq!(out["py_rows"][0]["mode"], 2);
    assert_eq!(out["py_rows"][0]["file"], true);

    let cache = Cache::open(py_dir.path())?;
    assert_eq!(cache.get_bytes("stream")?.as_ref(), Some(&payload));
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(
        &mut cache.read("stream")?.expect("python's stream"),
        &mut streamed,
    )?;
    assert_eq!(streamed, payload);
    Ok(())
}

#[test]
fn nan_keys_are_refused_and_python_nan_rows_are_harmless() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    for result in [
        cache.set(f64::NAN, 1).map(drop),
        cache.get::<i64>(f64::NAN).map(drop),
        cache.contains(f32::NAN).map(drop),
        cache.delete(f64::NAN).map(drop),
    ] {
        let err = result.expect_err("a NaN key must be refused");
        assert!(
            err.to_string().contains("NaN cannot be a cache key"),
            "{err}"
        );
    }
    // A NaN tag too (python would store no tag).
    let err = cache
        .set_with("k", 1, SetOptions::new().tag(f64::NAN))
        .expect_err("a NaN tag must be refused");
    assert!(matches!(err, dcache::cache::Error::NanTag), "{err}");
    assert_eq!(cache.len()?, 0);

    // Python binds NaN as NULL: each set adds a row that no lookup finds.
    let out = py.call(SCRIPT, "nan_keys", &json!({ "dir": path_str(dir.path()) }));
    assert_eq!(out["len"], 3);
    assert_eq!(out["nan_in"], false);
    let none = t(Value::None);
    assert_eq!(out["keys"], json!([none, none, t("x")]));
    let keys: Vec<Value> = cache.keys()?.collect::<Result<_, _>>()?;
    assert_eq!(keys, [Value::None, Value::None, Value::from("x")]);
    assert_eq!(cache.get::<i64>("x")?, Some(3));
    assert_eq!(cache.len()?, 3);
    // dcache's check counts every row; python's counts `COUNT(key)`, which skips NULL keys,
    // so python reports (and with fix=True, writes) a count that is too low.
    assert_eq!(cache.check(CheckMode::Report)?, []);
    assert_eq!(
        out["check"],
        json!(["Settings.count != COUNT(Cache.key); 3 != 1"])
    );
    Ok(())
}

// ----- expiry, tags, order, volume -----

/// The same facts as `view` in cache.py, read by dcache.
fn rust_view(cache: &Cache) -> Result<Json, Box<dyn std::error::Error>> {
    let tagged = |keys: Vec<Value>| keys.iter().map(tag).collect::<Vec<_>>();
    let keys: Vec<Value> = cache.keys()?.collect::<Result<_, _>>()?;
    let keys_rev: Vec<Value> = cache.keys_rev()?.collect::<Result<_, _>>()?;
    let sorted: Vec<Value> = cache
        .sorted_keys(Order::Ascending)
        .collect::<Result<_, _>>()?;
    let mut entries = Vec::new();
    for key in &keys {
        let entry = cache.get_entry::<Value>(key)?;
        entries.push(json!({
            "key": tag(key),
            "live": cache.contains(key)?,
            "value": entry.as_ref().map(|e| tag(&e.value)),
            "expire_time": entry.as_ref().and_then(|e| e.expire_time).map(unix),
            "tag": entry.as_ref().and_then(|e| e.tag.as_ref()).map(|t| tag(&tag_value(t))),
        }));
    }
    Ok(json!({
        "len": cache.len()?,
        "keys": tagged(keys),
        "keys_rev": tagged(keys_rev),
        "sorted_keys": tagged(sorted),
        "entries": entries,
        "volume": cache.volume()?,
    }))
}

/// Asserts two views agree: exactly, but for expire times, which may differ by the
/// nanosecond rounding of `SystemTime`.
fn assert_same_view(python: &Json, rust: &Json) {
    let strip = |view: &Json| {
        let mut view = view.clone();
        let mut times = Vec::new();
        for e in view["entries"].as_array_mut().unwrap() {
            times.push(e["expire_time"].as_f64());
            e["expire_time"] = Json::Null;
        }
        (view, times)
    };
    let (py_view, py_times) = strip(python);
    let (rs_view, rs_times) = strip(rust);
    assert_eq!(py_view, rs_view);
    for (p, r) in py_times.iter().zip(&rs_times) {
        match (p, r) {
            (Some(p), Some(r)) => assert!((p - r).abs() < 1e-6, "expire time {p} vs {r}"),
            _ => assert_eq!(p, r),
        }
    }
}

/// What both sides wrote: keys in order, which are live, and their tags.
fn assert_expiry_scenario(view: &Json) {
    let keys = [
        "live",
        "expired",
        "forever",
        "float-tag",
        "expired-file",
        "untagged",
    ];
    assert_eq!(view["keys"], json!(keys.map(t)));
    assert_eq!(view["len"], 6);
    let live: Vec<bool> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["live"].as_bool().unwrap())
        .collect();
    assert_eq!(live, [true, false, true, true, false, true]);
    let entries = &view["entries"];
    assert_eq!(entries[0]["tag"], t("str-tag"));
    assert_eq!(entries[2]["tag"], t(&b"\0blob"[..]));
    assert_eq!(entries[2]["value"], t(&b"v3b"[..]));
    assert_eq!(entries[3]["tag"], t(2.5));
    assert_eq!(entries[5]["tag"], Json::Null);
    assert_eq!(entries[5]["value"], t(1.5));
    for e in [1, 4] {
        assert_eq!(
            entries[e]["value"],
            Json::Null,
            "expired entries are misses"
        );
    }
    // Expiry an hour away, as written.
    let now = unix(SystemTime::now());
    for e in [0, 3] {
        let expire = entries[e]["expire_time"].as_f64().unwrap();
        assert!((expire - now - 3600.0).abs() < 60.0, "{expire} vs {now}");
    }
    assert_eq!(entries[2]["expire_time"], Json::Null);
    // SQLite's key order: numbers, then text by bytes, then blobs.
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        view["sorted_keys"],
        json!(sorted.into_iter().map(t).collect::<Vec<_>>())
    );
    let mut rev = keys.to_vec();
    rev.reverse();
    assert_eq!(
        view["keys_rev"],
        json!(rev.into_iter().map(t).collect::<Vec<_>>())
    );
}

#[test]
fn expire_times_tags_order_and_volume_agree() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let big: Vec<u8> = pattern(40_960);
    // No culling on writes, so expired entries stay for the other side to see.
    let cache = Cache::builder().cull_limit(0).open(rust_dir.path())?;
    cache.set_with("live", "v1", SetOptions::new().expire(HOUR).tag("str-tag"))?;
    cache.set_with(
        "expired",
        "v2",
        SetOptions::new().expire(Duration::ZERO).tag(7),
    )?;
    cache.set_with("forever", &b"v3"[..], SetOptions::new().tag(&b"\0blob"[..]))?;
    cache.set_with("float-tag", 4, SetOptions::new().expire(HOUR).tag(2.5))?;
    past_handle(rust_dir.path(), HOUR)?.set_with(
        "expired-file",
        &big[..],
        SetOptions::new()
            .expire(Duration::from_secs(60))
            .tag("str-tag"),
    )?;
    cache.set("untagged", 1.5)?;
    cache.set_with(
        "forever",
        &b"v3b"[..],
        SetOptions::new().tag(&b"\0blob"[..]),
    )?;
    let before = rust_view(&cache)?;
    assert_expiry_scenario(&before);

    let out = py.call(
        SCRIPT,
        "expiry_and_tags",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    // Python sees what dcache sees: values, expiry, tags, order, len and volume.
    assert_same_view(&out["rust"], &before);
    // Python's evict by a tag dcache wrote removes the live and the expired entry (and its
    // file): dcache agrees on what is left and finds the directory clean.
    assert_eq!(out["evicted"], 2);
    let keys: Vec<Value> = cache.keys()?.collect::<Result<_, _>>()?;
    assert_eq!(
        json!(keys.iter().map(tag).collect::<Vec<_>>()),
        out["rust_after"]["keys"]
    );
    assert_eq!(out["rust_after"]["check"], json!([]));
    assert_eq!(cache.check(CheckMode::Report)?, []);
    assert_eq!(json!(cache.volume()?), out["rust_after"]["volume"]);

    // dcache sees what python wrote as python sees it.
    let cache = Cache::open(py_dir.path())?;
    assert_expiry_scenario(&out["py"]);
    assert_same_view(&out["py"], &rust_view(&cache)?);
    // Tags python wrote select the same rows for dcache.
    assert_eq!(cache.evict(7)?, 1);
    assert_eq!(cache.evict(&b"\0blob"[..])?, 1);
    assert_eq!(cache.evict(2.5)?, 1);
    assert_eq!(cache.evict("str-tag")?, 2);
    assert_eq!(
        cache.keys::<String>()?.collect::<Result<Vec<_>, _>>()?,
        ["untagged"]
    );
    assert_eq!(cache.check(CheckMode::Report)?, []);
    Ok(())
}

// ----- settings -----

/// The settings scenario, written by dcache (`settings_populate` in cache.py is the same in
/// python): LFU, statistics, a tag index, files from 100 bytes; 24 entries of 10 000 bytes
/// (k00..k23) of which k00..k04 are read twice; 10 expired entries written with culling off;
/// then `cull_limit` 3 and `size_limit` 120 000 bytes under the volume.
fn populate_settings(dir: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let cache = Cache::builder()
        .eviction_policy(EvictionPolicy::LeastFrequentlyUsed)
        .cull_limit(0)
        .statistics(true)
        .tag_index(true)
        .disk_min_file_size(100)
        .open(dir)?;
    for i in 0..24u8 {
        cache.set_with(
            format!("k{i:02}"),
            vec![i; 10_000],
            SetOptions::new().tag("t"),
        )?;
    }
    for _ in 0..2 {
        for i in 0..5u8 {
            assert_eq!(
                cache.get::<Vec<u8>>(format!("k{i:02}"))?,
                Some(vec![i; 10_000])
            );
        }
    }
    let past = past_handle(dir, HOUR)?;
    for i in 0..10 {
        past.set_with(
            format!("e{i}"),
            i,
            SetOptions::new().expire(Duration::from_secs(1)),
        )?;
    }
    cache.reset("cull_limit", 3)?;
    let size_limit = cache.volume()? - 120_000;
    cache.reset("size_limit", size_limit as i64)?;
    Ok(size_limit)
}

/// Opens the scenario without settings and exercises each one (`settings_honour` in cache.py).
fn honour_settings(dir: &Path) -> Result<Json, Box<dyn std::error::Error>> {
    let cache = Cache::open(dir)?;
    let settings = cache.settings();
    let mut report = json!({
        "attrs": {
            "size_limit": settings.size_limit,
            "eviction_policy": settings.eviction_policy.as_str(),
            "cull_limit": settings.cull_limit,
            "statistics": i64::from(settings.statistics),
            "tag_index": i64::from(settings.tag_index),
            "disk_min_file_size": cache.disk().min_file_size(),
        },
        "len_before": cache.len()?,
    });
    cache.set("o1", "x")?;
    report["len_after_set"] = json!(cache.len()?);
    cache.set("ofile", &[b'y'; 200][..])?;
    report["len_after_file_set"] = json!(cache.len()?);
    for _ in 0..3 {
        assert_eq!(cache.get::<Vec<u8>>("k05")?, Some(vec![5; 10_000]));
    }
    assert_eq!(cache.get::<Vec<u8>>("nope")?, None);
    let stats = cache.stats()?;
    report["stats"] = json!([stats.hits, stats.misses]);
    report["culled"] = json!(cache.cull()?);
    let mut survivors: Vec<String> = cache.keys()?.collect::<Result<_, _>>()?;
    survivors.sort();
    report["survivors"] = json!(survivors);
    Ok(report)
}

/// Each setting was honoured: `cull_limit` 3 culls exactly 3 expired entries per write,
/// `disk_min_file_size` 100 puts 200 bytes in a file, statistics count both sides' reads, LFU
/// counts both sides' reads and culls the never-read entries first, `size_limit` stops the
/// cull after two batches of 10, and the tag index survives the open.
fn assert_settings_honoured(
    py: &common::python::Python,
    dir: &Path,
    report: &Json,
    size_limit: u64,
) {
    assert_eq!(
        report["attrs"],
        json!({
            "size_limit": size_limit,
            "eviction_policy": "least-frequently-used",
            "cull_limit": 3,
            "statistics": 1,
            "tag_index": 1,
            "disk_min_file_size": 100,
        })
    );
    assert_eq!(report["len_before"], 34);
    assert_eq!(report["len_after_set"], 32);
    assert_eq!(report["len_after_file_set"], 30);
    assert_eq!(report["stats"], json!([13, 1]));
    assert_eq!(
        report["culled"], 24,
        "4 expired, then 20 never-read entries: {report}"
    );
    assert_eq!(
        report["survivors"],
        json!(["k00", "k01", "k02", "k03", "k04", "k05"])
    );
    let facts = py.call(SCRIPT, "inspect", &json!({ "dir": path_str(dir) }));
    assert_eq!(facts["tag_index"], true);
    assert_eq!(facts["modes"]["k00"], 2, "bytes of 10 000 in files");
    assert_eq!(
        facts["access_counts"],
        json!({"k00": 2, "k01": 2, "k02": 2, "k03": 2, "k04": 2, "k05": 3})
    );
}

#[test]
fn settings_written_by_dcache_are_honoured_by_python() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let size_limit = populate_settings(dir.path())?;
    let report = py.call(
        SCRIPT,
        "settings_honour",
        &json!({ "dir": path_str(dir.path()) }),
    );
    assert_settings_honoured(&py, dir.path(), &report, size_limit);
    assert_eq!(Cache::open(dir.path())?.check(CheckMode::Report)?, []);
    Ok(())
}

#[test]
fn settings_written_by_python_are_honoured_by_dcache() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let out = py.call(
        SCRIPT,
        "settings_populate",
        &json!({ "dir": path_str(dir.path()) }),
    );
    let size_limit = out["size_limit"].as_u64().unwrap();
    let report = honour_settings(dir.path())?;
    assert_settings_honoured(&py, dir.path(), &report, size_limit);
    let after = py.call(
        SCRIPT,
        "check_after",
        &json!({ "dir": path_str(dir.path()) }),
    );
    assert_eq!(after["check"], json!([]));
    Ok(())
}

#[test]
fn a_setting_python_resets_shows_in_dcache_after_reload() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    assert_eq!(cache.settings().cull_limit, 10);
    py.call(
        SCRIPT,
        "reset_setting",
        &json!({ "dir": path_str(dir.path()), "name": "cull_limit", "value": 7 }),
    );
    // Settings are cached per handle, as in python, until reloaded or reopened.
    assert_eq!(cache.settings().cull_limit, 10);
    assert_eq!(cache.reload_settings()?.cull_limit, 7);
    assert_eq!(cache.settings().cull_limit, 7);
    assert_eq!(Cache::open(dir.path())?.settings().cull_limit, 7);
    Ok(())
}

// ----- culling, eviction and check -----

/// The churn of `churn` in cache.py: deletes, pops, reads, expired writes, and tagged writes
/// of small values and 5 000-byte files; then `evict("odd")`, `expire()` and `cull()`.
fn churn(c: &Cache) -> Result<[u64; 3], Box<dyn std::error::Error>> {
    for i in 0..300u32 {
        let key = format!("k{}", i % 60);
        if i % 7 == 3 {
            c.delete(&key)?;
        } else if i % 11 == 5 {
            c.pop::<Value>(&key)?;
        } else if i % 13 == 0 {
            c.get::<Value>(&key)?;
        } else if i % 17 == 0 {
            c.set_with(&key, i, SetOptions::new().expire(Duration::ZERO))?;
        } else {
            let opts = SetOptions::new().tag(if i % 3 == 0 { "even" } else { "odd" });
            if i % 2 == 1 {
                c.set_with(&key, vec![(i % 256) as u8; 5_000], opts)?;
            } else {
                c.set_with(&key, format!("small-{i}"), opts)?;
            }
        }
    }
    Ok([c.evict("odd")?, c.expire()?, c.cull()?])
}

fn rust_items(cache: &Cache) -> Result<Json, Box<dyn std::error::Error>> {
    let mut items = Vec::new();
    for key in cache.keys::<Value>()? {
        let key = key?;
        if let Some(value) = cache.get::<Value>(&key)? {
            items.push(json!([tag(&key), tag(&value)]));
        }
    }
    Ok(Json::Array(items))
}

#[test]
fn culling_on_either_side_leaves_a_directory_the_other_checks_clean() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    // The same churn without a size limit, to tell that the limited ones culled.
    let unlimited = Cache::builder()
        .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
        .disk_min_file_size(1_000)
        .open_temp()?;
    churn(&unlimited)?;
    let unculled = unlimited.len()?;

    let cache = Cache::builder()
        .size_limit(100_000)
        .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
        .disk_min_file_size(1_000)
        .open(rust_dir.path())?;
    let removed = churn(&cache)?;
    assert!(removed[0] > 0, "{removed:?}");
    assert!(cache.len()? < unculled, "{} vs {unculled}", cache.len()?);
    assert!(cache.volume()? <= 100_000);
    assert_eq!(cache.check(CheckMode::Report)?, []);

    let out = py.call(
        SCRIPT,
        "cull_and_check",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    assert_eq!(out["rust"]["check"], json!([]));
    assert_eq!(out["rust"]["items"], rust_items(&cache)?);
    assert_eq!(out["rust"]["len"], cache.len()?);

    let cache = Cache::open(py_dir.path())?;
    assert!(out["py"]["removed"][0].as_u64().unwrap() > 0, "{out}");
    assert!(cache.len()? < unculled, "{} vs {unculled}", cache.len()?);
    assert!(cache.volume()? <= 100_000);
    assert_eq!(cache.check(CheckMode::Report)?, []);
    assert_eq!(out["py"]["items"], rust_items(&cache)?);
    assert_eq!(out["py"]["len"], cache.len()?);
    Ok(())
}

/// What a damage did, as paths.
struct Damage {
    missing: PathBuf,
    truncated: PathBuf,
    unknown: PathBuf,
    empty: PathBuf,
}

/// The same entries as `populate_damage` in cache.py: f0..f5 in files of 40 000 + i bytes,
/// i0..i2 inline.
fn populate_damage(cache: &Cache) -> dcache::cache::Result<()> {
    for i in 0..6u8 {
        cache.set(format!("f{i}"), vec![i; 40_000 + usize::from(i)])?;
    }
    for i in 0..3 {
        cache.set(format!("i{i}"), format!("inline-{i}"))?;
    }
    Ok(())
}

/// The value files below `dir`, by size.
fn files_by_size(dir: &Path) -> std::io::Result<BTreeMap<u64, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "val") {
                out.insert(path.metadata()?.len(), path);
            }
        }
    }
    Ok(out)
}

/// Damages a cache the way `damage` in cache.py does: removes f0's file (and its emptied
/// directories), truncates f1's, adds an old unknown file beside f2's, an empty directory
/// beside f3's, and corrupts `count` (+5) and `size` (+1234).
fn damage(dir: &Path) -> Result<Damage, Box<dyn std::error::Error>> {
    let files = files_by_size(dir)?;
    let file = |i: u64| files[&(40_000 + i)].clone();
    let missing = file(0);
    std::fs::remove_file(&missing)?;
    let mut parent = missing.parent();
    while let Some(p) = parent.filter(|p| *p != dir) {
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        parent = p.parent();
    }
    let truncated = file(1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)?
        .set_len(100)?;
    let unknown = file(2).with_file_name(format!("{}.val", "0".repeat(28)));
    std::fs::write(&unknown, b"orphan")?;
    std::fs::File::options()
        .write(true)
        .open(&unknown)?
        .set_modified(SystemTime::now() - Duration::from_secs(120))?;
    let empty = file(3).parent().unwrap().parent().unwrap().join("zz");
    std::fs::create_dir(&empty)?;
    let db = rusqlite::Connection::open(dir.join("cache.db"))?;
    db.execute_batch(
        "UPDATE Settings SET value = value + 5 WHERE key = 'count';
         UPDATE Settings SET value = value + 1234 WHERE key = 'size';",
    )?;
    Ok(Damage {
        missing,
        truncated,
        unknown,
        empty,
    })
}

/// The warnings `check(fix=True)` gives for a damage, in python's words, paths under `<dir>`.
fn expected_fix_warnings(dir: &Path, d: &Damage) -> Vec<String> {
    let rel = |p: &Path| p.to_str().unwrap().replace(path_str(dir), "<dir>");
    // After the fix: f0's row is gone, f1 counts 100 bytes.
    let size: u64 = (2..6).map(|i| 40_000 + i).sum::<u64>() + 100;
    let mut expected = vec![
        format!("file not found: {}", rel(&d.missing)),
        format!("wrong file size: {}, 100 != 40001", rel(&d.truncated)),
        format!("unknown file: {}", rel(&d.unknown)),
        format!("empty directory: {}", rel(&d.empty)),
        "Settings.count != COUNT(Cache.key); 13 != 8".to_owned(),
        format!(
            "Settings.size != SUM(Cache.size); {} != {size}",
            size + 1234
        ),
    ];
    expected.sort();
    expected
}

/// The entries left after the fix: f0 is gone, f1 is its 100 remaining bytes.
fn assert_repaired_items(items: &Json) {
    let mut expected = vec![json!([t("f1"), t(vec![1u8; 100])])];
    for i in 2..6u8 {
        expected.push(json!([
            t(format!("f{i}")),
            t(vec![i; 40_000 + usize::from(i)])
        ]));
    }
    for i in 0..3 {
        expected.push(json!([t(format!("i{i}")), t(format!("inline-{i}"))]));
    }
    assert_eq!(items, &Json::Array(expected));
}

#[test]
fn check_fix_on_either_side_repairs_what_the_other_damaged() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cache = Cache::open(rust_dir.path())?;
    populate_damage(&cache)?;
    let rust_damage = damage(rust_dir.path())?;

    let out = py.call(
        SCRIPT,
        "check_fix",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    // Python finds exactly the damage and repairs it; dcache then finds nothing to fix.
    assert_eq!(
        out["rust"]["fixed"],
        json!(expected_fix_warnings(rust_dir.path(), &rust_damage))
    );
    assert_eq!(out["rust"]["after"], json!([]));
    assert_repaired_items(&out["rust"]["items"]);
    assert_eq!(cache.check(CheckMode::Report)?, []);
    assert_repaired_items(&rust_items(&cache)?);

    // dcache finds exactly the damage python did to its own directory, in the same words,
    // and repairs it; python then finds nothing to fix.
    let d = &out["py_damage"];
    let path = |name: &str| PathBuf::from(d[name].as_str().unwrap());
    let py_damage = Damage {
        missing: path("missing"),
        truncated: path("truncated"),
        unknown: path("unknown"),
        empty: path("empty"),
    };
    let cache = Cache::open(py_dir.path())?;
    let mut fixed: Vec<String> = cache
        .check(CheckMode::Fix)?
        .iter()
        .map(|w| w.to_string().replace(path_str(py_dir.path()), "<dir>"))
        .collect();
    fixed.sort();
    assert_eq!(fixed, expected_fix_warnings(py_dir.path(), &py_damage));
    assert_eq!(cache.check(CheckMode::Report)?, []);
    assert_repaired_items(&rust_items(&cache)?);
    let after = py.call(
        SCRIPT,
        "check_after",
        &json!({ "dir": path_str(py_dir.path()) }),
    );
    assert_eq!(after["check"], json!([]));
    assert_repaired_items(&after["items"]);
    Ok(())
}

#[test]
fn check_fix_keeps_young_unknown_files_that_python_removes() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("f", vec![7u8; 40_000])?;
    let value_file = files_by_size(dir.path())?[&40_000].clone();
    let young = value_file.with_file_name(format!("{}.val", "1".repeat(28)));
    std::fs::write(&young, b"maybe a commit in flight")?;

    // dcache reports it but keeps it: a writer writes its file before its row commits.
    let warnings = cache.check(CheckMode::Fix)?;
    assert_eq!(
        warnings,
        [Warning::UnknownFile {
            path: young.clone()
        }]
    );
    assert!(young.exists());
    // Once it is older than the grace period, dcache removes it too.
    std::fs::File::options()
        .write(true)
        .open(&young)?
        .set_modified(SystemTime::now() - Duration::from_secs(61))?;
    assert_eq!(cache.check(CheckMode::Fix)?.len(), 1);
    assert!(!young.exists());
    assert_eq!(cache.check(CheckMode::Report)?, []);

    // Python removes an unknown file whatever its age.
    std::fs::write(&young, b"maybe a commit in flight")?;
    let out = py.call(
        SCRIPT,
        "young_unknown_file",
        &json!({ "dir": path_str(dir.path()), "file": path_str(&young) }),
    );
    assert_eq!(out["warnings"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["exists"], false);
    Ok(())
}

#[test]
fn check_fix_removes_nested_empty_directories_in_one_pass() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    for dir in [&rust_dir, &py_dir] {
        Cache::open(dir.path())?;
        std::fs::create_dir_all(dir.path().join("ab/cd"))?;
    }
    // dcache visits the deepest directories first, so a parent the fix empties goes too.
    let cache = Cache::open(rust_dir.path())?;
    let warnings = cache.check(CheckMode::Fix)?;
    assert_eq!(
        warnings,
        [
            Warning::EmptyDir {
                path: rust_dir.path().join("ab/cd")
            },
            Warning::EmptyDir {
                path: rust_dir.path().join("ab")
            },
        ]
    );
    assert_eq!(cache.check(CheckMode::Report)?, []);
    // Python walks top-down: the emptied parent is only found by the next check.
    let out = py.call(
        SCRIPT,
        "nested_empty_dirs",
        &json!({ "dir": path_str(py_dir.path()) }),
    );
    assert_eq!(
        out,
        json!([
            ["empty directory: <dir>/ab/cd"],
            ["empty directory: <dir>/ab"],
            [],
        ])
    );
    Ok(())
}

#[test]
fn incr_counts_integers_where_python_also_adds_to_floats() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let out = py.call(
        SCRIPT,
        "float_counter",
        &json!({ "dir": path_str(dir.path()) }),
    );
    assert_eq!(out, json!({ "float": 2.5, "int": 2 }));
    let cache = Cache::open(dir.path())?;
    assert_eq!(cache.incr("int", 1)?, 3);
    let err = cache
        .incr("float", 1)
        .expect_err("a float is not a counter");
    assert!(
        matches!(err, dcache::cache::Error::NotAnInteger { .. }),
        "{err}"
    );
    assert_eq!(cache.get::<f64>("float")?, Some(2.5), "left as it was");
    Ok(())
}

// ----- queues -----

fn pulled(entry: Option<(QueueKey, dcache::Entry<Value>)>) -> Json {
    match entry {
        None => Json::Null,
        Some((QueueKey::Int(k), e)) => json!([t(k), tag(&e.value)]),
        Some((QueueKey::Text(k), e)) => json!([t(k), tag(&e.value)]),
    }
}

fn drain(cache: &Cache, prefix: Option<&str>, side: Side) -> dcache::cache::Result<Vec<Json>> {
    let mut out = Vec::new();
    while let Some(entry) = cache.pull::<Value>(prefix, side)? {
        out.push(pulled(Some(entry)));
    }
    Ok(out)
}

const Q: i64 = dcache::cache::QUEUE_START;

#[test]
fn queue_pushes_on_one_side_are_pulled_in_order_on_the_other() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let big = vec![b'x'; 40_000];
    // No culling on writes, so the expired entry stays for `pull` to skip.
    let cache = Cache::builder().cull_limit(0).open(rust_dir.path())?;
    assert_eq!(cache.push("r-1")?, QueueKey::Int(Q));
    assert_eq!(cache.push("r-2")?, QueueKey::Int(Q + 1));
    let front = PushOptions::new().side(Side::Front);
    assert_eq!(
        cache.push_with("r-front", front.clone())?,
        QueueKey::Int(Q - 1)
    );
    let jobs = PushOptions::new().prefix("jobs");
    for n in 1..=3 {
        cache.push_with(n, jobs.clone())?;
    }
    cache.push_with(&big[..], jobs.clone())?;
    cache.push_with(0, jobs.clone().side(Side::Front))?;
    let exp = PushOptions::new().prefix("exp");
    cache.push_with("stale", exp.clone().expire(Duration::ZERO))?;
    cache.push_with("fresh", exp)?;

    let out = py.call(
        SCRIPT,
        "queues",
        &json!({ "rust_dir": path_str(rust_dir.path()), "py_dir": path_str(py_dir.path()) }),
    );
    // Python continued dcache's queues (py-1, py-2 at the back, py-front at the front, a dict
    // at the back of "jobs") and pulled everything in order.
    let p = &out["pulled"];
    assert_eq!(
        p["plain_front"],
        json!([
            [t(Q - 2), t(&b"py-front"[..])],
            [t(Q - 1), t("r-front")],
            [t(Q), t("r-1")],
            [t(Q + 1), t("r-2")],
            [t(Q + 2), t("py-1")],
            [t(Q + 3), t("py-2")],
        ])
    );
    let job = |n: i64| t(format!("jobs-{n:015}"));
    let dict = Value::Dict(vec![(Value::from("n"), Value::from(4))]);
    assert_eq!(
        p["jobs_back"],
        json!([
            [job(Q + 4), tag(&dict)],
            [job(Q + 3), t(big.clone())],
            [job(Q + 2), t(3)],
            [job(Q + 1), t(2)],
            [job(Q), t(1)],
            [job(Q - 1), t(0)],
        ])
    );
    assert_eq!(p["peeked"], json!([job(Q - 1), t(0)]));
    assert_eq!(
        p["exp_front"],
        json!([[t(format!("exp-{:015}", Q + 1)), t("fresh")]])
    );
    assert_eq!(p["len"], 0);
    assert_eq!(cache.check(CheckMode::Report)?, []);

    // dcache continues python's queues and pulls them in order.
    let cache = Cache::open(py_dir.path())?;
    assert_eq!(
        out["pushed"],
        json!([
            t(Q),
            t(Q + 1),
            t(Q + 2),
            t(Q - 1),
            job(Q),
            job(Q + 1),
            job(Q - 1),
            t(format!("exp-{Q:015}")),
            t(format!("exp-{:015}", Q + 1))
        ])
    );
    cache.push("rust-1")?;
    cache.push_with("rust-front", front)?;
    assert_eq!(
        pulled(cache.peek::<Value>(None, Side::Back)?),
        json!([t(Q + 3), t("rust-1")])
    );
    assert_eq!(
        drain(&cache, None, Side::Front)?,
        [
            json!([t(Q - 2), t("rust-front")]),
            json!([t(Q - 1), t("z")]),
            json!([t(Q), t("a")]),
            json!([t(Q + 1), t("b")]),
            json!([t(Q + 2), t("c")]),
            json!([t(Q + 3), t("rust-1")]),
        ]
    );
    assert_eq!(
        drain(&cache, Some("jobs"), Side::Back)?,
        [
            json!([job(Q + 1), t(2)]),
            json!([job(Q), t(vec![b'x'; 40_000])]),
            json!([job(Q - 1), t(0)]),
        ]
    );
    assert_eq!(
        drain(&cache, Some("exp"), Side::Front)?,
        [json!([t(format!("exp-{:015}", Q + 1)), t("fresh")])]
    );
    assert_eq!(cache.len()?, 0);
    assert_eq!(cache.check(CheckMode::Report)?, []);
    Ok(())
}

// ----- deliberate differences -----

#[test]
fn expire_removes_entries_python_skips_at_a_batch_boundary() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    // 150 entries sharing one expire time, an hour ago.
    for dir in [&rust_dir, &py_dir] {
        let past = past_handle(dir.path(), HOUR)?;
        for i in 0..150 {
            past.set_with(i, i, SetOptions::new().expire(Duration::from_secs(10)))?;
        }
    }
    // Python's expire() takes batches of 100 above the last batch's expire time, so the 50
    // rows sharing the boundary time are skipped (a second call removes them).
    let out = py.call(
        SCRIPT,
        "expire_boundary",
        &json!({ "dir": path_str(py_dir.path()) }),
    );
    assert_eq!(out, json!({ "removed": 100, "len": 50 }));
    let out = py.call(
        SCRIPT,
        "expire_boundary",
        &json!({ "dir": path_str(py_dir.path()) }),
    );
    assert_eq!(out, json!({ "removed": 50, "len": 0 }));
    // dcache's removes them all at once.
    let cache = Cache::open(rust_dir.path())?;
    assert_eq!(cache.expire()?, 150);
    assert_eq!(cache.len()?, 0);
    Ok(())
}

#[test]
fn cull_returns_what_it_removed_where_python_returns_zero() -> TestResult {
    let py = require_python!();
    let (rust_dir, py_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    for dir in [&rust_dir, &py_dir] {
        let cache = Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open(dir.path())?;
        cache.set("live-1", 1)?;
        cache.set("live-2", 2)?;
        let past = past_handle(dir.path(), HOUR)?;
        for i in 0..5 {
            past.set_with(i, i, SetOptions::new().expire(Duration::from_secs(1)))?;
        }
    }
    // With eviction policy "none", python's cull() removes the expired entries but returns 0.
    let out = py.call(
        SCRIPT,
        "cull_policy_none",
        &json!({ "dir": path_str(py_dir.path()) }),
    );
    assert_eq!(out, json!({ "removed": 0, "len": 2 }));
    let cache = Cache::open(rust_dir.path())?;
    assert_eq!(cache.cull()?, 5);
    assert_eq!(cache.len()?, 2);
    Ok(())
}
