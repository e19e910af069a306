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

/// A newtype around bytes, as applications wrap them.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Image(Vec<u8>);

/// Reads `stored` back as every byte type and checks each against `expected`.
fn reads_as_every_byte_type<D: DiskFormat>(
    disk: &D,
    files: &FileStore,
    stored: StoredRef<'_>,
    expected: &[u8],
) {
    let vec: Vec<u8> = disk.fetch(stored, files).unwrap();
    assert!(vec == expected, "Vec<u8>");
    let boxed: Box<[u8]> = disk.fetch(stored, files).unwrap();
    assert!(&*boxed == expected, "Box<[u8]>");
    let cow: std::borrow::Cow<'static, [u8]> = disk.fetch(stored, files).unwrap();
    assert!(&*cow == expected, "Cow<[u8]>");
    let buf: serde_bytes::ByteBuf = disk.fetch(stored, files).unwrap();
    assert!(buf.as_slice() == expected, "serde_bytes::ByteBuf");
    let shared: bytes::Bytes = disk.fetch(stored, files).unwrap();
    assert!(&shared[..] == expected, "bytes::Bytes");
    let image: Image = disk.fetch(stored, files).unwrap();
    assert!(image.0 == expected, "a newtype around Vec<u8>");
    let deque: std::collections::VecDeque<u8> = disk.fetch(stored, files).unwrap();
    assert!(
        deque.iter().eq(expected.iter()),
        "VecDeque<u8> (serde's path)"
    );
    let some: Option<Vec<u8>> = disk.fetch(stored, files).unwrap();
    assert!(some.as_deref() == Some(expected), "Option<Vec<u8>>");
    let value = disk.fetch_value(stored, files).unwrap();
    assert!(
        value == dcache_disk::Value::Bytes(expected.to_vec()),
        "Value"
    );
    assert!(
        disk.fetch::<Vec<i8>>(stored, files)
            .is_err_and(|e| matches!(e, dcache_disk::Error::WrongType { .. }))
            || expected.iter().all(|&b| b < 128),
        "bytes above 127 are no i8"
    );
    assert!(disk.fetch::<String>(stored, files).is_ok() == std::str::from_utf8(expected).is_ok());
}

/// Stores `bytes` as every byte type through `disk` and reads each back as every byte type.
fn byte_types_round_trip<D: DiskFormat>(disk: &D, files: &FileStore, bytes: &[u8]) {
    let slice: &[u8] = bytes;
    let vec = bytes.to_vec();
    let boxed: Box<[u8]> = vec.clone().into_boxed_slice();
    let cow = std::borrow::Cow::Borrowed(slice);
    let shared = bytes::Bytes::from(vec.clone());
    let byte_buf = serde_bytes::ByteBuf::from(vec.clone());
    let image = Image(vec.clone());
    let array: Option<[u8; 5]> = bytes.try_into().ok();
    let check = |what: &str, stored: dcache_disk::Stored| {
        let expected = stores_as_bytes_checked(&stored, files, bytes, what);
        reads_as_every_byte_type(disk, files, stored.as_ref(), expected);
        if let Some(name) = &stored.filename {
            files.remove(name).unwrap();
        }
    };
    check("[u8]", disk.store(slice, files).unwrap());
    check("&[u8]", disk.store(&slice, files).unwrap());
    check("&&[u8]", disk.store(&&slice, files).unwrap());
    check("Vec<u8>", disk.store(&vec, files).unwrap());
    check("&Vec<u8>", disk.store(&&vec, files).unwrap());
    check("&&Vec<u8>", disk.store(&&&vec, files).unwrap());
    check("Box<[u8]>", disk.store(&boxed, files).unwrap());
    check("&Box<[u8]>", disk.store(&&boxed, files).unwrap());
    check("Cow<[u8]>", disk.store(&cow, files).unwrap());
    check("&Cow<[u8]>", disk.store(&&cow, files).unwrap());
    check("bytes::Bytes", disk.store(&shared, files).unwrap());
    check("&bytes::Bytes", disk.store(&&shared, files).unwrap());
    check(
        "serde_bytes::Bytes",
        disk.store(serde_bytes::Bytes::new(slice), files).unwrap(),
    );
    check(
        "serde_bytes::ByteBuf",
        disk.store(&byte_buf, files).unwrap(),
    );
    check("Image(Vec<u8>)", disk.store(&image, files).unwrap());
    if let Some(array) = array {
        check("[u8; 5]", disk.store(&array, files).unwrap());
    }
}

/// The checks of [`stores_as_bytes`] on an already stored value; returns `expected`.
fn stores_as_bytes_checked<'a>(
    stored: &dcache_disk::Stored,
    files: &FileStore,
    expected: &'a [u8],
    what: &str,
) -> &'a [u8] {
    if (expected.len() as u64) < MIN {
        assert_eq!(stored.mode, Mode::RAW, "{what}");
        assert_eq!(stored.filename, None, "{what}");
        assert_eq!(
            stored.value,
            dcache_disk::SqlValue::Blob(expected.to_vec()),
            "{what}"
        );
    } else {
        assert_eq!(stored.mode, Mode::BINARY, "{what}");
        assert_eq!(stored.size, expected.len() as u64, "{what}");
        let name = stored.filename.as_deref().expect("a value file");
        let on_disk = std::fs::read(files.resolve(name).unwrap()).unwrap();
        assert!(on_disk == expected, "{what}: file contents");
    }
    expected
}

#[test]
fn every_byte_type_is_stored_as_python_bytes_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let (disk, msgpack, _) = disks();
    // Empty, inline, just below and at the file threshold, and large.
    for len in [0, 5, MIN as usize - 1, MIN as usize, 100_000] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        byte_types_round_trip(&disk, &files, &bytes);
        byte_types_round_trip(&msgpack, &files, &bytes);
    }
}

#[test]
fn an_empty_sequence_value_is_an_empty_list_unless_it_is_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    let (disk, msgpack, _) = disks();
    // Python `[]` (a pickle), as it is inside a structure; an empty `Vec<u8>` stays `b''`.
    let stored = disk.store(&Vec::<String>::new(), &files).unwrap();
    assert_eq!(stored.mode, Mode::PICKLE);
    assert_eq!(
        disk.fetch_value(stored.as_ref(), &files).unwrap(),
        dcache_disk::Value::List(vec![])
    );
    let back: Vec<String> = disk.fetch(stored.as_ref(), &files).unwrap();
    assert!(back.is_empty());
    let stored = msgpack.store(&Vec::<i64>::new(), &files).unwrap();
    assert_eq!(stored.mode, Mode::MSGPACK);
    let back: Vec<i64> = msgpack.fetch(stored.as_ref(), &files).unwrap();
    assert!(back.is_empty());
    for stored in [
        disk.store(&Vec::<u8>::new(), &files).unwrap(),
        disk.store(&b""[..], &files).unwrap(),
    ] {
        assert_eq!(stored.mode, Mode::RAW);
        assert_eq!(stored.value, dcache_disk::SqlValue::Blob(vec![]));
    }
    // Rows written before (an empty `Vec<String>` stored as `b''`) still read as empty.
    let old: Vec<String> = disk
        .fetch(
            StoredRef {
                size: 0,
                mode: Mode::RAW,
                filename: None,
                value: SqlRef::Blob(b""),
            },
            &files,
        )
        .unwrap();
    assert!(old.is_empty());
    // Keys keep python's `b''` for any empty sequence (an empty `&[u8]` key must match it).
    let key = disk.put(&Vec::<String>::new()).unwrap();
    assert_eq!(key.value, dcache_disk::SqlValue::Blob(vec![]));
    assert!(key.raw);
}
