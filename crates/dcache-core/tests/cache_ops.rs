//! python-diskcache's Cache edge cases (from its own test suite, `tests/test_core.py`) that
//! apply to the core `Cache`, and the bookkeeping invariants of overwrites.

mod common;

use std::time::Duration;

use common::{builder_with, clock, setting, value_files};
use dcache_core::{Cache, Error, SetOptions, Tag};
use rusqlite::types::Value as Sql;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn primitives_round_trip_as_keys_and_values() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(64).open(dir.path())?;
    let big_text = "é".repeat(100);
    let big_bytes = vec![7u8; 5000];

    cache.set("", "")?;
    cache.set("unicode ☃", "snow ☃")?;
    cache.set(&b"\x00bytes"[..], &b"\x00\xffvalue"[..])?;
    cache.set(i64::MIN, i64::MAX)?;
    cache.set(1.5, f64::INFINITY)?;
    cache.set(-0.0, f64::NEG_INFINITY)?;
    cache.set("big text", &big_text)?;
    cache.set("big bytes", &big_bytes)?;

    assert_eq!(cache.get::<String>("")?.as_deref(), Some(""));
    assert_eq!(cache.get::<String>("unicode ☃")?.as_deref(), Some("snow ☃"));
    assert_eq!(
        cache.get::<Vec<u8>>(&b"\x00bytes"[..])?,
        Some(b"\x00\xffvalue".to_vec())
    );
    assert_eq!(cache.get::<i64>(i64::MIN)?, Some(i64::MAX));
    assert_eq!(cache.get::<f64>(1.5)?, Some(f64::INFINITY));
    assert_eq!(
        cache.get::<f64>(0.0)?,
        Some(f64::NEG_INFINITY),
        "-0.0 and 0.0 are one key"
    );
    assert_eq!(cache.get::<String>("big text")?, Some(big_text));
    assert_eq!(cache.get::<Vec<u8>>("big bytes")?, Some(big_bytes.clone()));
    assert_eq!(cache.get_bytes("big bytes")?, Some(big_bytes));
    assert_eq!(value_files(dir.path()).len(), 2);
    // 1 and 1.0 are the same key in SQLite, as in python.
    cache.set(1, "one")?;
    assert_eq!(cache.get::<String>(1.0)?.as_deref(), Some("one"));
    // "a" and b"a" are not.
    cache.set("a", 1)?;
    assert_eq!(cache.get::<i64>(&b"a"[..])?, None);
    Ok(())
}

#[test]
fn nan_keys_are_refused() -> TestResult {
    let cache = Cache::temp()?;
    let err = cache.set(f64::NAN, 1).unwrap_err();
    assert!(
        matches!(err, Error::Disk(dcache_disk::Error::NanKey)),
        "{err}"
    );
    assert!(err.to_string().contains("NaN"));
    Ok(())
}

#[test]
fn overwrite_small_file_small_removes_old_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(10).open(dir.path())?;
    cache.set("k", "small")?;
    assert!(value_files(dir.path()).is_empty());
    cache.set("k", "x".repeat(100))?;
    let first = value_files(dir.path());
    assert_eq!(first.len(), 1);
    cache.set("k", "y".repeat(100))?;
    let second = value_files(dir.path());
    assert_eq!(second.len(), 1);
    assert_ne!(
        first, second,
        "the replaced file is removed, the new one kept"
    );
    cache.set("k", "tiny")?;
    assert!(value_files(dir.path()).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path())?
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        0,
        "empty hh/hh directories pruned"
    );
    assert_eq!(cache.get::<String>("k")?.as_deref(), Some("tiny"));
    Ok(())
}

#[test]
fn a_thousand_overwrites_keep_count_size_and_rowid() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(100).open(dir.path())?;
    let rowid = |dir: &std::path::Path| -> i64 {
        let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
        conn.query_row("SELECT rowid FROM Cache WHERE key = 'k'", [], |r| r.get(0))
            .unwrap()
    };
    cache.set("first", 0)?;
    cache.set("k", 0)?;
    let original = rowid(dir.path());
    let mut last_size = 0;
    for i in 0..1000usize {
        let value = vec![b'v'; (i % 7) * 40]; // mixes inline values and files
        last_size = if value.len() >= 100 { value.len() } else { 0 };
        cache.set("k", value)?;
    }
    assert_eq!(setting(dir.path(), "count"), Sql::Integer(2));
    assert_eq!(setting(dir.path(), "size"), Sql::Integer(last_size as i64));
    assert_eq!(rowid(dir.path()), original);
    assert_eq!(cache.len()?, 2);
    Ok(())
}

#[test]
fn expired_items_miss_but_count_in_len() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    cache.set_with("a", 1, SetOptions::new().expire(Duration::from_secs(10)))?;
    cache.set_with("zero", 1, SetOptions::new().expire(Duration::ZERO))?;
    assert_eq!(
        cache.get::<i64>("zero")?,
        None,
        "zero expiry is already expired"
    );
    assert_eq!(cache.get::<i64>("a")?, Some(1));
    clock.advance(Duration::from_secs(11));
    assert_eq!(cache.get::<i64>("a")?, None);
    assert!(!cache.contains("a")?);
    assert!(!cache.delete("a")?, "deleting an expired key is a miss");
    assert_eq!(cache.len()?, 2, "expired rows still count");
    assert_eq!(cache.pop::<i64>("a")?, None);
    Ok(())
}

#[test]
fn add_over_an_expired_key_succeeds_and_a_losing_add_leaves_no_file() -> TestResult {
    let clock = clock();
    let dir = tempfile::tempdir()?;
    let cache = builder_with(&clock)
        .disk_min_file_size(10)
        .open(dir.path())?;
    assert!(cache.add_with("k", 1, SetOptions::new().expire(Duration::from_secs(1)))?);
    assert!(!cache.add("k", 2)?);
    assert!(!cache.add("k", "x".repeat(50))?);
    assert!(
        value_files(dir.path()).is_empty(),
        "losing add removed its file"
    );
    clock.advance(Duration::from_secs(2));
    assert!(cache.add("k", 3)?);
    assert_eq!(cache.get::<i64>("k")?, Some(3));
    assert_eq!(cache.len()?, 1);
    Ok(())
}

#[test]
fn incr_semantics() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    assert_eq!(cache.incr("n", 1)?, 1);
    assert_eq!(cache.incr("n", 5)?, 6);
    assert_eq!(cache.decr("n", 10)?, -4);
    assert_eq!(cache.incr_or("m", 2, Some(10))?, 12);
    assert!(matches!(
        cache.incr_or("missing", 1, None),
        Err(Error::KeyNotFound)
    ));
    cache.set_with(
        "e",
        100,
        SetOptions::new().expire(Duration::from_secs(1)).tag("t"),
    )?;
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        cache.incr("e", 1)?,
        1,
        "an expired value restarts from the default"
    );
    let entry = cache.get_entry::<i64>("e")?.unwrap();
    assert_eq!(
        (entry.expire_time, entry.tag),
        (None, None),
        "expiry and tag reset"
    );
    cache.set("s", "text")?;
    assert!(matches!(
        cache.incr("s", 1),
        Err(Error::NotAnInteger { .. })
    ));
    cache.set("big", i64::MAX)?;
    assert!(matches!(cache.incr("big", 1), Err(Error::Overflow)));
    assert_eq!(
        cache.get::<i64>("big")?,
        Some(i64::MAX),
        "failed incr changes nothing"
    );
    Ok(())
}

#[test]
fn touch_semantics() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    cache.set_with("k", 1, SetOptions::new().expire(Duration::from_secs(5)))?;
    assert!(cache.touch("k", None)?);
    assert_eq!(cache.get_entry::<i64>("k")?.unwrap().expire_time, None);
    assert!(cache.touch("k", Some(Duration::ZERO))?);
    assert!(!cache.touch("k", None)?, "expired now");
    assert!(!cache.touch("missing", None)?);
    Ok(())
}

#[test]
fn tags_of_every_type_round_trip() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    let tags = [
        Tag::from("red"),
        Tag::from(7i64),
        Tag::from(1.5),
        Tag::from(&b"\x00b"[..]),
    ];
    for (i, tag) in tags.iter().enumerate() {
        cache.set_with(
            i as i64,
            i as i64,
            SetOptions::new()
                .tag(tag.clone())
                .expire(Duration::from_secs(60)),
        )?;
    }
    for (i, tag) in tags.iter().enumerate() {
        let entry = cache.get_entry::<i64>(i as i64)?.unwrap();
        assert_eq!(entry.value, i as i64);
        assert_eq!(entry.tag.as_ref(), Some(tag));
        assert_eq!(
            entry.expire_time,
            Some(clock_now(&clock) + Duration::from_secs(60))
        );
    }
    assert!(matches!(
        cache.set_with("n", 1, SetOptions::new().tag(f64::NAN)),
        Err(Error::NanTag)
    ));
    Ok(())
}

fn clock_now(clock: &dcache_core::ManualClock) -> std::time::SystemTime {
    use dcache_core::Clock;
    clock.now()
}

#[test]
fn pop_returns_value_and_removes_entry_and_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(10).open(dir.path())?;
    cache.set_with("k", "v".repeat(20), SetOptions::new().tag("t"))?;
    let entry = cache.pop_entry::<String>("k")?.unwrap();
    assert_eq!((entry.value.len(), entry.tag), (20, Some(Tag::from("t"))));
    assert!(value_files(dir.path()).is_empty());
    assert_eq!(cache.len()?, 0);
    assert_eq!(cache.pop::<String>("k")?, None);
    Ok(())
}

#[test]
fn pop_of_the_wrong_type_keeps_the_entry() -> TestResult {
    let cache = Cache::temp()?;
    cache.set("k", "text")?;
    assert!(cache.pop::<i64>("k").is_err());
    assert_eq!(cache.get::<String>("k")?.as_deref(), Some("text"));
    Ok(())
}

#[test]
fn streamed_values_round_trip() -> TestResult {
    use std::io::Read;
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    cache.set_reader("blob", &mut &data[..], SetOptions::new())?;
    assert_eq!(
        value_files(dir.path()).len(),
        1,
        "streamed values always go to a file"
    );
    let mut back = Vec::new();
    cache.read("blob")?.unwrap().read_to_end(&mut back)?;
    assert_eq!(back, data);
    assert_eq!(cache.get::<Vec<u8>>("blob")?, Some(data));
    // An inline value streams from memory.
    cache.set("small", &b"abc"[..])?;
    let mut small = String::new();
    cache.read("small")?.unwrap().read_to_string(&mut small)?;
    assert_eq!(small, "abc");
    assert!(cache.read("missing")?.is_none());
    Ok(())
}

#[test]
fn transaction_error_leaves_no_row_and_no_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(10).open(dir.path())?;
    cache.set("kept", 1)?;
    let result: Result<(), Error> = cache.transact(|c| {
        c.set("a", "x".repeat(100))?;
        c.set("b", 2)?;
        Err(Error::KeyNotFound)
    });
    assert!(matches!(result, Err(Error::KeyNotFound)));
    assert_eq!(cache.get::<String>("a")?, None);
    assert_eq!(cache.get::<i64>("b")?, None);
    assert_eq!(cache.len()?, 1);
    assert!(value_files(dir.path()).is_empty());
    Ok(())
}

#[test]
fn a_transaction_commits_all_and_removes_replaced_files_after_commit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(10).open(dir.path())?;
    cache.set("a", "x".repeat(100))?;
    let before = value_files(dir.path());
    cache.transact(|c| -> Result<(), Error> {
        c.set("a", 1)?;
        // Still present until the transaction commits.
        assert_eq!(value_files(dir.path()), before);
        c.transact(|c| c.set("b", 2))?;
        let inner: Result<(), Error> = c.transact(|c| {
            c.set("c", 3)?;
            Err(Error::KeyNotFound)
        });
        assert!(inner.is_err());
        Ok(())
    })?;
    assert!(value_files(dir.path()).is_empty());
    assert_eq!(
        (cache.get::<i64>("a")?, cache.get::<i64>("b")?),
        (Some(1), Some(2))
    );
    assert_eq!(
        cache.get::<i64>("c")?,
        None,
        "a failed nested transaction is undone on its own"
    );
    Ok(())
}

#[test]
fn a_panic_inside_transact_rolls_back_and_releases_the_lock() -> TestResult {
    let cache = Cache::temp()?;
    let c2 = cache.clone();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), Error> = c2.transact(|c| {
            c.set("k", 1)?;
            panic!("boom");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(cache.get::<i64>("k")?, None);
    cache.set("k", 2)?; // the lock was released
    assert_eq!(cache.get::<i64>("k")?, Some(2));
    Ok(())
}

#[test]
fn reopening_keeps_entries_and_settings() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let cache = Cache::builder()
            .size_limit(1 << 25)
            .cull_limit(3)
            .open(dir.path())?;
        cache.set("k", "v")?;
    }
    let cache = Cache::open(dir.path())?;
    assert_eq!(cache.get::<String>("k")?.as_deref(), Some("v"));
    let s = cache.settings();
    assert_eq!((s.size_limit, s.cull_limit), (1 << 25, 3));
    Ok(())
}

#[test]
fn reopening_with_matching_settings_writes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    Cache::builder()
        .size_limit(1 << 20)
        .open(dir.path())?
        .set("k", 1)?;
    let db = dir.path().join("cache.db");
    let data_version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap()
    };
    let watcher = rusqlite::Connection::open(&db)?;
    let before = data_version(&watcher);
    let changes_before: i64 = watcher.query_row("SELECT total_changes()", [], |r| r.get(0))?;
    let cache = Cache::builder().size_limit(1 << 20).open(dir.path())?;
    let _ = changes_before;
    assert_eq!(cache.get::<i64>("k")?, Some(1));
    assert_eq!(
        data_version(&watcher),
        before,
        "another connection committed nothing"
    );
    drop(cache);
    Cache::builder().size_limit(1 << 21).open(dir.path())?;
    assert_ne!(
        data_version(&watcher),
        before,
        "a changed setting is written"
    );
    assert_eq!(setting(dir.path(), "size_limit"), Sql::Integer(1 << 21));
    Ok(())
}

#[test]
fn reset_persists_and_applies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.reset("cull_limit", 0)?;
    assert_eq!(cache.settings().cull_limit, 0);
    assert_eq!(setting(dir.path(), "cull_limit"), Sql::Integer(0));
    cache.reset("sqlite_cache_size", 100)?;
    cache.reset("disk_min_file_size", 4)?;
    cache.set("k", "abcdef")?;
    assert_eq!(
        value_files(dir.path()).len(),
        1,
        "disk_min_file_size applied to the disk"
    );
    assert!(matches!(
        cache.reset("size_limit", "abc"),
        Err(Error::InvalidSetting { .. })
    ));
    assert!(matches!(
        cache.reset("eviction_policy", "random"),
        Err(Error::UnknownEvictionPolicy { .. })
    ));
    assert!(matches!(
        cache.reset("count", 3),
        Err(Error::InvalidSetting { .. })
    ));
    // Another handle sees the change after reloading.
    let other = Cache::open(dir.path())?;
    cache.reset("cull_limit", 7)?;
    assert_eq!(other.reload_settings()?.cull_limit, 7);
    Ok(())
}

#[test]
fn temporary_caches_are_removed_with_their_last_handle() -> TestResult {
    let cache = Cache::temp()?;
    let dir = cache.directory().to_path_buf();
    cache.set("k", 1)?;
    let clone = cache.clone();
    drop(cache);
    assert!(dir.exists());
    drop(clone);
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn close_keeps_the_cache_usable() -> TestResult {
    let cache = Cache::temp()?;
    cache.set("k", 1)?;
    cache.close()?;
    assert_eq!(cache.get::<i64>("k")?, Some(1));
    Ok(())
}

#[test]
fn fresh_connections_get_the_default_pragmas() -> TestResult {
    let cache = Cache::temp()?;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let c = cache.clone();
            std::thread::spawn(move || c.set(i, i).map(drop))
        })
        .collect();
    for h in handles {
        h.join().unwrap()?;
    }
    let conn = rusqlite::Connection::open(cache.directory().join("cache.db"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    assert_eq!((mode.as_str(), vacuum), ("wal", 1));
    Ok(())
}

#[test]
fn reports_serialize_for_monitoring() -> TestResult {
    let cache = Cache::temp()?;
    cache.set("k", 1)?;
    let settings = serde_json::to_value(cache.settings())?;
    assert_eq!(settings["eviction_policy"], "least-recently-stored");
    assert_eq!(settings["size_limit"], 1u64 << 30);
    assert_eq!(settings["all"]["statistics"], 0);
    assert_eq!(settings["all"]["sqlite_journal_mode"], "wal");
    let summary = serde_json::to_value(cache.summary()?)?;
    assert_eq!(summary["entries"], 1);
    assert_eq!(summary["stats"]["hits"], 0);
    let warning = dcache_core::Warning::WrongSize {
        path: "/c/ab/cd/x.val".into(),
        actual: 3,
        recorded: 4,
    };
    assert_eq!(
        serde_json::to_value(&warning)?,
        serde_json::json!({"wrong_size": {"path": "/c/ab/cd/x.val", "actual": 3, "recorded": 4}})
    );
    Ok(())
}
