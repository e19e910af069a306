//! Bad input returns typed errors, never panics, and loses nothing else.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;

use common::value_files;
use dcache_core::{Cache, Error};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn garbage_cache_db_is_not_a_database() -> TestResult {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("cache.db"), vec![0x42u8; 8192])?;
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("not an SQLite database"));
    assert_eq!(
        fs::read(dir.path().join("cache.db"))?,
        vec![0x42u8; 8192],
        "left untouched"
    );
    Ok(())
}

#[test]
fn another_applications_database_is_refused_untouched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cache.db");
    rusqlite::Connection::open(&db)?.execute_batch("CREATE TABLE users(id INTEGER, name TEXT)")?;
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::ForeignDatabase { tables, .. } if tables == "users"),
        "{err:?}"
    );
    let conn = rusqlite::Connection::open(&db)?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    assert_eq!(tables, 1, "nothing added");
    Ok(())
}

#[test]
fn a_cache_table_with_a_missing_column_is_incompatible() -> TestResult {
    let dir = tempfile::tempdir()?;
    rusqlite::Connection::open(dir.path().join("cache.db"))?
        .execute_batch("CREATE TABLE Settings (key TEXT NOT NULL UNIQUE, value); CREATE TABLE Cache (rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER)")?;
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleSchema { .. }), "{err:?}");
    Ok(())
}

#[test]
fn a_wrongly_typed_stored_setting_is_a_typed_error_and_can_be_overridden() -> TestResult {
    let dir = tempfile::tempdir()?;
    Cache::open(dir.path())?.set("k", 1)?;
    rusqlite::Connection::open(dir.path().join("cache.db"))?.execute(
        "UPDATE Settings SET value = 'abc' WHERE key = 'size_limit'",
        [],
    )?;
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSetting { name, .. } if name == "size_limit"),
        "{err:?}"
    );
    let cache = Cache::builder().size_limit(1 << 30).open(dir.path())?;
    assert_eq!(cache.get::<i64>("k")?, Some(1), "nothing lost");
    Ok(())
}

#[test]
fn an_unknown_stored_policy_is_a_typed_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    Cache::open(dir.path())?;
    rusqlite::Connection::open(dir.path().join("cache.db"))?.execute(
        "UPDATE Settings SET value = 'most-recently-used' WHERE key = 'eviction_policy'",
        [],
    )?;
    assert!(matches!(
        Cache::open(dir.path()),
        Err(Error::UnknownEvictionPolicy { .. })
    ));
    Ok(())
}

#[test]
fn invalid_builder_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Cache::builder().sqlite_synchronous(9).open(dir.path()),
        Err(Error::InvalidSetting { .. })
    ));
    assert!(matches!(
        Cache::builder()
            .setting("statistics", "yes")
            .open(dir.path()),
        Err(Error::InvalidSetting { .. })
    ));
    assert!(matches!(
        Cache::builder()
            .sqlite_journal_mode("fast")
            .open(dir.path()),
        Err(Error::InvalidSetting { .. })
    ));
}

#[test]
fn missing_and_truncated_value_files_read_as_misses() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(16).open(dir.path())?;
    cache.set("gone", vec![1u8; 100])?;
    cache.set("short", vec![2u8; 100])?;
    cache.set("fine", vec![3u8; 100])?;
    cache.set("inline", 5)?;
    let files = value_files(dir.path());
    let path_of = |key: &str| -> std::path::PathBuf {
        let conn = rusqlite::Connection::open(dir.path().join("cache.db")).unwrap();
        let name: String = conn
            .query_row("SELECT filename FROM Cache WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .unwrap();
        dir.path().join(name)
    };
    assert_eq!(files.len(), 3);
    fs::remove_file(path_of("gone"))?;
    fs::write(path_of("short"), [2u8; 10])?;
    assert_eq!(cache.get::<Vec<u8>>("gone")?, None);
    assert_eq!(cache.get::<Vec<u8>>("short")?, None);
    assert!(cache.read("short")?.is_none());
    assert_eq!(cache.get::<Vec<u8>>("fine")?, Some(vec![3u8; 100]));
    assert_eq!(cache.get::<i64>("inline")?, Some(5));
    Ok(())
}

#[test]
fn a_value_file_replaced_by_a_directory_is_an_error_not_a_panic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(16).open(dir.path())?;
    cache.set("k", vec![1u8; 100])?;
    cache.set("other", 1)?;
    let file = dir.path().join(&value_files(dir.path())[0]);
    fs::remove_file(&file)?;
    fs::create_dir(&file)?;
    assert!(cache.get::<Vec<u8>>("k").is_err());
    assert_eq!(cache.get::<i64>("other")?, Some(1));
    Ok(())
}

#[test]
fn reading_the_wrong_type_names_both_types() -> TestResult {
    let cache = Cache::temp()?;
    cache.set("k", "text")?;
    let err = cache.get::<i64>("k").unwrap_err();
    match &err {
        Error::Disk(dcache_disk::Error::WrongType { expected, found }) => {
            assert_eq!(expected, "i64");
            assert!(found.contains("text"), "{found}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(cache.get::<String>("k")?.as_deref(), Some("text"));
    Ok(())
}

#[test]
fn an_unknown_mode_is_a_typed_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("k", 1)?;
    cache.set("ok", 2)?;
    rusqlite::Connection::open(dir.path().join("cache.db"))?
        .execute("UPDATE Cache SET mode = 9 WHERE key = 'k'", [])?;
    assert!(matches!(
        cache.get::<i64>("k"),
        Err(Error::Disk(dcache_disk::Error::UnknownMode { mode: 9 }))
    ));
    assert_eq!(cache.get::<i64>("ok")?, Some(2));
    Ok(())
}

#[test]
fn a_filename_outside_the_directory_is_refused_and_never_touched() -> TestResult {
    let outside = tempfile::tempdir()?;
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious")?;
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(4).open(dir.path())?;
    cache.set("k", vec![1u8; 8])?;
    let conn = rusqlite::Connection::open(dir.path().join("cache.db"))?;
    conn.execute(
        "UPDATE Cache SET filename = ?1 WHERE key = 'k'",
        [victim.to_str().unwrap()],
    )?;
    assert!(matches!(
        cache.get::<Vec<u8>>("k"),
        Err(Error::Disk(dcache_disk::Error::UnsafePath { .. }))
    ));
    conn.execute(
        "UPDATE Cache SET filename = '../../victim' WHERE key = 'k'",
        [],
    )?;
    assert!(cache.get::<Vec<u8>>("k").is_err());
    assert!(matches!(
        cache.delete("k"),
        Err(Error::Disk(dcache_disk::Error::UnsafePath { .. })) | Ok(true)
    ));
    assert_eq!(fs::read(&victim)?, b"precious");
    Ok(())
}

#[test]
fn read_only_caches_read_and_refuse_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    Cache::open(dir.path())?.set("k", 1)?;
    let ro = Cache::builder()
        .read_only(true)
        .statistics(true)
        .open(dir.path())?;
    assert!(ro.is_read_only());
    assert_eq!(ro.get::<i64>("k")?, Some(1));
    assert!(matches!(ro.set("k", 2), Err(Error::ReadOnly { .. })));
    assert!(matches!(ro.incr("n", 1), Err(Error::ReadOnly { .. })));
    assert_eq!(Cache::open(dir.path())?.get::<i64>("k")?, Some(1));
    // Opening a directory that does not exist read-only is an error, not a creation.
    assert!(
        Cache::builder()
            .read_only(true)
            .open(dir.path().join("nope"))
            .is_err()
    );
    assert!(!dir.path().join("nope").exists());
    Ok(())
}

#[test]
fn an_uncreatable_directory_is_an_io_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = Cache::open(file.path().join("sub")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

const UNWRITABLE_ENV: &str = "DCACHE_TEST_UNWRITABLE_DIR";

/// A directory the process cannot write opens read-only: reads work, writes are refused.
/// Run as root (CI), the check happens in a child that drops to user `nobody`.
#[test]
fn an_unwritable_directory_opens_read_only() -> TestResult {
    if let Ok(dir) = std::env::var(UNWRITABLE_ENV) {
        let cache = Cache::open(&dir)?;
        assert!(
            cache.is_read_only(),
            "the directory is not writable by this process"
        );
        assert_eq!(cache.get::<String>("k")?.as_deref(), Some("v"));
        assert_eq!(cache.len()?, 1);
        assert!(matches!(cache.set("k", "w"), Err(Error::ReadOnly { .. })));
        assert!(matches!(cache.delete("k"), Err(Error::ReadOnly { .. })));
        return Ok(());
    }
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("cache");
    Cache::open(&dir)?.set("k", "v")?;
    fs::set_permissions(parent.path(), fs::Permissions::from_mode(0o755))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555))?;
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child
        .args([
            "--exact",
            "an_unwritable_directory_opens_read_only",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UNWRITABLE_ENV, &dir);
    // Only root can switch the child to `nobody`; as another user the child runs as us, and
    // a 0555 directory is unwritable to us anyway.
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        child.uid(65534).gid(65534);
    }
    let status = child.status()?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    assert!(
        status.success(),
        "the child could not read an unwritable cache read-only"
    );
    // Nothing was lost or changed.
    assert_eq!(Cache::open(&dir)?.get::<String>("k")?.as_deref(), Some("v"));
    Ok(())
}
