//! Golden columns produced by python-diskcache 5.6.3's `Disk` and `JSONDisk`
//! (`tests/data/gen_disk_golden.py`): dcache decodes every one of them to the expected Rust
//! value, and encodes keys to exactly python's columns wherever python's bytes are canonical.

use std::collections::BTreeMap;

use dcache_disk::{
    BigInt, DbKey, Disk, DiskFormat, FileStore, JsonDisk, Mode, SqlValue, StoredRef, Value,
};
use serde_json::Value as Json;

struct Row {
    disk: String,
    kind: String,
    name: String,
    json: BTreeMap<String, Json>,
}

fn rows() -> Vec<Row> {
    include_str!("data/disk_golden.jsonl")
        .lines()
        .map(|line| {
            let json: BTreeMap<String, Json> = serde_json::from_str(line).unwrap();
            Row {
                disk: json["disk"].as_str().unwrap().to_owned(),
                kind: json["kind"].as_str().unwrap().to_owned(),
                name: json["name"].as_str().unwrap().to_owned(),
                json,
            }
        })
        .collect()
}

fn column(v: &Json) -> SqlValue {
    let (tag, inner) = v.as_object().unwrap().iter().next().unwrap();
    match tag.as_str() {
        "null" => SqlValue::Null,
        "int" => SqlValue::Integer(inner.as_i64().unwrap()),
        "real" => SqlValue::Real(match inner.as_str().unwrap() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        }),
        "text" => SqlValue::Text(inner.as_str().unwrap().to_owned()),
        "blob" => SqlValue::Blob(hex(inner.as_str().unwrap())),
        other => panic!("unknown column tag {other}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The value python's object decodes to, as dcache's dynamic `Value`.
fn expected_key(name: &str) -> Value {
    match name {
        "text" => Value::Str("key".into()),
        "text_unicode" => Value::Str("h\u{e9}llo \u{2603}".into()),
        "text_empty" => Value::Str(String::new()),
        "bytes" => Value::Bytes(b"key".to_vec()),
        "bytes_nul" => Value::Bytes(vec![0, 0xff]),
        "bytes_empty" => Value::Bytes(vec![]),
        "int" => Value::Int(42),
        "int_neg" => Value::Int(-1),
        "int_max" => Value::Int(i64::MAX),
        "int_min" => Value::Int(i64::MIN),
        "float" => Value::Float(1.5),
        "float_neg_zero" => Value::Float(-0.0),
        "float_inf" => Value::Float(f64::INFINITY),
        "big_int" => Value::BigInt(BigInt::from(1u128 << 64)),
        "none" => Value::None,
        "true" => Value::Bool(true),
        "tuple" => Value::Tuple(vec![Value::Int(1), Value::Str("x".into())]),
        "memo_key" => Value::Tuple(vec![
            Value::Str("__main__.f".into()),
            Value::Int(1),
            Value::None,
            Value::Str("b".into()),
            Value::Int(3),
        ]),
        other => panic!("no expectation for key {other}"),
    }
}

fn expected_value(name: &str) -> Value {
    match name {
        "text" => Value::Str("small".into()),
        "text_file" => Value::Str(format!("{}\u{e9}", "x".repeat(20))),
        // dcache reads text files byte-exact; python's text mode would turn \r\n into \n.
        "text_crlf_file" => Value::Str("line\r\nnext\r\n".repeat(2)),
        "bytes" => Value::Bytes(b"ab".to_vec()),
        "bytes_file" => Value::Bytes(vec![b'y'; 20]),
        "int" => Value::Int(7),
        "int_min" => Value::Int(i64::MIN),
        "float" => Value::Float(1.25),
        "float_inf" => Value::Float(f64::NEG_INFINITY),
        "none" => Value::None,
        "true" => Value::Bool(true),
        "list" => Value::List(vec![Value::Int(1), Value::Int(2)]),
        "dict" => Value::Dict(vec![
            (Value::Str("a".into()), Value::Int(1)),
            (
                Value::Str("b".into()),
                Value::List(vec![Value::None, Value::Float(2.5)]),
            ),
        ]),
        "tuple" => Value::Tuple(vec![Value::Int(1), Value::Str("x".into())]),
        "big_int" => Value::BigInt(BigInt::from(1u128 << 64)),
        "list_file" => Value::List((0..40).map(Value::Int).collect()),
        other => panic!("no expectation for value {other}"),
    }
}

/// Python's key re-encoded by dcache from the equivalent Rust value, where one exists.
fn rust_key(disk: &Disk, name: &str) -> Option<DbKey> {
    Some(
        match name {
            "text" => disk.put("key"),
            "text_unicode" => disk.put("h\u{e9}llo \u{2603}"),
            "text_empty" => disk.put(""),
            "bytes" => disk.put(&b"key"[..]),
            "bytes_nul" => disk.put(&[0u8, 0xff][..]),
            "bytes_empty" => disk.put(&b""[..]),
            "int" => disk.put(&42),
            "int_neg" => disk.put(&-1),
            "int_max" => disk.put(&i64::MAX),
            "int_min" => disk.put(&i64::MIN),
            "float" => disk.put(&1.5),
            "float_neg_zero" => disk.put(&-0.0),
            "float_inf" => disk.put(&f64::INFINITY),
            "big_int" => disk.put(&(1u128 << 64)),
            "none" => disk.put(&None::<i32>),
            "true" => disk.put(&true),
            "tuple" => disk.put(&(1, "x")),
            "memo_key" => disk.put(&("__main__.f", 1, (), "b", 3)),
            _ => return None,
        }
        .unwrap(),
    )
}

#[test]
fn python_disk_columns_decode_and_keys_match() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let disk = Disk::new().with_min_file_size(16);
    let mut checked = 0;
    for row in rows().iter().filter(|r| r.disk == "Disk") {
        match row.kind.as_str() {
            "key" => {
                let key = column(&row.json["key"]);
                let raw = row.json["raw"].as_bool().unwrap();
                let decoded = disk.get_value(key.as_ref(), raw).unwrap();
                assert_eq!(decoded, expected_key(&row.name), "key {}", row.name);
                let ours = rust_key(&disk, &row.name).unwrap();
                assert_eq!(ours.raw, raw, "raw flag of key {}", row.name);
                assert_eq!(
                    ours.value, key,
                    "dcache encodes key {} as python does",
                    row.name
                );
                assert_eq!(
                    u64::from(disk.hash(&ours)),
                    row.json["hash"].as_u64().unwrap(),
                    "hash of key {}",
                    row.name
                );
            }
            "value" => {
                let value = column(&row.json["value"]);
                let mode = Mode(u8::try_from(row.json["mode"].as_u64().unwrap()).unwrap());
                let size = row.json["size"].as_u64().unwrap();
                let filename = row
                    .json
                    .get("file")
                    .map(|hexed| files.write(&hex(hexed.as_str().unwrap())).unwrap());
                let stored = StoredRef {
                    size,
                    mode,
                    filename: filename.as_deref(),
                    value: value.as_ref(),
                };
                let decoded = disk.fetch_value(stored, &files).unwrap();
                assert_eq!(decoded, expected_value(&row.name), "value {}", row.name);
            }
            other => panic!("unknown kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 34);
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct D {
    a: i64,
    b: (Option<f64>, f64),
}

#[test]
fn python_values_decode_into_serde_types() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let disk = Disk::new().with_min_file_size(16);
    let rows = rows();
    let decode = |name: &str| -> (SqlValue, Mode, u64, Option<String>) {
        let row = rows
            .iter()
            .find(|r| r.disk == "Disk" && r.kind == "value" && r.name == name)
            .unwrap();
        let file = row
            .json
            .get("file")
            .map(|h| files.write(&hex(h.as_str().unwrap())).unwrap());
        let mode = Mode(u8::try_from(row.json["mode"].as_u64().unwrap()).unwrap());
        (
            column(&row.json["value"]),
            mode,
            row.json["size"].as_u64().unwrap(),
            file,
        )
    };
    let stored =
        |c: &(SqlValue, Mode, u64, Option<String>)| -> (Mode, u64, Option<String>, SqlValue) {
            (c.1, c.2, c.3.clone(), c.0.clone())
        };
    macro_rules! fetch {
        ($name:expr, $ty:ty) => {{
            let (mode, size, file, value) = stored(&decode($name));
            disk.fetch::<$ty>(
                StoredRef {
                    size,
                    mode,
                    filename: file.as_deref(),
                    value: value.as_ref(),
                },
                &files,
            )
            .unwrap()
        }};
    }
    assert_eq!(
        fetch!("dict", D),
        D {
            a: 1,
            b: (None, 2.5)
        }
    );
    assert_eq!(fetch!("list_file", Vec<u8>), (0..40).collect::<Vec<u8>>());
    assert_eq!(fetch!("big_int", u128), 1 << 64);
    assert_eq!(fetch!("none", Option<String>), None);
    assert_eq!(fetch!("tuple", (i32, String)), (1, "x".to_owned()));
    assert_eq!(
        fetch!("text_file", String),
        format!("{}\u{e9}", "x".repeat(20))
    );
}

#[test]
fn python_json_disk_columns_match_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let disk = JsonDisk::new().with_min_file_size(64);
    let mut checked = 0;
    for row in rows().iter().filter(|r| r.disk == "JSONDisk") {
        if row.kind == "key" {
            let key = column(&row.json["key"]);
            let ours = match row.name.as_str() {
                "text" => disk.put("key"),
                "int" => disk.put(&1),
                "list" => disk.put(&[1, 2]),
                "dict" => disk.put(&BTreeMap::from([("a", 1)])),
                "float" => disk.put(&0.1),
                other => panic!("no key {other}"),
            }
            .unwrap();
            assert_eq!(ours.value, key, "JSON key {} byte-identical", row.name);
            assert!(ours.raw);
            assert_eq!(
                u64::from(disk.hash(&ours)),
                row.json["hash"].as_u64().unwrap()
            );
        } else {
            let value = column(&row.json["value"]);
            let mode = Mode(u8::try_from(row.json["mode"].as_u64().unwrap()).unwrap());
            let size = row.json["size"].as_u64().unwrap();
            let filename = row
                .json
                .get("file")
                .map(|h| files.write(&hex(h.as_str().unwrap())).unwrap());
            let stored = StoredRef {
                size,
                mode,
                filename: filename.as_deref(),
                value: value.as_ref(),
            };
            let decoded: serde_json::Value = disk.fetch(stored, &files).unwrap();
            let expected = match row.name.as_str() {
                "dict" => serde_json::json!({"a": [1, 2.5]}),
                "text" => serde_json::json!("text"),
                "file" => serde_json::json!({"data": "z".repeat(200)}),
                other => panic!("no value {other}"),
            };
            assert_eq!(decoded, expected, "JSON value {}", row.name);
            // Our encoding of the same value is python's too.
            let ours = disk.store(&expected, &files).unwrap();
            assert_eq!(ours.mode, mode);
            if ours.filename.is_none() {
                assert_eq!(ours.value, value, "JSON value {} byte-identical", row.name);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 8);
}
