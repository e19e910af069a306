//! Hostile directories and misuse: another program's database, files that are not regular
//! files, links, paths SQLite cannot take, files deleted under a live cache, panics inside
//! transactions. Each case is a typed error, and nothing committed is lost or touched.

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use dcache_core::{Cache, Error};
use dcache_core::{CheckMode, Order, Side};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn table_count(db: &Path) -> rusqlite::Result<i64> {
    rusqlite::Connection::open(db)?
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
}

#[test]
fn a_foreign_database_with_a_settings_table_is_refused_untouched() -> TestResult {
    for ddl in [
        // Another application's key/value settings.
        "CREATE TABLE Settings (key TEXT NOT NULL UNIQUE, value); \
         INSERT INTO Settings VALUES ('theme', 'dark'); \
         CREATE TABLE Users (id INTEGER, name TEXT)",
        // The same shape with only application keys.
        "CREATE TABLE Settings (key TEXT NOT NULL UNIQUE, value); \
         INSERT INTO Settings VALUES ('window_width', 800)",
        // A Settings table of another shape.
        "CREATE TABLE Settings (id INTEGER PRIMARY KEY, name TEXT, value TEXT)",
        // Cache settings names, but next to tables of another application.
        "CREATE TABLE Settings (key TEXT NOT NULL UNIQUE, value); \
         INSERT INTO Settings VALUES ('size_limit', 100); \
         CREATE TABLE Orders (id INTEGER)",
    ] {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("cache.db");
        rusqlite::Connection::open(&db)?.execute_batch(ddl)?;
        let before = fs::read(&db)?;
        let tables = table_count(&db)?;
        let err = Cache::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::ForeignDatabase { .. }),
            "{ddl}: {err:?}"
        );
        assert!(err.to_string().contains("another application"), "{err}");
        assert_eq!(table_count(&db)?, tables, "{ddl}: tables added");
        assert_eq!(fs::read(&db)?, before, "{ddl}: the database was modified");
        // Read-only opens refuse it too.
        let err = Cache::builder()
            .read_only(true)
            .open(dir.path())
            .unwrap_err();
        assert!(matches!(err, Error::ForeignDatabase { .. }), "{err:?}");
    }
    Ok(())
}

#[test]
fn a_cache_python_was_still_creating_and_an_empty_file_are_initialised() -> TestResult {
    // python writes Settings (with its rows) before it creates Cache.
    let dir = tempfile::tempdir()?;
    rusqlite::Connection::open(dir.path().join("cache.db"))?.execute_batch(
        "CREATE TABLE Settings (key TEXT NOT NULL UNIQUE, value); \
         INSERT INTO Settings VALUES ('size_limit', 4096), ('count', 0), ('disk_min_file_size', 10)",
    )?;
    let cache = Cache::open(dir.path())?;
    cache.set("k", 1)?;
    assert_eq!(cache.settings().size_limit, 4096);
    // A zero-byte cache.db is an empty database.
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("cache.db"), b"")?;
    Cache::open(dir.path())?.set("k", 1)?;
    assert_eq!(Cache::open(dir.path())?.get::<i64>("k")?, Some(1));
    Ok(())
}

#[test]
fn a_panic_inside_a_nested_transaction_never_commits_its_half() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    let big = vec![7u8; 100_000]; // in a value file
    cache.transact(|c| -> dcache_core::Result<()> {
        c.set("outer", 1)?;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = c.transact(|inner| -> dcache_core::Result<()> {
                inner.set("inner-a", 2)?;
                inner.set("inner-file", &big[..])?;
                panic!("boom in the middle of the inner transaction");
            });
        }));
        assert!(caught.is_err(), "the panic propagates to the catcher");
        // The same for a plain call that panics inside its own frame: a nested `incr`
        // through the `Storage`-style update path is exercised by the set above.
        c.set("after", 3)
    })?;
    assert_eq!(cache.get::<i64>("outer")?, Some(1));
    assert_eq!(cache.get::<i64>("after")?, Some(3));
    assert_eq!(
        cache.get::<i64>("inner-a")?,
        None,
        "half of the inner call committed"
    );
    assert!(cache.get_bytes("inner-file")?.is_none());
    assert!(
        common::value_files(dir.path()).is_empty(),
        "the panicked call's value file was left behind"
    );
    assert_eq!(cache.len()?, 2);
    assert!(cache.check(CheckMode::Report)?.is_empty());
    // And a panic in the outermost closure rolls everything back.
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _ = cache.transact(|c| -> dcache_core::Result<()> {
            c.set("doomed", 1)?;
            panic!("boom");
        });
    }));
    assert!(caught.is_err());
    assert_eq!(cache.get::<i64>("doomed")?, None);
    cache.set("usable", 1)?;
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_fifo_named_cache_db_is_refused_without_blocking() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cache.db");
    let made = std::process::Command::new("mkfifo").arg(&db).status()?;
    assert!(made.success(), "mkfifo failed");
    for read_only in [false, true] {
        let err = Cache::builder()
            .read_only(read_only)
            .open(dir.path())
            .unwrap_err();
        assert!(
            matches!(&err, Error::NotAFile { kind: "a FIFO", .. }),
            "{err:?}"
        );
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_named_cache_db_is_refused_and_nothing_is_created_outside() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    fs::create_dir(&dir)?;
    let outside = parent.path().join("elsewhere.db");
    std::os::unix::fs::symlink(&outside, dir.join("cache.db"))?; // dangling
    let err = Cache::open(&dir).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::NotAFile {
                kind: "a symbolic link",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !outside.exists(),
        "a database was created outside the directory"
    );
    // A link to an existing cache elsewhere: refused as well (its -wal and -shm would live
    // outside the directory).
    Cache::open(parent.path().join("real"))?.set("k", 1)?;
    fs::remove_file(dir.join("cache.db"))?;
    std::os::unix::fs::symlink(parent.path().join("real/cache.db"), dir.join("cache.db"))?;
    assert!(matches!(
        Cache::open(&dir).unwrap_err(),
        Error::NotAFile { .. }
    ));
    Ok(())
}

#[test]
fn a_path_longer_than_sqlite_takes_says_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut long = dir.path().to_path_buf();
    while long.as_os_str().len() < 600 {
        long.push("d".repeat(60));
    }
    let err = Cache::open(&long).unwrap_err();
    assert!(
        matches!(&err, Error::PathTooLong { limit: 511, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("shorter"), "{err}");
    // Just under the limit works.
    let mut fits = dir.path().to_path_buf();
    let room = 511 - fits.as_os_str().len() - "/cache.db".len() - 1;
    fits.push("e".repeat(room.min(255)));
    if fits.as_os_str().len() + "/cache.db".len() < 511 {
        Cache::open(&fits)?.set("k", 1)?;
    }
    Ok(())
}

#[test]
fn a_deleted_shm_file_stops_writes_and_loses_nothing_committed() -> TestResult {
    for victim in ["cache.db-shm", "cache.db-wal"] {
        let dir = tempfile::tempdir()?;
        let cache = Cache::open(dir.path())?;
        for i in 0..20 {
            cache.set(i, i * 10)?;
        }
        fs::remove_file(dir.path().join(victim))?;
        let err = cache.set("after", 1).unwrap_err();
        assert!(
            matches!(&err, Error::FileReplaced { what: "deleted", path } if path.ends_with(victim)),
            "{victim}: {err:?}"
        );
        assert!(err.to_string().contains("tmpfiles"), "{err}");
        // Every write is refused, not just the first.
        assert!(matches!(
            cache.delete(3).unwrap_err(),
            Error::FileReplaced { .. }
        ));
        drop(cache);
        let reopened = Cache::open(dir.path())?;
        for i in 0..20 {
            assert_eq!(
                reopened.get::<i64>(i)?,
                Some(i * 10),
                "{victim}: entry {i} lost"
            );
        }
        assert_eq!(reopened.get::<i64>("after")?, None);
        assert!(reopened.check(CheckMode::Report)?.is_empty());
    }
    Ok(())
}

#[test]
fn a_replaced_database_file_stops_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("k", 1)?;
    // Another program moves the directory's database away and puts a copy in its place.
    let db = dir.path().join("cache.db");
    fs::copy(&db, dir.path().join("copy.db"))?;
    fs::rename(dir.path().join("copy.db"), &db)?;
    let err = cache.set("k", 2).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::FileReplaced {
                what: "replaced",
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn closing_and_reopening_connections_is_not_taken_for_a_replaced_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let a = Cache::open(dir.path())?;
    a.set("k", 1)?;
    // close(): this process's last connection goes, SQLite deletes -wal and -shm.
    a.close()?;
    assert!(!dir.path().join("cache.db-shm").exists());
    a.set("k", 2)?;
    // One handle dropped while another lives on.
    let b = Cache::open(dir.path())?;
    drop(a);
    b.set("k", 5)?;
    assert_eq!(b.get::<i64>("k")?, Some(5));
    Ok(())
}

/// Inserts a row as another program might (python's column order), firing the triggers.
#[allow(clippy::needless_pass_by_value)] // callers build the values in place
fn plant(
    db: &Path,
    rowid: i64,
    key: rusqlite::types::Value,
    raw: rusqlite::types::Value,
    mode: i64,
    value: rusqlite::types::Value,
) -> rusqlite::Result<()> {
    rusqlite::Connection::open(db)?.execute(
        "INSERT INTO Cache (rowid, key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value) \
         VALUES (?1, ?2, ?3, 0, NULL, 0, 0, NULL, 0, ?4, NULL, ?5)",
        rusqlite::params![rowid, key, raw, mode, value],
    )?;
    Ok(())
}

#[test]
fn one_bad_row_is_an_error_for_that_row_and_iteration_goes_on() -> TestResult {
    use rusqlite::types::Value as V;
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    for i in 0..260i64 {
        cache.set(format!("k{i:03}"), i)?;
    }
    let db = dir.path().join("cache.db");
    // Spread through the pages: an impossible mode, a NULL key, a key that is not UTF-8.
    let conn = rusqlite::Connection::open(&db)?;
    for (rowid, change) in [
        (50, "mode = 99"),
        (150, "key = NULL"),
        (250, "key = CAST(X'fffe' AS TEXT)"),
    ] {
        conn.execute(
            &format!("UPDATE Cache SET {change} WHERE rowid = {rowid}"),
            [],
        )?;
    }
    drop(conn);
    // An odd raw flag reads as python reads it (`if raw:`): a raw key.
    plant(
        &db,
        1_000,
        V::Text("odd-raw".into()),
        V::Integer(2),
        1,
        V::Integer(7),
    )?;

    let items: Vec<_> = cache.items::<String, i64>()?.collect();
    let ok: Vec<_> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 258, "every good entry is yielded");
    assert!(ok.iter().any(|(k, v)| k == "odd-raw" && *v == 7));
    assert_eq!(items.len() - ok.len(), 3, "one error per bad row");
    let items_rev: Vec<_> = cache.items_rev::<String, i64>()?.collect();
    assert_eq!(items_rev.iter().filter(|r| r.is_ok()).count(), 258);

    let keys: Vec<_> = cache.keys::<String>()?.collect();
    assert_eq!(
        keys.iter().filter(|r| r.is_ok()).count(),
        259,
        "keys include bad-mode"
    );
    assert_eq!(keys.len(), 261);

    for order in [Order::Ascending, Order::Descending] {
        let sorted: Vec<_> = cache.sorted_items::<String, i64>(order).collect();
        assert_eq!(
            sorted.iter().filter(|r| r.is_ok()).count(),
            258,
            "{order:?}"
        );
        let sorted_keys: Vec<_> = cache.sorted_keys::<String>(order).collect();
        assert_eq!(sorted_keys.len(), 261, "{order:?}");
    }
    Ok(())
}

#[test]
fn rows_at_rowid_zero_negative_and_max_are_iterated() -> TestResult {
    use rusqlite::types::Value as V;
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("middle", 1)?;
    let db = dir.path().join("cache.db");
    for (rowid, key) in [
        (0, "zero"),
        (-5, "negative"),
        (i64::MIN, "min"),
        (i64::MAX, "max"),
    ] {
        plant(
            &db,
            rowid,
            V::Text(key.into()),
            V::Integer(1),
            1,
            V::Integer(rowid),
        )?;
    }
    assert_eq!(cache.len()?, 5);
    let keys: Vec<String> = cache.keys()?.collect::<Result<_, _>>()?;
    assert_eq!(keys, ["min", "negative", "zero", "middle", "max"]);
    let rev: Vec<String> = cache.keys_rev()?.collect::<Result<_, _>>()?;
    assert_eq!(rev, ["max", "middle", "zero", "negative", "min"]);
    let items: Vec<(String, i64)> = cache.items()?.collect::<Result<_, _>>()?;
    assert_eq!(items.len(), 5);
    Ok(())
}

#[test]
fn check_reports_bad_rows_and_counters_and_fix_repairs_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    for i in 0..10 {
        cache.set(i, vec![1u8; 40_000])?; // value files
    }
    let db = dir.path().join("cache.db");
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute("UPDATE Cache SET filename = X'00ff' WHERE key = 1", [])?;
    conn.execute("UPDATE Cache SET size = NULL WHERE key = 2", [])?;
    conn.execute("UPDATE Settings SET value = 'abc' WHERE key = 'count'", [])?;
    conn.execute("UPDATE Settings SET value = 1e300 WHERE key = 'size'", [])?;
    drop(conn);
    let found = cache.check(CheckMode::Report)?;
    let has = |p: &dyn Fn(&dcache_core::Warning) -> bool| found.iter().any(p);
    assert!(
        has(&|w| matches!(w, dcache_core::Warning::BadRow { .. })),
        "{found:?}"
    );
    assert!(
        has(&|w| matches!(w, dcache_core::Warning::WrongSize { recorded: 0, .. })),
        "{found:?}"
    );
    assert!(
        has(&|w| matches!(w, dcache_core::Warning::BadCounter { name: "count", .. })),
        "{found:?}"
    );
    assert!(
        has(&|w| matches!(w, dcache_core::Warning::BadCounter { name: "size", .. })),
        "{found:?}"
    );
    let fixed = cache.check_with(CheckMode::Fix, std::time::Duration::ZERO)?;
    assert!(!fixed.is_empty());
    let after = cache.check(CheckMode::Report)?;
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(
        cache.len()?,
        9,
        "the row with a blob filename is gone, nothing else"
    );
    assert_eq!(cache.get_bytes(2)?.map(|b| b.len()), Some(40_000));
    Ok(())
}

#[test]
fn check_finds_orphans_in_a_directory_whose_path_contains_cache_db() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("my-cache.db-files");
    let cache = Cache::open(&dir)?;
    cache.set("k", vec![1u8; 40_000])?;
    fs::create_dir_all(dir.join("ab/cd"))?;
    fs::write(dir.join("ab/cd/orphan.val"), b"x")?;
    let found = cache.check(CheckMode::Report)?;
    assert!(
        found.iter().any(|w| matches!(w, dcache_core::Warning::UnknownFile { path } if path.ends_with("orphan.val"))),
        "{found:?}"
    );
    Ok(())
}

#[test]
fn a_missing_value_file_at_the_end_is_skipped_by_peek_item_and_pop_item() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("a", vec![1u8; 40_000])?;
    cache.set("b", vec![2u8; 40_000])?;
    cache.set("c", vec![3u8; 40_000])?;
    let files = common::value_files(dir.path());
    assert_eq!(files.len(), 3);
    // Remove the newest entry's file ("c"): find it by content.
    for f in &files {
        if fs::read(dir.path().join(f))?[0] == 3 {
            fs::remove_file(dir.path().join(f))?;
        }
    }
    let (k, e) = cache
        .peek_item::<String, Vec<u8>>(Side::Back)?
        .expect("an entry");
    assert_eq!((k.as_str(), e.value[0]), ("b", 2));
    let (k, _) = cache
        .pop_item::<String, Vec<u8>>(Side::Back)?
        .expect("an entry");
    assert_eq!(k, "b");
    let (k, _) = cache
        .pop_item::<String, Vec<u8>>(Side::Back)?
        .expect("an entry");
    assert_eq!(k, "a");
    assert!(cache.pop_item::<String, Vec<u8>>(Side::Back)?.is_none());
    Ok(())
}

#[test]
fn the_longest_time_to_live_is_stored_as_a_far_expiry() -> TestResult {
    let cache = Cache::temp()?;
    cache.set_with(
        "k",
        1,
        dcache_core::SetOptions::new().expire(std::time::Duration::MAX),
    )?;
    let entry = cache.get_entry::<i64>("k")?.expect("live");
    let expires = entry.expire_time.expect("an expiry is stored");
    assert!((dcache_core::unix_seconds(expires) - dcache_core::MAX_EXPIRE_TIME).abs() < 1e-3);
    assert!(cache.touch("k", Some(std::time::Duration::MAX))?);
    assert!(
        cache
            .get_entry::<i64>("k")?
            .expect("live")
            .expire_time
            .is_some()
    );
    Ok(())
}

#[cfg(unix)]
#[test]
fn temporary_caches_are_private_and_randomly_named() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let a = Cache::temp()?;
    let b = Cache::temp()?;
    for cache in [&a, &b] {
        let mode = std::fs::metadata(cache.directory())?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", cache.directory().display());
        let name = cache
            .directory()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // `<prefix>-` then 12 random characters: nothing guessable such as the pid.
        let random = name.rsplit('-').next().unwrap();
        assert_eq!(random.len(), 12, "{name}");
    }
    assert_ne!(a.directory(), b.directory());
    Ok(())
}

/// Connections closing in one thread while another starts a write: SQLite deletes `-wal` and
/// `-shm` when the last connection closes and the next write creates new ones, which is not a
/// replaced file. Found under load: a close finishing before its bookkeeping made the next
/// write compare new files with deleted ones.
#[test]
fn handles_opened_and_dropped_by_many_threads_never_see_a_replaced_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    Cache::open(dir.path())?.set("seed", 0)?;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || -> Result<(), dcache_core::Error> {
                for i in 0..60 {
                    let cache = Cache::open(&path)?;
                    cache.set((t, i), i)?;
                    drop(cache);
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic")?;
    }
    let cache = Cache::open(dir.path())?;
    assert_eq!(cache.len()?, 1 + 4 * 60);
    Ok(())
}

/// With statistics on, a value file is opened under the write lock (a missing one counts a
/// miss) and read after the commit; a writer replacing the entry meanwhile never turns a hit
/// into a miss or a wrong value.
#[test]
fn recorded_reads_count_like_python_and_read_files_after_the_commit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().statistics(true).open(dir.path())?;
    let big = |n: u8| vec![n; 64 * 1024];
    cache.set("file", big(1).as_slice())?;
    cache.set("gone", big(2).as_slice())?;
    assert_eq!(cache.get_bytes("file")?, Some(big(1)));
    // Remove "gone"'s value file behind the cache's back: a miss, counted as one.
    for path in walk_files(dir.path()) {
        if std::fs::read(&path)? == big(2) {
            std::fs::remove_file(path)?;
        }
    }
    assert_eq!(cache.get_bytes("gone")?, None);
    assert_eq!(cache.get_bytes("absent")?, None);
    let stats = cache.stats()?;
    assert_eq!((stats.hits, stats.misses), (1, 2));

    let writer = {
        let cache = cache.clone();
        std::thread::spawn(move || -> Result<(), dcache_core::Error> {
            for i in 0..200u16 {
                cache.set("file", vec![(i % 250) as u8 + 3; 64 * 1024].as_slice())?;
            }
            Ok(())
        })
    };
    for _ in 0..200 {
        let value = cache
            .get_bytes("file")?
            .expect("never a miss while it is being replaced");
        assert_eq!(value.len(), 64 * 1024);
        assert!(value.iter().all(|b| *b == value[0]), "one whole value");
    }
    writer.join().expect("no panic")?;
    let stats = cache.stats()?;
    assert_eq!((stats.hits, stats.misses), (201, 2));
    Ok(())
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else if path.extension().is_some_and(|e| e == "val") {
            out.push(path);
        }
    }
    out
}
