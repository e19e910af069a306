//! Eviction, expiry, tags, check and statistics: python-diskcache's cases (from its own test
//! suite, `tests/test_core.py`), with an injected clock instead of sleeps.

mod common;

use std::time::Duration;

use common::{builder_with, clock, value_files};
use dcache_core::{Cache, EvictionPolicy, SetOptions, Warning};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn million() -> Vec<u8> {
    vec![b'x'; 1_000_000]
}

#[test]
fn cull_limit_zero_then_ten_removes_exactly_ten_expired_rows() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).cull_limit(0).open_temp()?;
    for v in 0..10 {
        cache.set_with(v, v, SetOptions::new().expire(Duration::ZERO))?;
    }
    for v in 10..15 {
        cache.set(v, v)?;
    }
    assert_eq!(cache.len()?, 15);
    clock.advance(Duration::from_millis(10));
    cache.reset("cull_limit", 10)?;
    cache.set(15, 15)?;
    assert_eq!(cache.len()?, 6);
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn expire_at_now_plus_eleven_removes_exactly_ten() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).cull_limit(0).open_temp()?;
    for v in 1..=100u64 {
        cache.set_with(v, v, SetOptions::new().expire(Duration::from_secs(v)))?;
    }
    assert_eq!(cache.len()?, 100);
    clock.advance(Duration::from_secs(11));
    assert_eq!(cache.expire()?, 10);
    assert_eq!(cache.len()?, 90);
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn least_recently_stored_survivors() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock)
        .eviction_policy(EvictionPolicy::LeastRecentlyStored)
        .size_limit(10_100_000)
        .cull_limit(2)
        .open_temp()?;
    let tick = || clock.advance(Duration::from_millis(1));
    for v in 0..10 {
        tick();
        cache.set(v, million())?;
    }
    assert_eq!(cache.len()?, 10);
    for v in 0..10 {
        assert_eq!(cache.get_bytes(v)?, Some(million()));
    }
    for v in 10..20 {
        tick();
        cache.set(v, million())?;
    }
    assert_eq!(cache.len()?, 10);
    for v in 0..10 {
        tick();
        cache.set(v, million())?;
    }
    let count = cache.len()?;
    for (index, length) in [1usize, 2, 3, 4].into_iter().enumerate() {
        tick();
        cache.set(10 + index as i64, million().repeat(length))?;
        assert_eq!(cache.len()?, count - length as u64);
    }
    assert_eq!(cache.get_bytes(12)?, Some(million().repeat(3)));
    assert_eq!(cache.get_bytes(13)?, Some(million().repeat(4)));
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn least_recently_used_survivors() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock)
        .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
        .size_limit(10_100_000)
        .cull_limit(5)
        .open_temp()?;
    for v in 0..10 {
        cache.set(v, million())?;
    }
    assert_eq!(cache.len()?, 10);
    clock.advance(Duration::from_millis(10));
    for v in [0, 1, 7, 8, 9] {
        cache.get_bytes(v)?;
    }
    cache.set(10, million())?;
    assert_eq!(cache.len()?, 6);
    for v in [0, 1, 7, 8, 9, 10] {
        assert_eq!(cache.get_bytes(v)?, Some(million()), "key {v}");
    }
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn least_frequently_used_survivors() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock)
        .eviction_policy(EvictionPolicy::LeastFrequentlyUsed)
        .size_limit(10_100_000)
        .cull_limit(5)
        .open_temp()?;
    for v in 0..10 {
        cache.set(v, million())?;
    }
    for (key, reads) in [(0, 5), (1, 4), (7, 3), (8, 2), (9, 1)] {
        for _ in 0..reads {
            cache.get_bytes(key)?;
        }
    }
    cache.set(10, million())?;
    assert_eq!(cache.len()?, 6);
    for v in [0, 1, 7, 8, 9, 10] {
        assert!(cache.contains(v)?, "key {v}");
    }
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn cull_reaches_the_size_limit_and_none_policy_does_not_cull() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().cull_limit(0).open(dir.path())?;
    let limit = 30 * 32768;
    cache.reset("size_limit", limit)?;
    for key in 0..40 {
        cache.set(key, b"foo".repeat(32768))?;
    }
    assert!(cache.volume()? > limit as u64);
    assert!(cache.cull()? > 0);
    assert!(cache.volume()? <= limit as u64);
    // Inline values and a zero limit.
    cache.reset("size_limit", 0)?;
    for key in 0..100 {
        cache.set(key, key)?;
    }
    cache.cull()?;
    assert_eq!(cache.len()?, 0);
    // Policy none keeps everything (bar expired entries).
    cache.reset("eviction_policy", "none")?;
    for key in 0..10 {
        cache.set(key, b"foo".repeat(32768))?;
    }
    assert_eq!(cache.cull()?, 0);
    assert_eq!(cache.len()?, 10);
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn evict_by_tag_and_clear() -> TestResult {
    let cache = Cache::temp()?;
    let colors = ["red", "blue", "yellow"];
    for v in 0..90 {
        cache.set_with(v, v, SetOptions::new().tag(colors[v as usize % 3]))?;
    }
    assert_eq!(cache.evict("red")?, 30);
    assert_eq!(cache.len()?, 60);
    cache.create_tag_index()?;
    assert!(cache.settings().tag_index);
    assert_eq!(cache.evict("blue")?, 30);
    cache.drop_tag_index()?;
    assert!(!cache.settings().tag_index);
    assert_eq!(cache.clear()?, 30);
    assert_eq!(cache.len()?, 0);
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

#[test]
fn tag_index_setting_creates_and_drops_the_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let has_index = || -> bool {
        let conn = rusqlite::Connection::open(dir.path().join("cache.db")).unwrap();
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'Cache_tag_rowid'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    };
    drop(Cache::builder().tag_index(true).open(dir.path())?);
    assert!(has_index());
    drop(Cache::builder().tag_index(false).open(dir.path())?);
    assert!(!has_index());
    Ok(())
}

#[test]
fn stats_count_hits_and_misses() -> TestResult {
    let cache = Cache::temp()?;
    cache.set(0, 0)?;
    assert_eq!(
        cache.stats(true, false)?,
        dcache_core::Stats { hits: 0, misses: 0 }
    );
    for _ in 0..100 {
        cache.get::<i64>(0)?;
    }
    for _ in 0..10 {
        cache.get::<i64>(1)?;
    }
    let s = cache.stats(true, true)?;
    assert_eq!((s.hits, s.misses), (100, 10));
    let s = cache.stats(false, false)?;
    assert_eq!((s.hits, s.misses), (0, 0));
    for _ in 0..100 {
        cache.get::<i64>(0)?;
    }
    let s = cache.stats(false, false)?;
    assert_eq!((s.hits, s.misses), (0, 0));
    assert!(cache.check(false)?.is_empty());
    Ok(())
}

fn age(path: &std::path::Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

#[test]
fn check_fix_repairs_moved_and_removed_files_sizes_and_counts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    let blob = vec![b'a'; 1 << 20];
    for key in [0i64, 1, 1234] {
        cache.set(key, &blob)?;
    }
    cache.set(56.78, &blob)?;
    cache.set("hello", &blob)?;
    cache.set(&b"world"[..], &blob)?;
    let db = rusqlite::Connection::open(dir.path().join("cache.db"))?;
    let file_of = |key: i64| -> std::path::PathBuf {
        let name: String = db
            .query_row("SELECT filename FROM Cache WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .unwrap();
        dir.path().join(name)
    };
    let moved = file_of(0);
    std::fs::rename(&moved, moved.with_extension("val_moved"))?;
    age(&moved.with_extension("val_moved"));
    std::fs::remove_file(file_of(1))?;
    db.execute_batch("UPDATE Cache SET size = 0 WHERE rowid > 1; UPDATE Settings SET value = 0 WHERE key IN ('count', 'size')")?;
    std::fs::create_dir_all(dir.path().join("ff/ee"))?;

    let found = cache.check(false)?;
    let kinds = |w: &[Warning]| -> Vec<&'static str> {
        let mut k: Vec<_> = w
            .iter()
            .map(|w| match w {
                Warning::MissingFile { .. } => "missing",
                Warning::WrongSize { .. } => "size",
                Warning::UnknownFile { .. } => "unknown",
                Warning::EmptyDir { .. } => "empty",
                Warning::CountMismatch { .. } => "count",
                Warning::SizeMismatch { .. } => "total",
                _ => "other",
            })
            .collect();
        k.sort_unstable();
        k
    };
    assert_eq!(
        kinds(&found),
        [
            "count", "empty", "empty", "missing", "missing", "size", "size", "size", "size",
            "total", "unknown"
        ]
    );
    cache.check(true)?;
    assert_eq!(cache.check(false)?, []);
    assert_eq!(cache.len()?, 4);
    assert_eq!(cache.get_bytes(1234)?, Some(blob));
    Ok(())
}

#[test]
fn check_fix_keeps_young_unknown_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    std::fs::create_dir_all(dir.path().join("ab/cd"))?;
    std::fs::write(dir.path().join("ab/cd/0123.val"), b"in flight")?;
    assert_eq!(cache.check(true)?.len(), 1);
    assert!(
        dir.path().join("ab/cd/0123.val").exists(),
        "a fresh file may belong to a commit in progress"
    );
    Ok(())
}

#[test]
fn check_counts_rows_with_null_keys() -> TestResult {
    // python-diskcache binds a NaN key as NULL: each `cache[nan] = v` adds such a row.
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("x", 3)?;
    let db = rusqlite::Connection::open(dir.path().join("cache.db"))?;
    for value in [1, 2] {
        db.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, \
             tag, size, mode, filename, value) VALUES (NULL, 1, 0, NULL, 0, 0, NULL, 0, 1, NULL, ?1)",
            [value],
        )?;
    }
    assert_eq!(cache.len()?, 3);
    assert_eq!(cache.check(false)?, []);
    assert_eq!(cache.check(true)?, []);
    assert_eq!(cache.clear()?, 3);
    assert_eq!(cache.len()?, 0);
    Ok(())
}

#[test]
fn check_fix_repairs_a_corrupt_header_with_vacuum() -> TestResult {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir()?;
    {
        let cache = Cache::open(dir.path())?;
        for v in 0..1000 {
            cache.set(v, v)?;
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("cache.db"))?;
    f.seek(SeekFrom::Start(52))?;
    f.write_all(&[0, 1])?;
    drop(f);
    let cache = Cache::open(dir.path())?;
    assert!(
        cache
            .check(false)?
            .iter()
            .any(|w| matches!(w, Warning::Integrity(_)))
    );
    cache.check(true)?;
    assert_eq!(cache.check(false)?, []);
    assert_eq!(cache.get::<i64>(999)?, Some(999));
    Ok(())
}

#[test]
fn deleting_file_values_prunes_empty_directories() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().disk_min_file_size(1).open(dir.path())?;
    for v in 0..20 {
        cache.set(v, format!("value {v}"))?;
    }
    assert_eq!(value_files(dir.path()).len(), 20);
    cache.clear()?;
    let dirs = std::fs::read_dir(dir.path())?
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(dirs, 0);
    Ok(())
}
