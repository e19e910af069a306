//! Every disk round-trips every type, inline and in files, and no decoder panics on bytes.

use std::collections::BTreeMap;

use dcache_disk::{Disk, DiskFormat, FileStore, JsonDisk, Mode, MsgpackDisk, SqlRef, StoredRef};
use proptest::prelude::*;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

const MIN: u64 = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    blob: Vec<u8>,
    nested: BTreeMap<String, (i32, bool)>,
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        ".{0,40}",
        proptest::collection::vec("[a-z]{0,6}", 0..5),
        proptest::option::of(any::<f64>().prop_filter("NaN never equals itself", |f| !f.is_nan())),
        proptest::collection::vec(any::<u8>(), 0..100),
        proptest::collection::btree_map("[a-z]{1,4}", (any::<i32>(), any::<bool>()), 0..4),
    )
        .prop_map(|(id, name, tags, score, blob, nested)| Record {
            id,
            name,
            tags,
            score,
            blob,
            nested,
        })
}

fn round_trip<D: DiskFormat, T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    disk: &D,
    files: &FileStore,
    value: &T,
) {
    let stored = disk.store(value, files).unwrap();
    let back: T = disk.fetch(stored.as_ref(), files).unwrap();
    assert_eq!(&back, value);
    if let Some(name) = &stored.filename {
        assert_eq!(
            stored.size,
            std::fs::metadata(files.resolve(name).unwrap())
                .unwrap()
                .len()
        );
        files.remove(name).unwrap();
    } else {
        assert_eq!(stored.size, 0);
    }
}

fn key_round_trip<D: DiskFormat, K: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    disk: &D,
    key: &K,
) {
    let encoded = disk.put(key).unwrap();
    assert_eq!(encoded, disk.put(key).unwrap(), "put is deterministic");
    let back: K = disk.get(encoded.value.as_ref(), encoded.raw).unwrap();
    assert_eq!(&back, key);
}

fn disks() -> (Disk, MsgpackDisk, JsonDisk) {
    (
        Disk::new().with_min_file_size(MIN),
        MsgpackDisk::new().with_min_file_size(MIN),
        JsonDisk::new().with_min_file_size(MIN),
    )
}

#[test]
fn edge_values_round_trip_in_every_disk() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let (disk, msgpack, json) = disks();
    let below = "a".repeat(MIN as usize - 1);
    let at = "a".repeat(MIN as usize);
    let unicode_at = "é".repeat(MIN as usize); // 64 characters, 128 bytes: python counts characters
    for text in [
        "",
        "héllo ☃ 😀",
        "nul\0inside",
        below.as_str(),
        at.as_str(),
        unicode_at.as_str(),
    ] {
        round_trip(&disk, &files, &text.to_owned());
        round_trip(&msgpack, &files, &text.to_owned());
        round_trip(&json, &files, &text.to_owned());
    }
    for bytes in [
        vec![],
        vec![0u8],
        vec![0xff; MIN as usize - 1],
        vec![7; MIN as usize],
        vec![0; 10_000],
    ] {
        round_trip(&disk, &files, &bytes);
        round_trip(&msgpack, &files, &bytes);
        round_trip(&json, &files, &bytes);
    }
    for int in [0i64, 1, -1, i64::MIN, i64::MAX] {
        round_trip(&disk, &files, &int);
        round_trip(&msgpack, &files, &int);
        round_trip(&json, &files, &int);
        key_round_trip(&disk, &int);
        key_round_trip(&json, &int);
    }
    for big in [u64::MAX, i64::MAX as u64 + 1] {
        round_trip(&disk, &files, &big);
        key_round_trip(&disk, &big);
    }
    for float in [
        0.0f64,
        -0.0,
        1.5,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        round_trip(&disk, &files, &float);
        round_trip(&msgpack, &files, &float);
        key_round_trip(&disk, &float);
    }
    // A NaN value survives (pickled: SQLite would store NULL).
    let stored = disk.store(&f64::NAN, &files).unwrap();
    assert_eq!(stored.mode, Mode::PICKLE);
    assert!(disk.fetch::<f64>(stored.as_ref(), &files).unwrap().is_nan());
    assert!(matches!(
        disk.put(&f64::NAN),
        Err(dcache_disk::Error::NanKey)
    ));
    // Text at the limit goes to a file by character count, bytes by byte count.
    assert_eq!(disk.store(&below, &files).unwrap().mode, Mode::RAW);
    let file = disk.store(&at, &files).unwrap();
    assert_eq!((file.mode, file.size), (Mode::TEXT, MIN));
    assert_eq!(
        disk.store(&vec![1u8; MIN as usize - 1], &files)
            .unwrap()
            .mode,
        Mode::RAW
    );
    assert_eq!(
        disk.store(&vec![1u8; MIN as usize], &files).unwrap().mode,
        Mode::BINARY
    );
    assert_eq!(disk.store(&Some(1), &files).unwrap().mode, Mode::PICKLE);
    assert_eq!(msgpack.store(&Some(1), &files).unwrap().mode, Mode::MSGPACK);
}

#[test]
fn structured_keys_and_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let (disk, msgpack, json) = disks();
    key_round_trip(&disk, &(1, "x".to_owned()));
    key_round_trip(&disk, &Some(true));
    key_round_trip(&disk, &("name".to_owned(), vec![1u32, 2], ()));
    key_round_trip(&json, &(1, "x".to_owned()));
    key_round_trip(&json, &vec!["a".to_owned()]);
    let value: BTreeMap<String, Vec<Option<i64>>> =
        BTreeMap::from([("k".into(), vec![Some(1), None])]);
    round_trip(&disk, &files, &value);
    round_trip(&msgpack, &files, &value);
    round_trip(&json, &files, &value);
    let large: Vec<String> = (0..100).map(|i| format!("item {i}")).collect();
    for stored in [
        disk.store(&large, &files).unwrap(),
        msgpack.store(&large, &files).unwrap(),
        json.store(&large, &files).unwrap(),
    ] {
        assert!(
            stored.filename.is_some(),
            "large structured values go to files"
        );
    }
}

proptest! {
    #[test]
    fn records_round_trip(rec in record()) {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        let (disk, msgpack, json) = disks();
        round_trip(&disk, &files, &rec);
        round_trip(&msgpack, &files, &rec);
        round_trip(&json, &files, &rec);
    }

    #[test]
    fn primitive_keys_round_trip(s in ".*", b in proptest::collection::vec(any::<u8>(), 0..64), i in any::<i64>(), f in any::<f64>()) {
        let (disk, _, json) = disks();
        key_round_trip(&disk, &s);
        key_round_trip(&json, &s);
        key_round_trip(&disk, &b);
        key_round_trip(&disk, &i);
        if !f.is_nan() {
            key_round_trip(&disk, &f);
        }
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), mode in 0u8..8, raw in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        let (disk, msgpack, json) = disks();
        let stored = StoredRef { size: 0, mode: Mode(mode), filename: None, value: SqlRef::Blob(&bytes) };
        let _ = disk.fetch_value(stored, &files);
        let _ = disk.fetch::<Record>(stored, &files);
        let _ = msgpack.fetch::<Record>(stored, &files);
        let _ = json.fetch_value(stored, &files);
        let _ = json.fetch::<Record>(stored, &files);
        let _ = disk.get_value(SqlRef::Blob(&bytes), raw);
        let _ = json.get_value(SqlRef::Blob(&bytes), raw);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = disk.fetch_value(StoredRef { value: SqlRef::Text(text), ..stored }, &files);
        }
    }

    #[test]
    fn zlib_wrapped_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1));
        z.write_all(&bytes).unwrap();
        let compressed = z.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = FileStore::new(dir.path());
        let json = JsonDisk::new();
        let stored = StoredRef { size: 0, mode: Mode::RAW, filename: None, value: SqlRef::Blob(&compressed) };
        let _ = json.fetch_value(stored, &files);
        // Valid MessagePack framing with garbage inside.
        let mut packed = vec![0xc4, u8::try_from(bytes.len().min(255)).unwrap()];
        packed.extend_from_slice(&bytes[..bytes.len().min(255)]);
        let _ = MsgpackDisk::new().fetch::<Record>(StoredRef { mode: Mode::MSGPACK, value: SqlRef::Blob(&packed), ..stored }, &files);
    }
}

/// Deeply nested MessagePack is refused at pickle's depth limit (256), on a thread with the
/// default 2 MiB stack: rmp-serde's own limit (1024) let serde recurse deep enough to overflow
/// that stack in a debug build, aborting the process.
#[test]
fn deeply_nested_msgpack_is_a_decode_error_not_a_stack_overflow() {
    let decoded = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let files = FileStore::new("/nonexistent");
            let disk = MsgpackDisk::new();
            let mut results = Vec::new();
            for depth in [300usize, 1000, 100_000] {
                for nested in [vec![0x91u8; depth], [0x81u8, 0x00].repeat(depth)] {
                    let stored = StoredRef {
                        size: 0,
                        mode: Mode::MSGPACK,
                        filename: None,
                        value: SqlRef::Blob(&nested),
                    };
                    results.push((
                        depth,
                        disk.fetch_value(stored, &files).is_err(),
                        disk.fetch::<Vec<u8>>(stored, &files).is_err(),
                    ));
                }
            }
            results
        })
        .unwrap()
        .join()
        .unwrap();
    for (depth, value_err, typed_err) in decoded {
        assert!(value_err && typed_err, "nesting {depth} deep was accepted");
    }
    // Nesting within the limit still decodes.
    let files = FileStore::new("/nonexistent");
    let mut nested = vec![0x91u8; 200];
    nested.push(0x01);
    let stored = StoredRef {
        size: 0,
        mode: Mode::MSGPACK,
        filename: None,
        value: SqlRef::Blob(&nested),
    };
    assert!(MsgpackDisk::new().fetch_value(stored, &files).is_ok());
}
