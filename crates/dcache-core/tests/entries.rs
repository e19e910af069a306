//! Inspection API: entry listings with metadata, values of any type, expired counts, the
//! summary and `vacuum`.

mod common;

use std::time::{Duration, SystemTime};

use common::{builder_with, clock};
use dcache_core::CheckMode;
use dcache_core::disk::Mode;
use dcache_core::{Cache, EntryQuery, Error, SetOptions, SqlValue, Tag, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn keys_of(cache: &Cache, query: EntryQuery) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for entry in cache.entries(query)? {
        out.push(entry?.key?);
    }
    Ok(out)
}

#[test]
fn entries_page_in_insertion_order_both_ways_with_a_tag_filter() -> TestResult {
    let cache = Cache::temp()?;
    for n in 0..250i64 {
        let tag = if n % 3 == 0 { "three" } else { "other" };
        cache.set_with(n, n * 2, SetOptions::new().tag(tag))?;
    }
    // An overwrite keeps the entry's place.
    cache.set(5i64, "five")?;
    let all = keys_of(&cache, EntryQuery::new())?;
    assert_eq!(all, (0..250).map(Value::from).collect::<Vec<_>>());
    let reversed = keys_of(&cache, EntryQuery::new().reverse(true))?;
    assert_eq!(
        reversed,
        (0..250).rev().map(Value::from).collect::<Vec<_>>()
    );
    let tagged = keys_of(&cache, EntryQuery::new().tag("three"))?;
    assert_eq!(
        tagged,
        (0..250)
            .filter(|n| n % 3 == 0)
            .map(Value::from)
            .collect::<Vec<_>>()
    );
    let tagged_rev = keys_of(&cache, EntryQuery::new().tag("three").reverse(true))?;
    assert_eq!(
        tagged_rev,
        (0..250)
            .rev()
            .filter(|n| n % 3 == 0)
            .map(Value::from)
            .collect::<Vec<_>>()
    );
    assert!(keys_of(&cache, EntryQuery::new().tag("none"))?.is_empty());
    // With the tag index the same answer.
    cache.create_tag_index()?;
    assert_eq!(keys_of(&cache, EntryQuery::new().tag("three"))?, tagged);
    Ok(())
}

#[test]
fn entries_carry_the_row_metadata() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    let t0 = clock_now(&clock);
    cache.set("text", "hello")?;
    clock.advance(Duration::from_secs(1));
    cache.set_with(
        ("tuple", 1),
        vec![0u8; 40_000].as_slice(),
        SetOptions::new().expire(Duration::from_secs(10)).tag(7i64),
    )?;
    let entries: Vec<_> = cache
        .entries(EntryQuery::new())?
        .collect::<Result<_, _>>()?;
    assert_eq!(entries.len(), 2);
    let text = &entries[0];
    assert_eq!(text.key.as_ref().ok(), Some(&Value::from("text")));
    assert_eq!(text.key_column, SqlValue::Text("text".into()));
    assert!(text.raw);
    assert_eq!(text.store_time, Some(t0));
    assert_eq!(text.access_time, Some(t0));
    assert_eq!((text.expire_time, text.tag.as_ref()), (None, None));
    assert_eq!((text.mode, text.size, text.inline_len), (Mode::RAW, 0, 5));
    assert!(!text.in_file());
    assert_eq!(text.value_size(), 5);
    assert_eq!(cache.decode_value(text)?, Value::from("hello"));

    let file = &entries[1];
    assert_eq!(
        file.key.as_ref().ok(),
        Some(&Value::Tuple(vec![Value::from("tuple"), Value::from(1)]))
    );
    assert!(!file.raw, "a tuple key is pickled");
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(file.store_time, Some(t1));
    assert_eq!(file.expire_time, Some(t1 + Duration::from_secs(10)));
    assert_eq!(file.tag, Some(Tag::Integer(7)));
    assert_eq!(
        (file.mode, file.size, file.inline_len),
        (Mode::BINARY, 40_000, 0)
    );
    let filename = file.filename.as_deref().expect("in a file");
    assert_eq!(
        std::path::Path::new(filename).extension(),
        Some("val".as_ref())
    );
    assert_eq!(file.value_size(), 40_000);
    assert!(!file.is_expired_at(t1 + Duration::from_secs(9)));
    assert!(file.is_expired_at(t1 + Duration::from_secs(10)));
    assert_eq!(cache.decode_value(file)?, Value::Bytes(vec![0u8; 40_000]));
    assert!(file.rowid > text.rowid);
    Ok(())
}

fn clock_now(clock: &dcache_core::ManualClock) -> SystemTime {
    dcache_core::Clock::now(clock)
}

#[test]
fn values_of_every_mode_decode_as_python_values() -> TestResult {
    let cache = Cache::builder().disk_min_file_size(16).open_temp()?;
    cache.set("int", 42)?;
    cache.set("float", 1.5)?;
    cache.set("text-file", "t".repeat(20))?;
    cache.set("pickle", vec![("a", 1)])?;
    cache.set("pickle-file", vec!["x".repeat(20)])?;
    cache.set("none", ())?;
    let decoded: Vec<String> = cache
        .entries(EntryQuery::new())?
        .map(|e| Ok(cache.decode_value(&e?)?.to_string()))
        .collect::<Result<_, Error>>()?;
    assert_eq!(
        decoded,
        [
            "42".to_owned(),
            "1.5".to_owned(),
            format!("'{}'", "t".repeat(20)),
            "[('a', 1)]".to_owned(),
            format!("['{}']", "x".repeat(20)),
            "None".to_owned(),
        ]
    );
    Ok(())
}

#[test]
fn a_listing_without_values_has_no_inline_values_to_decode() -> TestResult {
    let cache = Cache::builder().disk_min_file_size(16).open_temp()?;
    cache.set("small", "abc")?;
    cache.set("big", "b".repeat(20))?;
    let entries: Vec<_> = cache
        .entries(EntryQuery::new().values(false))?
        .collect::<Result<_, _>>()?;
    assert!(entries[0].stored().is_none());
    assert_eq!(entries[0].inline_len, 3, "the length is known all the same");
    let err = cache.decode_value(&entries[0]).unwrap_err();
    assert!(
        err.to_string().contains("EntryQuery::values(true)"),
        "{err}"
    );
    // A value in a file needs no inline column.
    assert_eq!(
        cache.decode_value(&entries[1])?,
        Value::from("b".repeat(20))
    );
    Ok(())
}

#[test]
fn the_listing_goes_on_past_keys_and_rows_it_cannot_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("first", 1)?;
    {
        let conn = rusqlite::Connection::open(dir.path().join("cache.db"))?;
        // A pickled key that is not a pickle, a TEXT key that is not UTF-8, a bad mode.
        conn.execute(
            "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, \
             tag, size, mode, filename, value) VALUES (x'00ff', 0, 1.0, NULL, 1.0, 0, NULL, 0, 1, NULL, 1)",
            [],
        )?;
        conn.execute(
            "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, \
             tag, size, mode, filename, value) VALUES (CAST(x'ff61' AS TEXT), 1, 1.0, NULL, 1.0, 0, \
             CAST(x'fe' AS TEXT), 0, 1, NULL, 2)",
            [],
        )?;
        conn.execute(
            "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, \
             tag, size, mode, filename, value) VALUES ('bad-mode', 1, 1.0, NULL, 1.0, 0, NULL, 0, \
             300, NULL, 3)",
            [],
        )?;
        conn.execute(
            "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, \
             tag, size, mode, filename, value) VALUES ('bad-text', 1, 1.0, NULL, 1.0, 0, NULL, \
             0, 1, NULL, CAST(x'c3' AS TEXT))",
            [],
        )?;
    }
    cache.set("last", 4)?;
    let items: Vec<_> = cache.entries(EntryQuery::new())?.collect();
    assert_eq!(items.len(), 6, "every row is reported");
    let first = items[0].as_ref().map_err(ToString::to_string)?;
    assert_eq!(first.key.as_ref().ok(), Some(&Value::from("first")));

    let pickled = items[1].as_ref().map_err(ToString::to_string)?;
    assert!(pickled.key.is_err());
    assert_eq!(pickled.key_column, SqlValue::Blob(vec![0x00, 0xff]));
    assert_eq!(cache.decode_value(pickled)?, Value::from(1));

    let not_utf8 = items[2].as_ref().map_err(ToString::to_string)?;
    let err = not_utf8.key.as_ref().unwrap_err().to_string();
    assert!(err.contains("not UTF-8"), "{err}");
    assert_eq!(not_utf8.key_column, SqlValue::Blob(vec![0xff, b'a']));
    assert_eq!(not_utf8.tag, Some(Tag::Blob(vec![0xfe])));

    let bad_mode = items[3].as_ref().unwrap_err().to_string();
    assert!(bad_mode.contains("mode 300"), "{bad_mode}");

    let bad_text = items[4].as_ref().map_err(ToString::to_string)?;
    assert_eq!(bad_text.key.as_ref().ok(), Some(&Value::from("bad-text")));
    assert!(bad_text.stored().is_none());
    let err = cache.decode_value(bad_text).unwrap_err().to_string();
    assert!(err.contains("stored text is not UTF-8"), "{err}");

    let last = items[5].as_ref().map_err(ToString::to_string)?;
    assert_eq!(last.key.as_ref().ok(), Some(&Value::from("last")));
    Ok(())
}

#[test]
fn a_listing_skips_later_inserts_and_removed_entries() -> TestResult {
    let cache = Cache::temp()?;
    for n in 0..150i64 {
        cache.set(n, n)?;
    }
    let mut entries = cache.entries(EntryQuery::new().values(false))?;
    let first = entries.next().expect("an entry")?;
    assert_eq!(first.key?, Value::from(0));
    cache.set(1000i64, 0)?;
    cache.delete(149i64)?;
    let rest: Vec<Value> = entries
        .map(|e| e.map(|e| e.key))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(rest, (1..149).map(Value::from).collect::<Vec<_>>());
    assert_eq!(cache.entries(EntryQuery::new())?.count(), 150);
    assert_eq!(Cache::temp()?.entries(EntryQuery::new())?.count(), 0);
    Ok(())
}

#[test]
fn entry_info_sees_live_entries_only_and_never_records() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).statistics(true).open_temp()?;
    cache.set_with(
        "soon",
        "v",
        SetOptions::new().expire(Duration::from_secs(5)),
    )?;
    let info = cache.entry_info("soon")?.expect("live");
    assert_eq!(info.key?, Value::from("soon"));
    assert_eq!(
        cache.decode_value(&cache.entry_info("soon")?.expect("live"))?,
        Value::from("v")
    );
    assert!(cache.entry_info("missing")?.is_none());
    let summary = cache.summary()?;
    assert_eq!((summary.stats.hits, summary.stats.misses), (0, 0));
    clock.advance(Duration::from_secs(5));
    assert!(cache.entry_info("soon")?.is_none(), "expired");
    Ok(())
}

#[test]
fn get_value_decodes_any_value_and_counts_like_get() -> TestResult {
    let cache = Cache::builder().statistics(true).open_temp()?;
    cache.set_with("point", (1, "a", vec![1.5]), SetOptions::new().tag("t"))?;
    cache.set("bytes", b"\x00\x01".as_slice())?;
    let entry = cache.get_value("point")?.expect("set");
    assert_eq!(entry.value.to_string(), "(1, 'a', [1.5])");
    assert_eq!(entry.tag, Some(Tag::from("t")));
    assert_eq!(
        cache.get_value("bytes")?.map(|e| e.value),
        Some(Value::Bytes(vec![0, 1]))
    );
    assert!(cache.get_value("missing")?.is_none());
    let stats = cache.summary()?.stats;
    assert_eq!((stats.hits, stats.misses), (2, 1));
    Ok(())
}

#[test]
fn expired_count_and_summary_follow_the_clock() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    for n in 1..=10u64 {
        cache.set_with(n, n, SetOptions::new().expire(Duration::from_secs(n)))?;
    }
    cache.set("file", vec![7u8; 50_000].as_slice())?;
    assert_eq!(cache.expired_count()?, 0);
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.expired_count()?, 4, "expire_time <= now is expired");
    let summary = cache.summary()?;
    assert_eq!(summary.entries, 11);
    assert_eq!(summary.expired, 4);
    assert_eq!(summary.files_size, 50_000);
    assert_eq!(summary.volume, cache.volume()?);
    // python's expire() removes `expire_time < now`: the entry expiring this instant stays.
    assert_eq!(cache.expire()?, 3);
    assert_eq!(cache.expired_count()?, 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(cache.expire()?, 1);
    assert_eq!(cache.expired_count()?, 0);
    Ok(())
}

#[test]
fn vacuum_shrinks_a_cache_without_auto_vacuum() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder().sqlite_auto_vacuum(0).open(dir.path())?;
    for n in 0..2000i64 {
        cache.set(n, "x".repeat(500))?;
    }
    cache.set("keep", "me")?;
    for n in 0..2000i64 {
        cache.delete(n)?;
    }
    let before = cache.volume()?;
    cache.vacuum()?;
    let after = cache.volume()?;
    assert!(after * 4 < before, "volume {before} -> {after}");
    assert_eq!(cache.get::<String>("keep")?.as_deref(), Some("me"));
    assert!(cache.check(CheckMode::Report)?.is_empty());
    // The log was truncated.
    let wal = dir.path().join("cache.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal)?.len() == 0);
    Ok(())
}

#[test]
fn vacuum_refuses_read_only_caches_and_transactions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.set("a", 1)?;
    let err = cache
        .transact(Cache::vacuum)
        .expect_err("inside a transaction");
    assert!(
        matches!(
            err,
            Error::InTransaction {
                operation: "vacuum"
            }
        ),
        "{err}"
    );
    let read_only = Cache::builder().read_only(true).open(dir.path())?;
    assert!(matches!(read_only.vacuum(), Err(Error::ReadOnly { .. })));
    assert_eq!(read_only.summary()?.entries, 1);
    Ok(())
}
