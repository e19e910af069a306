//! Hostile directories and misuse: another program's database, files that are not regular
//! files, links, paths SQLite cannot take, files deleted under a live cache, panics inside
//! transactions. Each case is a typed error, and nothing committed is lost or touched.

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use dcache_core::{Cache, Error};

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
    assert!(cache.check(false)?.is_empty());
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
        assert!(reopened.check(false)?.is_empty());
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
