//! Security: value file paths never come from keys; a row naming a file outside the cache
//! directory (with `..`, an absolute path, or through a symbolic link) is refused on read and
//! that file is never removed, whatever the operation; sub-collection names cannot leave the
//! directory; new files and directories follow the process umask.

mod reliability;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcache::CheckMode;
use dcache::cache::Error;
use dcache::disk::Error as DiskError;
use dcache::fanout::Error as FanoutError;
use dcache::{Cache, Deque, FanoutCache, Index, JsonDisk, ManualClock, SetOptions, Side};
use reliability::{child_command, figure};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every file and directory below `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Whether `rel` has python's value file layout: `hh/hh/<28 hex>.val`.
fn is_value_file_name(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    let b = s.as_bytes();
    b.len() == 38
        && b[2] == b'/'
        && b[5] == b'/'
        && s.ends_with(".val")
        && s[..34].chars().all(|c| c == '/' || c.is_ascii_hexdigit())
}

/// Asserts that `root` holds only `cache.db*`, `hh` and `hh/hh` directories and value files
/// named as python names them (below `NNN` shard directories when `sharded`).
fn check_layout(root: &Path, sharded: bool) {
    for rel in tree(root) {
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if sharded {
            let shard = parts.remove(0);
            assert!(
                shard.len() == 3 && shard.bytes().all(|b| b.is_ascii_digit()),
                "unexpected {}",
                rel.display()
            );
        }
        let hex2 = |p: &String| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit());
        let allowed = match parts.as_slice() {
            [] => true,
            [name] => name.starts_with("cache.db") || hex2(name),
            [a, b] => hex2(a) && hex2(b),
            [_, _, _] => is_value_file_name(&parts.iter().collect::<PathBuf>()),
            _ => false,
        };
        assert!(allowed, "unexpected file {}", root.join(&rel).display());
    }
}

const HOSTILE_KEYS: [&str; 8] = [
    "../../x",
    "../x.val",
    "/etc/passwd",
    "..",
    "a/../../b",
    "..\\..\\x",
    "ab/cd/0123456789abcdef0123456789ab.val",
    "cache.db",
];

#[test]
fn value_file_paths_never_come_from_keys() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let fanout_dir = parent.path().join("fanout");
    let json_dir = parent.path().join("json");
    let cache = Cache::builder().disk_min_file_size(16).open(&dir)?;
    let fanout = FanoutCache::builder()
        .cache(Cache::builder().disk_min_file_size(16))
        .open(&fanout_dir)?;
    let json = Cache::builder()
        .disk(JsonDisk::default())
        .disk_min_file_size(16)
        .open(&json_dir)?;
    let value = |i: usize| vec![u8::try_from(i).unwrap_or(0); 100];
    let mut tried = 0;
    for (i, key) in HOSTILE_KEYS.iter().enumerate() {
        cache.set(*key, value(i))?;
        cache.set(key.as_bytes(), value(i))?;
        cache.set((*key, "/", ".."), value(i))?;
        assert!(fanout.set(*key, value(i))?);
        json.set(*key, (0..40).map(|n| n * i).collect::<Vec<usize>>())?;
        tried += 5;
    }
    // Nothing next to the caches, and inside only python's layout.
    let mut top: Vec<_> = fs::read_dir(parent.path())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    top.sort();
    assert_eq!(top, ["cache", "fanout", "json"]);
    check_layout(&dir, false);
    check_layout(&json_dir, false);
    check_layout(&fanout_dir, true);
    for (i, key) in HOSTILE_KEYS.iter().enumerate() {
        assert_eq!(cache.get_bytes(*key)?, Some(value(i)), "{key}");
        assert_eq!(cache.get_bytes(key.as_bytes())?, Some(value(i)), "{key}");
        assert_eq!(fanout.get_bytes(*key)?, Some(value(i)), "{key}");
    }
    assert!(cache.check(CheckMode::Report)?.is_empty());
    assert!(json.check(CheckMode::Report)?.is_empty());
    figure("security", "hostile_keys_written", tried);
    Ok(())
}

/// A cache whose row `key` names `filename` instead of its own value file.
fn point_row_at(cache: &Cache, key: &str, filename: &str) -> TestResult {
    let conn = rusqlite::Connection::open(cache.directory().join("cache.db"))?;
    let changed = conn.execute(
        "UPDATE Cache SET filename = ?1 WHERE key = ?2",
        [filename, key],
    )?;
    assert_eq!(changed, 1);
    Ok(())
}

fn assert_refused<T: std::fmt::Debug>(result: &dcache::cache::Result<T>, what: &str) {
    assert!(
        matches!(result, Err(Error::Disk(DiskError::UnsafePath { .. }))),
        "{what}: {result:?}"
    );
}

#[test]
fn rows_naming_files_outside_the_directory_are_refused_and_the_files_survive() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let victim = parent.path().join("victim");
    fs::write(&victim, b"precious")?;
    let clock = std::sync::Arc::new(ManualClock::new(
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ));
    let cache = Cache::builder()
        .disk_min_file_size(4)
        .clock(clock.clone())
        .open(&dir)?;
    let absolute = victim.to_str().ok_or("path is not UTF-8")?.to_owned();
    let hostile = [
        "../victim".to_owned(),
        "ab/../../victim".to_owned(),
        "./../victim".to_owned(),
        "..\\victim".to_owned(),
        absolute.clone(),
        format!("//{absolute}"),
        "\\..\\victim".to_owned(),
    ];
    let mut cases = 0;
    for name in &hostile {
        // Reads refuse it.
        cache.set("k", vec![1u8; 8])?;
        point_row_at(&cache, "k", name)?;
        assert_refused(&cache.get::<Vec<u8>>("k"), "get");
        assert_refused(&cache.get_bytes("k"), "get_bytes");
        assert_refused(&cache.read("k"), "read");
        assert_refused(&cache.pop::<Vec<u8>>("k"), "pop");
        assert!(cache.contains("k")?, "a refused pop keeps the row");
        // Every operation that drops the row leaves the named file alone.
        let drops: [(&str, &dyn Fn() -> dcache::cache::Result<()>); 8] = [
            ("delete", &|| cache.delete("k").map(drop)),
            ("overwrite", &|| cache.set("k", 1)),
            ("clear", &|| cache.clear().map(drop)),
            ("evict", &|| cache.evict("t").map(drop)),
            ("expire", &|| {
                clock.advance(Duration::from_secs(10));
                cache.expire().map(drop)
            }),
            ("incr over an expired row", &|| {
                clock.advance(Duration::from_secs(10));
                cache.incr("k", 1).map(drop)
            }),
            ("cull", &|| {
                cache.reset("size_limit", 0)?;
                let culled = cache.cull().map(drop);
                cache.reset("size_limit", 1 << 30)?;
                culled
            }),
            ("check(fix)", &|| {
                cache.check_with(CheckMode::Fix, Duration::ZERO).map(drop)
            }),
        ];
        for (what, drop_row) in drops {
            cache.set_with(
                "k",
                vec![1u8; 8],
                SetOptions::new().tag("t").expire(Duration::from_secs(5)),
            )?;
            point_row_at(&cache, "k", name)?;
            drop_row()?;
            assert_eq!(fs::read(&victim)?, b"precious", "{what} with {name:?}");
            cases += 1;
        }
        // check reports the row, and fix drops it (never the file).
        cache.set("k", vec![1u8; 8])?;
        point_row_at(&cache, "k", name)?;
        // (The row's own value file is now an orphan: reported as unknown.)
        let warnings = cache.check(CheckMode::Report)?;
        assert!(
            warnings.contains(&dcache::Warning::UnsafePath {
                filename: name.clone()
            }) && warnings.iter().all(|w| matches!(
                w,
                dcache::Warning::UnsafePath { .. } | dcache::Warning::UnknownFile { .. }
            )),
            "{warnings:?}"
        );
        cache.check_with(CheckMode::Fix, Duration::ZERO)?;
        assert!(!cache.contains("k")?);
        assert!(cache.check(CheckMode::Report)?.is_empty());
        // A queue entry naming it: pull refuses and keeps it; clear drops it.
        cache.push(vec![2u8; 8])?;
        let conn = rusqlite::Connection::open(dir.join("cache.db"))?;
        conn.execute(
            "UPDATE Cache SET filename = ?1 WHERE filename IS NOT NULL",
            [name],
        )?;
        assert_refused(&cache.pull::<Vec<u8>>(None, Side::Front), "pull");
        assert_refused(&cache.peek::<Vec<u8>>(None, Side::Front), "peek");
        assert_eq!(cache.clear()?, 1);
        assert_eq!(fs::read(&victim)?, b"precious", "queue with {name:?}");
        cases += 1;
    }
    assert_eq!(fs::read(&victim)?, b"precious");
    figure("security", "hostile_filenames", hostile.len());
    figure("security", "operations_on_hostile_rows", cases);
    Ok(())
}

#[test]
fn a_symbolic_link_inside_the_directory_does_not_lead_outside() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    let outside = parent.path().join("outside");
    let cache = Cache::builder().disk_min_file_size(4).open(&dir)?;
    cache.set("k", vec![1u8; 8])?;
    let conn = rusqlite::Connection::open(dir.join("cache.db"))?;
    let name: String = conn.query_row("SELECT filename FROM Cache WHERE key = 'k'", [], |r| {
        r.get(0)
    })?;
    // The attacker replaces the first directory level with a link to `outside`, where a
    // victim sits at the row's remaining path.
    let first = name.split('/').next().ok_or("no directory in the name")?;
    let victim = outside.join(&name[3..]);
    fs::create_dir_all(victim.parent().ok_or("no parent")?)?;
    fs::write(&victim, b"precious")?; // 8 bytes: the size the row records
    fs::remove_dir_all(dir.join(first))?;
    std::os::unix::fs::symlink(&outside, dir.join(first))?;
    assert_refused(&cache.get_bytes("k"), "get through a link");
    assert_refused(&cache.read("k"), "read through a link");
    assert!(cache.delete("k")?);
    assert_eq!(fs::read(&victim)?, b"precious", "delete through a link");
    // A value file replaced by a link to a file outside: refused too.
    cache.set("k2", vec![1u8; 8])?;
    let name2: String = conn.query_row("SELECT filename FROM Cache WHERE key = 'k2'", [], |r| {
        r.get(0)
    })?;
    let secret = parent.path().join("secret");
    fs::write(&secret, b"12345678")?;
    fs::remove_file(dir.join(&name2))?;
    std::os::unix::fs::symlink(&secret, dir.join(&name2))?;
    assert_refused(&cache.get_bytes("k2"), "get of a linked file");
    assert!(cache.delete("k2")?);
    assert_eq!(fs::read(&secret)?, b"12345678");
    assert_eq!(fs::read(&victim)?, b"precious");
    Ok(())
}

#[test]
fn sub_collection_names_cannot_leave_the_directory() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("fanout");
    let fanout = FanoutCache::builder().shards(2).open(&dir)?;
    let before = tree(parent.path());
    let hostile = [
        "..",
        "../x",
        "../../x",
        "a/../../x",
        "a/..",
        "/abs",
        "/",
        ".",
        "./x",
        "",
        "a//b",
        "a/",
        "a\\..\\..\\x",
        "C:\\x",
        "x\0y",
    ];
    let invalid = |r: Result<(), FanoutError>, what: &str| {
        assert!(
            matches!(r, Err(FanoutError::InvalidName { .. })),
            "{what}: {r:?}"
        );
    };
    for name in hostile {
        invalid(fanout.cache(name).map(drop), name);
        invalid(fanout.deque::<i64>(name).map(drop), name);
        invalid(fanout.index::<String, i64>(name).map(drop), name);
    }
    assert_eq!(tree(parent.path()), before, "something was created");
    // Nested names stay below their kind's directory.
    fanout.cache("a/b")?.set("k", 1)?;
    assert!(dir.join("cache/a/b/cache.db").exists());
    figure(
        "security",
        "hostile_sub_collection_names",
        hostile.len() * 3,
    );
    Ok(())
}

// ----- modes -----

const UMASK_CHILD: &str = "DCACHE_TEST_UMASK_DIR";

/// The child: creates every kind of file dcache makes.
fn make_everything(dir: &Path) -> TestResult {
    let cache = Cache::builder()
        .disk_min_file_size(16)
        .open(dir.join("cache"))?;
    cache.set("inline", 1)?;
    cache.set("file", vec![1u8; 100])?;
    cache.set("text", "t".repeat(100))?;
    cache.push(vec![2u8; 100])?;
    let fanout = FanoutCache::builder()
        .shards(2)
        .cache(Cache::builder().disk_min_file_size(16))
        .open(dir.join("fanout"))?;
    assert!(fanout.set("k", vec![3u8; 100])?);
    fanout.cache("sub/nested")?.set("k", vec![4u8; 100])?;
    fanout
        .deque::<Vec<u8>>("jobs")?
        .push_back(&vec![5u8; 100])?;
    fanout.index::<String, i64>("names")?.insert("a", 1)?;
    Deque::<i64>::open(dir.join("deque"))?.push_back(&1)?;
    Index::<String, i64>::open(dir.join("index"))?.insert("a", 1)?;
    Ok(())
}

fn check_modes(umask: u32) -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("made");
    fs::create_dir(&dir)?;
    let status = child_command(
        "new_files_follow_the_umask",
        &[(UMASK_CHILD, dir.to_str().ok_or("path is not UTF-8")?)],
        Some(&format!("umask {umask:03o} &&")),
    )
    .status()?;
    assert!(status.success(), "the child failed under umask {umask:03o}");
    let mut files = 0;
    let mut dirs = 0;
    for rel in tree(&dir) {
        let path = dir.join(&rel);
        let meta = fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        assert_eq!(mode & 0o002, 0, "{} is world-writable", rel.display());
        if meta.is_dir() {
            assert_eq!(mode, 0o777 & !umask, "directory {}", rel.display());
            dirs += 1;
        } else {
            assert!(meta.is_file(), "{} is not a file", rel.display());
            // SQLite creates its files 0644, dcache its value files 0666, both less the umask.
            let base = if rel.to_string_lossy().contains("cache.db") {
                0o644
            } else {
                0o666
            };
            assert_eq!(mode, base & !umask, "file {}", rel.display());
            assert_eq!(meta.uid(), fs::metadata(&dir)?.uid());
            files += 1;
        }
    }
    assert!(
        files >= 12 && dirs >= 20,
        "{files} files, {dirs} directories"
    );
    figure(
        "security",
        &format!("umask_{umask:03o}_paths_checked"),
        files + dirs,
    );
    Ok(())
}

#[test]
fn new_files_follow_the_umask() -> TestResult {
    if let Some(dir) = std::env::var_os(UMASK_CHILD) {
        return make_everything(Path::new(&dir));
    }
    check_modes(0o022)?;
    check_modes(0o077)
}
