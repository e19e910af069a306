//! Bad input the core suite (`crates/dcache-core/tests/bad_input.rs`) does not cover: value
//! files replaced behind the cache's back, and a full disk. Each case asserts the typed error
//! (or python's documented miss) and that every other entry survives.

mod reliability;

use std::fs;
use std::path::{Path, PathBuf};

use dcache::CheckMode;
use dcache::cache::Error;
use dcache::disk::{Error as DiskError, Format};
use dcache::{Cache, JsonDisk, MsgpackDisk, Warning};
use reliability::{child_command, figure};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The value file of `key` (a string key), as stored in its row.
fn file_of(dir: &Path, key: &str) -> Result<(String, PathBuf), Box<dyn std::error::Error>> {
    let conn = rusqlite::Connection::open(dir.join("cache.db"))?;
    let name: String = conn.query_row("SELECT filename FROM Cache WHERE key = ?1", [key], |r| {
        r.get(0)
    })?;
    let path = dir.join(&name);
    Ok((name, path))
}

/// Writes a few entries every test checks survive the damage done to another.
fn bystanders(cache: &Cache) -> dcache::cache::Result<()> {
    cache.set("inline", 5)?;
    cache.set("file", vec![3u8; 100])?;
    cache.set("pickled", ("kept", 1, vec!["a".repeat(40)]))
}

fn assert_bystanders(cache: &Cache) -> TestResult {
    assert_eq!(cache.get::<i64>("inline")?, Some(5));
    assert_eq!(cache.get_bytes("file")?, Some(vec![3u8; 100]));
    assert_eq!(
        cache.get::<(String, i64, Vec<String>)>("pickled")?,
        Some(("kept".to_owned(), 1, vec!["a".repeat(40)]))
    );
    Ok(())
}

#[test]
fn a_value_file_replaced_by_one_of_another_size_reads_as_a_miss() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(16).open(dir.path())?;
    bystanders(&cache)?;
    let mut tried = 0;
    for (key, new_len) in [("shorter", 60usize), ("longer", 150), ("emptied", 0)] {
        cache.set(key, vec![1u8; 100])?;
        let (name, path) = file_of(dir.path(), key)?;
        fs::write(&path, vec![9u8; new_len])?;
        // The file store reports the damage as a typed error...
        match cache.files().read(&name, 100) {
            Err(DiskError::SizeMismatch {
                expected: 100,
                actual,
                ..
            }) if actual == new_len as u64 => {}
            other => panic!("{key}: {other:?}"),
        }
        // ...which the cache reads as a miss, as python does (a warning goes to the log).
        assert_eq!(cache.get_bytes(key)?, None, "{key}");
        assert_eq!(cache.get::<Vec<u8>>(key)?, None, "{key}");
        assert!(cache.read(key)?.is_none(), "{key}");
        assert!(
            cache.contains(key)?,
            "{key}: the row stays until check(fix)"
        );
        // check names it precisely.
        let warnings = cache.check(CheckMode::Report)?;
        assert_eq!(
            warnings,
            [Warning::WrongSize {
                path: path.clone(),
                actual: new_len as u64,
                recorded: 100
            }],
            "{key}"
        );
        assert_bystanders(&cache)?;
        // pop drops the damaged entry (a miss) and nothing else.
        assert_eq!(cache.pop::<Vec<u8>>(key)?, None, "{key}");
        assert!(!cache.contains(key)?, "{key}");
        assert!(cache.check(CheckMode::Report)?.is_empty(), "{key}");
        tried += 1;
    }
    assert_bystanders(&cache)?;
    figure("bad-input", "value_files_resized", tried);
    Ok(())
}

#[test]
fn a_value_file_replaced_by_garbage_of_the_same_size_is_a_decode_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(16).open(dir.path())?;
    bystanders(&cache)?;
    let garble = |key: &str, byte: u8| -> Result<(), Box<dyn std::error::Error>> {
        let (_, path) = file_of(dir.path(), key)?;
        let len = fs::metadata(&path)?.len() as usize;
        fs::write(&path, vec![byte; len])?;
        Ok(())
    };

    // A pickled value: the pickle decoder refuses it.
    cache.set("struct", ("a".repeat(50), 7))?;
    garble("struct", 0xff)?;
    match cache.get::<(String, i64)>("struct") {
        Err(Error::Disk(DiskError::Decode {
            format: Format::Pickle,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    // A text value: no longer UTF-8.
    cache.set("text", "é".repeat(40))?;
    garble("text", 0xc3)?;
    let err = cache.get::<String>("text").unwrap_err();
    assert!(
        matches!(err, Error::Disk(DiskError::Decode { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    // A bytes value replaced by other bytes of the same length cannot be told apart: python's
    // format stores no checksum. The cache returns what the file holds.
    cache.set("bytes", vec![1u8; 64])?;
    garble("bytes", 2)?;
    assert_eq!(cache.get_bytes("bytes")?, Some(vec![2u8; 64]));
    assert_bystanders(&cache)?;
    // check does not read contents, so it reports nothing: sizes match.
    assert!(cache.check(CheckMode::Report)?.is_empty());

    // MessagePack and JSON+zlib value files.
    let msgpack_dir = tempfile::tempdir()?;
    let msgpack = Cache::builder()
        .disk(MsgpackDisk::default())
        .disk_min_file_size(16)
        .open(msgpack_dir.path())?;
    msgpack.set("record", ("b".repeat(50), 1))?;
    msgpack.set("other", ("c".repeat(50), 2))?;
    let (_, path) = file_of(msgpack_dir.path(), "record")?;
    fs::write(&path, vec![0xc1; fs::metadata(&path)?.len() as usize])?; // 0xc1: never used
    match msgpack.get::<(String, i64)>("record") {
        Err(Error::Disk(DiskError::Decode {
            format: Format::MessagePack,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        msgpack.get::<(String, i64)>("other")?,
        Some(("c".repeat(50), 2))
    );

    let json_dir = tempfile::tempdir()?;
    let json = Cache::builder()
        .disk(JsonDisk::default())
        .disk_min_file_size(16)
        .open(json_dir.path())?;
    let record = |seed: u64| -> Vec<u64> { (seed..seed + 40).map(|i| i * 7919).collect() };
    json.set("record", record(1))?;
    json.set("other", record(2))?;
    let conn = rusqlite::Connection::open(json_dir.path().join("cache.db"))?;
    let name: String = conn.query_row(
        "SELECT filename FROM Cache WHERE filename IS NOT NULL ORDER BY rowid LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    let path = json_dir.path().join(name);
    fs::write(&path, vec![0x78; fs::metadata(&path)?.len() as usize])?;
    match json.get::<Vec<u64>>("record") {
        Err(Error::Disk(DiskError::Decode {
            format: Format::Zlib,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(json.get::<Vec<u64>>("other")?, Some(record(2)));
    figure("bad-input", "value_files_garbled", 5);
    Ok(())
}

// ----- a full disk -----

const FULL_CHILD: &str = "DCACHE_TEST_FULL_DISK_DIR";
/// `ulimit -f` counts 512-byte blocks in POSIX `sh` (1024 in bash): 1 or 2 MiB.
const FSIZE_BLOCKS: u32 = 2048;
const EARLIER: usize = 60;
const INLINE_LEN: usize = 2000;

fn early_value(i: usize) -> Vec<u8> {
    // Every third one goes to a value file.
    let len = if i.is_multiple_of(3) { 6000 } else { 200 };
    reliability::payload(len, i as u64)
}

fn late_value(i: usize) -> Vec<u8> {
    reliability::payload(INLINE_LEN, 1_000_000 + i as u64)
}

/// The file size limit of this process, from `/proc/self/limits`.
fn file_size_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max file size"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn count_value_files(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.extension().is_some_and(|e| e == "val") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

/// The child: runs under `ulimit -f` with SIGXFSZ ignored, so writes past the limit fail with
/// `EFBIG` instead of killing the process.
fn full_disk_child(dir: &Path) -> TestResult {
    let limit =
        file_size_limit().ok_or("no file size limit: the child must run under ulimit -f")?;
    assert!(limit <= 4 << 20, "file size limit {limit}");
    let cache = Cache::builder().disk_min_file_size(4096).open(dir)?;
    for i in 0..EARLIER {
        assert_eq!(cache.get_bytes(format!("early{i}"))?, Some(early_value(i)));
    }
    // A value file larger than the limit: an I/O error naming the file, and no partial file.
    let files_before = count_value_files(dir);
    let err = cache
        .set("too-big", vec![7u8; limit as usize + 4096])
        .unwrap_err();
    match &err {
        Error::Disk(DiskError::Io { source, .. }) if source.raw_os_error() == Some(27) => {} // EFBIG
        other => panic!("a value file past the size limit: {other:?}"),
    }
    println!("@@ file-error {err}");
    assert_eq!(
        count_value_files(dir),
        files_before,
        "a partial file was left"
    );
    assert_eq!(cache.get_bytes("too-big")?, None);

    // Inline values until the database cannot grow any more.
    let mut written = 0;
    let err = loop {
        match cache.set(format!("late{written}"), &late_value(written)[..]) {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(
            written < 100_000,
            "writes never failed under a {limit}-byte limit"
        );
    };
    match &err {
        Error::WriteFailed { source, .. } => {
            // SQLITE_FULL for ENOSPC; a file size limit gives EFBIG, SQLITE_IOERR_WRITE.
            assert!(matches!(source.code(), Some(13 | 778)), "{err:?}");
        }
        other => panic!("a database write past the size limit: {other:?}"),
    }
    println!("@@ db-error {err}");
    println!("@@ written {written}");
    // The failed write left nothing; everything before it reads back.
    assert_eq!(cache.get_bytes(format!("late{written}"))?, None);
    for i in 0..written {
        assert_eq!(cache.get_bytes(format!("late{i}"))?, Some(late_value(i)));
    }
    for i in 0..EARLIER {
        assert_eq!(cache.get_bytes(format!("early{i}"))?, Some(early_value(i)));
    }
    Ok(())
}

#[test]
fn a_full_disk_fails_writes_with_a_typed_error_and_loses_nothing() -> TestResult {
    if let Some(dir) = std::env::var_os(FULL_CHILD) {
        return full_disk_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir()?;
    {
        let cache = Cache::builder().disk_min_file_size(4096).open(dir.path())?;
        for i in 0..EARLIER {
            cache.set(format!("early{i}"), &early_value(i)[..])?;
        }
    }
    let output = child_command(
        "a_full_disk_fails_writes_with_a_typed_error_and_loses_nothing",
        &[(FULL_CHILD, dir.path().to_str().ok_or("path is not UTF-8")?)],
        Some(&format!(r#"ulimit -f {FSIZE_BLOCKS} && trap "" XFSZ &&"#)),
    )
    .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let messages: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, m)| m))
        .collect();
    let written: usize = messages
        .iter()
        .find_map(|m| m.strip_prefix("written "))
        .ok_or("the child reported no count")?
        .parse()?;
    for m in &messages {
        eprintln!("child: {m}");
    }
    // Without the limit: everything acknowledged is there, and the cache is consistent.
    let cache = Cache::builder().disk_min_file_size(4096).open(dir.path())?;
    for i in 0..EARLIER {
        assert_eq!(cache.get_bytes(format!("early{i}"))?, Some(early_value(i)));
    }
    for i in 0..written {
        assert_eq!(cache.get_bytes(format!("late{i}"))?, Some(late_value(i)));
    }
    assert_eq!(cache.get_bytes(format!("late{written}"))?, None);
    assert_eq!(cache.get_bytes("too-big")?, None);
    assert_eq!(cache.len()?, (EARLIER + written) as u64);
    let warnings = cache.check(CheckMode::Report)?;
    assert!(warnings.is_empty(), "{warnings:?}");
    // And it takes writes again.
    cache.set("after", 1)?;
    figure("bad-input", "full_disk_entries_verified", EARLIER + written);
    Ok(())
}
