//! Hostile value files (docs/reliability.md, "Hostile value files"): rows naming the database, its
//! journal files, the top level of the directory or a directory; `hh` directories and value files
//! replaced by symbolic links, also while an operation runs; value files replaced by FIFOs, sockets
//! and directories; a sparse 1 TiB value file whose row agrees; values python pickles with shared
//! references. Every case is a typed error or the right value, in bounded time, and nothing outside
//! the value-file namespace is read, written or removed.
//!
//! Every operation that could block runs under [`within`], so a hang fails the test instead of
//! hanging the suite; every loop is bounded.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::path_str;
use dcache::cache::Error;
use dcache::disk::{Error as DiskError, FileStore};
use dcache::{Cache, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long an operation on a hostile file may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(20);

/// Runs `op` on its own thread; a result later than [`HANG`] fails the test (the stuck thread
/// dies with the test process).
fn within<T: Send + 'static>(what: &str, op: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only once the test has failed already.
        let _ = tx.send(op());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|e| panic!("{what} did not return within {HANG:?} ({e}): it blocks"))
}

/// A cache where every byte value of 4 bytes or more goes to a value file.
fn file_cache(dir: &Path) -> dcache::cache::Result<Cache> {
    Cache::builder().disk_min_file_size(4).open(dir)
}

/// The connection used to play the hostile writer.
fn sql(dir: &Path) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open(dir.join("cache.db"))
}

/// The stored `filename` of `key`.
fn filename_of(dir: &Path, key: &str) -> Result<String, Box<dyn std::error::Error>> {
    Ok(
        sql(dir)?.query_row("SELECT filename FROM Cache WHERE key = ?1", [key], |r| {
            r.get(0)
        })?,
    )
}

/// Points the row of `key` at `filename` (any text, NUL included).
fn point_row_at(dir: &Path, key: &str, filename: &str) -> TestResult {
    let changed = sql(dir)?.execute(
        "UPDATE Cache SET filename = ?1 WHERE key = ?2",
        [filename, key],
    )?;
    assert_eq!(changed, 1, "no row {key:?}");
    Ok(())
}

/// Whether `result` is one of the typed refusals of a hostile value file.
fn refused<T>(result: &dcache::cache::Result<T>) -> bool {
    matches!(
        result,
        Err(Error::Disk(
            DiskError::UnsafePath { .. }
                | DiskError::NotAValueFile { .. }
                | DiskError::NotAFile { .. }
        ))
    )
}

/// Every regular file below `dir` with its content, for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => {
                    let content = fs::read(&path).unwrap_or_default();
                    out.push((path, content));
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Item 1: stored names that are not value files.
// ---------------------------------------------------------------------------------------

#[test]
fn names_of_the_database_the_top_level_or_a_directory_are_refused_and_nothing_is_removed()
-> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let victim = parent.path().join("victim");
    fs::write(&victim, b"precious")?;
    let cache = file_cache(&dir)?;
    for i in 0..50 {
        cache.set(format!("keep{i}"), vec![7u8; 64])?;
    }
    // Things at the top level and a directory in the value-file namespace (not hex, so no
    // value file of the cache shares them).
    fs::write(dir.join("x"), b"top level")?;
    fs::create_dir_all(dir.join("zz/yy"))?;
    fs::write(dir.join("zz/yy/f"), b"inside a directory")?;
    let absolute = victim.to_str().ok_or("path is not UTF-8")?.to_owned();
    let hostile: Vec<String> = [
        "cache.db",
        "cache.db-wal",
        "cache.db-shm",
        "cache.db-journal",
        "./cache.db",
        "ab/../cache.db",
        "zz/cache.db",
        "x",
        "zz",
        "zz/yy",
        "",
        "zz//f",
        "zz/./yy/f",
        "zz/yy/f\0.val",
        "../victim",
        "..\\victim",
        &absolute,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // What is not the database or a value file of the cache must survive unchanged.
    let foreign = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        snapshot(dir)
            .into_iter()
            .filter(|(p, _)| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                !name.starts_with("cache.db") && !name.ends_with(".val")
            })
            .collect()
    };
    let before = foreign(&dir);
    assert_eq!(before.len(), 2);
    let mut cases = 0;
    for name in &hostile {
        // Reads refuse it, with a typed error, and keep the row.
        cache.set("k", vec![1u8; 8])?;
        point_row_at(&dir, "k", name)?;
        assert!(refused(&cache.get::<Vec<u8>>("k")), "get {name:?}");
        assert!(refused(&cache.get_bytes("k")), "get_bytes {name:?}");
        assert!(refused(&cache.read("k")), "read {name:?}");
        assert!(refused(&cache.pop::<Vec<u8>>("k")), "pop {name:?}");
        assert!(cache.contains("k")?, "a refused pop keeps the row");
        // Every operation that drops the row drops only the row.
        assert!(cache.delete("k")?, "delete {name:?}");
        cache.set("k", vec![1u8; 8])?;
        point_row_at(&dir, "k", name)?;
        cache.set("k", 1)?;
        cases += 1;
    }
    // The database is whole: a fresh handle reads every other entry.
    drop(cache);
    let cache = file_cache(&dir)?;
    for i in 0..50 {
        assert_eq!(cache.get_bytes(format!("keep{i}"))?, Some(vec![7u8; 64]));
    }
    // Clear with every hostile row at once.
    for (i, name) in hostile.iter().enumerate() {
        cache.set(format!("h{i}"), vec![1u8; 8])?;
        point_row_at(&dir, &format!("h{i}"), name)?;
    }
    cache.clear()?;
    assert_eq!(cache.len()?, 0);
    drop(cache);
    let cache = file_cache(&dir)?;
    cache.set("after", vec![3u8; 64])?;
    assert_eq!(cache.get_bytes("after")?, Some(vec![3u8; 64]));
    cache.delete("after")?;
    assert_eq!(fs::read(&victim)?, b"precious");
    assert_eq!(foreign(&dir), before);
    assert!(dir.join("zz/yy").is_dir() && dir.join("cache.db").is_file());
    eprintln!("figure hostile_files hostile_names_tried={cases}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Item 8: links at creation, reading and removal, and swapped in during an operation.
// ---------------------------------------------------------------------------------------

#[test]
fn new_value_files_never_go_through_planted_links() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let outside = parent.path().join("outside");
    fs::create_dir_all(&outside)?;
    let cache = file_cache(&dir)?;
    // A quarter of the first-level directories are links outside: writes that draw one of
    // them try a fresh name (a write fails only if ten names in a row do: 1 in 10^6).
    for i in (0..=255u8).step_by(4) {
        symlink(&outside, dir.join(format!("{i:02x}")))?;
    }
    for i in 0..200 {
        cache.set(i, vec![u8::try_from(i % 256)?; 100])?;
    }
    for i in 0..200 {
        assert_eq!(cache.get_bytes(i)?, Some(vec![u8::try_from(i % 256)?; 100]));
    }
    assert_eq!(
        fs::read_dir(&outside)?.count(),
        0,
        "a file was created outside"
    );
    // Every first-level directory a link: writes fail with a typed error, nothing outside.
    for i in (0..=255u8).filter(|i| i % 4 != 0) {
        let path = dir.join(format!("{i:02x}"));
        if path.exists() {
            fs::rename(&path, parent.path().join(format!("moved-{i:02x}")))?;
        }
        symlink(&outside, &path)?;
    }
    let result = cache.set("refused", vec![1u8; 100]);
    assert!(
        matches!(result, Err(Error::Disk(DiskError::UnsafePath { .. }))),
        "{result:?}"
    );
    assert_eq!(
        fs::read_dir(&outside)?.count(),
        0,
        "a file was created outside"
    );
    Ok(())
}

/// A cache with one value file, and a copy of its name's tail outside holding other bytes of
/// the same size. Returns (dir, outside dir, name, outside file).
fn value_and_decoy(
    parent: &Path,
) -> Result<(PathBuf, PathBuf, String, PathBuf), Box<dyn std::error::Error>> {
    let dir = parent.join("cache");
    let outside = parent.join("outside");
    let cache = file_cache(&dir)?;
    cache.set("k", b"real-value".as_slice())?;
    let name = filename_of(&dir, "k")?;
    let decoy = outside.join(&name[3..]);
    fs::create_dir_all(decoy.parent().ok_or("no parent")?)?;
    fs::write(&decoy, b"OUTSIDE!!!")?;
    Ok((dir, outside, name, decoy))
}

#[test]
fn links_planted_at_every_level_are_never_followed_to_read_or_delete() -> TestResult {
    for level in ["hh", "hh/hh", "file"] {
        let parent = tempfile::tempdir()?;
        let (dir, outside, name, decoy) = value_and_decoy(parent.path())?;
        let cache = file_cache(&dir)?;
        match level {
            "hh" => {
                fs::remove_dir_all(dir.join(&name[..2]))?;
                symlink(&outside, dir.join(&name[..2]))?;
            }
            "hh/hh" => {
                fs::remove_dir_all(dir.join(&name[..5]))?;
                symlink(outside.join(&name[3..5]), dir.join(&name[..5]))?;
            }
            _ => {
                fs::remove_file(dir.join(&name))?;
                symlink(&decoy, dir.join(&name))?;
            }
        }
        let got = cache.get_bytes("k");
        assert!(
            matches!(got, Err(Error::Disk(DiskError::UnsafePath { .. }))),
            "{level}: {got:?}"
        );
        assert!(refused(&cache.read("k")), "{level}");
        assert!(cache.delete("k")?);
        assert_eq!(
            fs::read(&decoy)?,
            b"OUTSIDE!!!",
            "{level}: the file outside was touched"
        );
        // A link to a device in the file's place is refused, never opened.
        cache.set("dev", b"0123456789".as_slice())?;
        let dev = filename_of(&dir, "dev")?;
        fs::remove_file(dir.join(&dev))?;
        symlink("/dev/zero", dir.join(&dev))?;
        let dir2 = dir.clone();
        let got = within("get_bytes of a link to /dev/zero", move || {
            file_cache(&dir2).and_then(|c| c.get_bytes("dev"))
        });
        assert!(
            matches!(got, Err(Error::Disk(DiskError::UnsafePath { .. }))),
            "{got:?}"
        );
    }
    Ok(())
}

/// Swaps `dir/hh` between the real directory and a link to `outside` until `stop`, at most
/// `rounds` times; returns the number of swaps.
fn swapper(
    hh: PathBuf,
    outside: PathBuf,
    stop: Arc<AtomicBool>,
    rounds: usize,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let real = hh.with_extension("real");
        let mut swaps = 0;
        for _ in 0..rounds {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if fs::rename(&hh, &real).is_err() {
                continue;
            }
            if symlink(&outside, &hh).is_ok() {
                swaps += 1;
                std::thread::yield_now();
                let _ = fs::remove_file(&hh);
            }
            // Put the real directory back (retrying a bounded number of times).
            for _ in 0..100 {
                if fs::rename(&real, &hh).is_ok() {
                    break;
                }
            }
        }
        swaps
    })
}

#[test]
fn a_link_swapped_in_during_reads_and_removes_never_reaches_outside() -> TestResult {
    let parent = tempfile::tempdir()?;
    let (dir, outside, name, decoy) = value_and_decoy(parent.path())?;
    // Keep `hh/hh` from being pruned when its value file goes.
    fs::write(dir.join(&name[..5]).join("keep"), b"")?;
    let files = FileStore::new(&dir);
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(
        dir.join(&name[..2]),
        outside.clone(),
        stop.clone(),
        1_000_000,
    );
    let (mut real, mut refused_reads, mut missing) = (0, 0, 0);
    for _ in 0..5_000 {
        match files.read(&name, 10) {
            Ok(bytes) => {
                assert_eq!(bytes, b"real-value", "read a file outside the directory");
                real += 1;
            }
            Err(DiskError::UnsafePath { .. }) => refused_reads += 1,
            Err(DiskError::MissingFile { .. }) => missing += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let mut removes = 0;
    for _ in 0..5_000 {
        match files.remove(&name) {
            Ok(()) | Err(DiskError::UnsafePath { .. } | DiskError::Io { .. }) => removes += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(
            decoy.exists(),
            "remove unlinked the file outside the directory"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().map_err(|_| "swapper panicked")?;
    assert_eq!(fs::read(&decoy)?, b"OUTSIDE!!!");
    eprintln!(
        "figure hostile_files swaps={swaps} reads_real={real} reads_refused={refused_reads} \
         reads_missing={missing} removes={removes}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Item 7: value files that are not regular files.
// ---------------------------------------------------------------------------------------

/// Replaces the value file of `key` with a FIFO.
fn make_fifo(dir: &Path, key: &str) -> TestResult {
    let path = dir.join(filename_of(dir, key)?);
    fs::remove_file(&path)?;
    let status = std::process::Command::new("mkfifo").arg(&path).status()?;
    assert!(status.success(), "mkfifo failed");
    Ok(())
}

fn is_not_a_file<T>(result: &dcache::cache::Result<T>, expected: &str) -> bool {
    matches!(result, Err(Error::Disk(DiskError::NotAFile { kind, .. })) if *kind == expected)
}

#[test]
fn a_fifo_in_place_of_a_value_file_never_blocks_any_read() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    // Statistics on: a read is a write transaction, where a blocked read would stall every
    // writer.
    let cache = Cache::builder()
        .disk_min_file_size(4)
        .statistics(true)
        .open(&dir)?;
    cache.set("k", vec![1u8; 64])?;
    cache.set("p", vec!["a pickled list".to_owned(); 8])?;
    cache.push(vec![2u8; 64])?;
    make_fifo(&dir, "k")?;
    make_fifo(&dir, "p")?;
    let (c, d) = (cache.clone(), dir.clone());
    let queued: String = sql(&dir)?.query_row(
        "SELECT filename FROM Cache WHERE typeof(key) = 'integer'",
        [],
        |r| r.get(0),
    )?;
    fs::remove_file(d.join(&queued))?;
    assert!(
        std::process::Command::new("mkfifo")
            .arg(d.join(&queued))
            .status()?
            .success()
    );
    let r = within("get_bytes", move || c.get_bytes("k"));
    assert!(is_not_a_file(&r, "FIFO"), "get_bytes: {r:?}");
    let c = cache.clone();
    let r = within("get", move || c.get::<Vec<u8>>("k"));
    assert!(is_not_a_file(&r, "FIFO"), "get: {r:?}");
    let c = cache.clone();
    let r = within("get of a pickle", move || c.get::<Value>("p"));
    assert!(is_not_a_file(&r, "FIFO"), "get pickle: {r:?}");
    let c = cache.clone();
    let r = within("read", move || c.read("k").map(|r| r.is_some()));
    assert!(is_not_a_file(&r, "FIFO"), "read: {r:?}");
    let c = cache.clone();
    let r = within("pop", move || c.pop::<Vec<u8>>("k"));
    assert!(is_not_a_file(&r, "FIFO"), "pop: {r:?}");
    let c = cache.clone();
    let r = within("pull", move || c.pull::<Vec<u8>>(None, dcache::Side::Front));
    assert!(is_not_a_file(&r, "FIFO"), "pull: {r:?}");
    let c = cache.clone();
    let items = within(
        "items",
        move || -> dcache::cache::Result<Vec<dcache::cache::Result<(Value, Value)>>> {
            Ok(c.items::<Value, Value>()?.take(100).collect())
        },
    )?;
    assert!(
        items.iter().any(|r| is_not_a_file(r, "FIFO")),
        "items: {items:?}"
    );
    // A FIFO in place of a directory of value files: refused as not a directory, at once.
    cache.set("in-fifo-dir", vec![4u8; 64])?;
    let name = filename_of(&dir, "in-fifo-dir")?;
    fs::rename(dir.join(&name[..2]), parent.path().join("moved"))?;
    assert!(
        std::process::Command::new("mkfifo")
            .arg(dir.join(&name[..2]))
            .status()?
            .success()
    );
    let c = cache.clone();
    let r = within("get_bytes through a FIFO directory", move || {
        c.get_bytes("in-fifo-dir")
    });
    assert!(
        matches!(&r, Err(Error::Disk(DiskError::Io { source, .. })) if source.to_string().contains("FIFO")),
        "{r:?}"
    );
    let c = cache.clone();
    within("delete through a FIFO directory", move || {
        c.delete("in-fifo-dir")
    })?;
    // Nothing is stuck holding the write lock: another handle writes at once.
    let d = dir.clone();
    within("a write from another handle", move || {
        Cache::builder()
            .timeout(Duration::from_secs(5))
            .open(&d)
            .and_then(|c| c.set("other", 1))
    })?;
    Ok(())
}

#[test]
fn sockets_and_directories_in_place_of_value_files_are_refused() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let cache = file_cache(&dir)?;
    cache.set("sock", vec![1u8; 64])?;
    cache.set("dir", vec![1u8; 64])?;
    let sock = dir.join(filename_of(&dir, "sock")?);
    fs::remove_file(&sock)?;
    let _listener = std::os::unix::net::UnixListener::bind(&sock)?;
    let sub = dir.join(filename_of(&dir, "dir")?);
    fs::remove_file(&sub)?;
    fs::create_dir(&sub)?;
    fs::write(sub.join("inside"), b"kept")?;
    let c = cache.clone();
    let r = within("get_bytes of a socket", move || c.get_bytes("sock"));
    assert!(is_not_a_file(&r, "socket"), "{r:?}");
    let c = cache.clone();
    let r = within("read of a socket", move || {
        c.read("sock").map(|r| r.is_some())
    });
    assert!(is_not_a_file(&r, "socket"), "{r:?}");
    let r = cache.get_bytes("dir");
    assert!(is_not_a_file(&r, "directory"), "{r:?}");
    // Deleting the row leaves the directory and what it holds.
    assert!(cache.delete("dir")?);
    assert_eq!(fs::read(sub.join("inside"))?, b"kept");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Item 6: sizes from the row and the file system.
// ---------------------------------------------------------------------------------------

#[test]
fn a_sparse_terabyte_value_file_is_a_typed_error_not_an_abort() -> TestResult {
    const TIB: u64 = 1 << 40;
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let cache = file_cache(&dir)?;
    cache.set("bytes", vec![1u8; 64])?;
    cache.set("pickle", vec!["x".repeat(100); 10])?;
    for key in ["bytes", "pickle"] {
        let path = dir.join(filename_of(&dir, key)?);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(TIB)?;
        sql(&dir)?.execute(
            "UPDATE Cache SET size = ?1 WHERE key = ?2",
            (i64::try_from(TIB)?, key),
        )?;
    }
    let r = cache.get_bytes("bytes");
    assert!(too_large(&r), "get_bytes: {r:?}");
    let r = cache.get::<Vec<u8>>("bytes");
    assert!(too_large(&r), "get: {r:?}");
    let r = cache.get::<Value>("pickle");
    assert!(too_large(&r), "get pickle: {r:?}");
    let r = cache.pop::<Vec<u8>>("bytes");
    assert!(too_large(&r), "pop: {r:?}");
    let items: Vec<_> = cache.items::<Value, Value>()?.take(10).collect();
    assert!(items.iter().any(too_large), "items: {items:?}");
    // Streaming reads it, in bounded memory.
    let mut reader = cache.read("bytes")?.ok_or("no value")?;
    let mut head = vec![1u8; 1 << 20];
    reader.read_exact(&mut head)?;
    assert_eq!(head[..64], [1u8; 64]);
    assert!(head[64..].iter().all(|&b| b == 0));
    Ok(())
}

/// Whether `r` is the refusal of a 1 TiB value read into memory.
fn too_large<T>(r: &dcache::cache::Result<T>) -> bool {
    matches!(
        r,
        Err(Error::Disk(DiskError::TooLarge { size, .. })) if *size == 1 << 40
    )
}

// ---------------------------------------------------------------------------------------
// Item 9: python's shared references.
// ---------------------------------------------------------------------------------------

#[test]
fn values_python_pickles_with_shared_references_are_read_and_bombs_refused() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    py.run(
        r"
import sys, diskcache
c = diskcache.Cache(sys.argv[1])
s = 'x' * 100_000
c['strings'] = [s] * 1000
d = {str(i): i for i in range(100)}
c['dicts'] = [d] * 2000
t = (1, 'two', b'three')
c['tuples'] = {'a': [t] * 500, 'b': [t] * 500}
bomb = ['a']
for _ in range(40):
    bomb = [bomb, bomb]
c['bomb'] = bomb
c.close()
",
        &[path_str(dir.path())],
        "",
    );
    let cache = Cache::open(dir.path())?;
    let strings: Vec<String> = cache.get("strings")?.ok_or("missing")?;
    assert_eq!(strings.len(), 1000);
    assert!(
        strings
            .iter()
            .all(|s| s.len() == 100_000 && s.bytes().all(|b| b == b'x'))
    );
    let dicts: Vec<std::collections::BTreeMap<String, i64>> =
        cache.get("dicts")?.ok_or("missing")?;
    assert_eq!(dicts.len(), 2000);
    assert!(dicts.iter().all(|d| d.len() == 100 && d["42"] == 42));
    let Some(Value::Dict(tuples)) = cache.get::<Value>("tuples")? else {
        panic!("not a dict");
    };
    assert_eq!(tuples.len(), 2);
    // 2^40 leaves: python shares them; dcache refuses with a clear error, quickly.
    let start = std::time::Instant::now();
    let bomb = cache.get::<Value>("bomb");
    assert!(
        matches!(&bomb, Err(Error::Disk(DiskError::Decode { reason, .. })) if reason.contains("far larger")),
        "{bomb:?}"
    );
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    eprintln!(
        "figure hostile_files memo_bomb_refused_in_ms={}",
        took.as_millis()
    );
    Ok(())
}
