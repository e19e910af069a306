//! Iteration, queues, `peek_item`, memoize and the storage trait.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{builder_with, clock};
use dcache_core::{
    Cache, Error, PushOptions, QUEUE_START, QueueKey, SetOptions, Side, Storage, Update,
};
use dcache_core::{CheckMode, Order};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn keys_iterate_in_insertion_order_and_skip_later_inserts() -> TestResult {
    let cache = Cache::temp()?;
    for (i, k) in "abcdef".chars().enumerate() {
        cache.set(k.to_string(), i)?;
    }
    let mut it = cache.keys::<String>()?;
    let first: Vec<String> = it.by_ref().take(6).collect::<Result<_, _>>()?;
    assert_eq!(first, ["a", "b", "c", "d", "e", "f"]);
    cache.set("g", 6)?;
    assert!(
        it.next().is_none(),
        "an iterator created before an insert does not yield it"
    );

    let rev: Vec<String> = cache.keys_rev()?.collect::<Result<_, _>>()?;
    assert_eq!(rev, ["g", "f", "e", "d", "c", "b", "a"]);
    // Overwriting keeps the position.
    cache.set("a", 100)?;
    let again: Vec<String> = cache.keys()?.collect::<Result<_, _>>()?;
    assert_eq!(again[0], "a");
    assert!(Cache::temp()?.keys::<String>()?.next().is_none());
    Ok(())
}

#[test]
fn iteration_pages_through_many_keys_including_expired() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).cull_limit(0).open_temp()?;
    cache.transact(|c| -> Result<(), Error> {
        for n in 0..1050 {
            c.set_with(n, n, SetOptions::new().expire(Duration::ZERO))?;
        }
        Ok(())
    })?;
    let keys: Vec<i64> = cache.keys()?.collect::<Result<_, _>>()?;
    assert_eq!(keys, (0..1050).collect::<Vec<_>>());
    let rev: Vec<i64> = cache.keys_rev()?.collect::<Result<_, _>>()?;
    assert_eq!(rev, (0..1050).rev().collect::<Vec<_>>());
    Ok(())
}

#[test]
fn sorted_keys_follow_sqlite_order() -> TestResult {
    let cache = Cache::temp()?;
    for k in [3i64, 1, 2] {
        cache.set(k, 0)?;
    }
    let sorted: Vec<i64> = cache
        .sorted_keys(Order::Ascending)
        .collect::<Result<_, _>>()?;
    assert_eq!(sorted, [1, 2, 3]);
    let rev: Vec<i64> = cache
        .sorted_keys(Order::Descending)
        .collect::<Result<_, _>>()?;
    assert_eq!(rev, [3, 2, 1]);
    let texts = Cache::temp()?;
    for n in (0..250).rev() {
        texts.set(format!("k{n:04}"), n)?;
    }
    let text: Vec<String> = texts
        .sorted_keys(Order::Ascending)
        .collect::<Result<_, _>>()?;
    assert_eq!(text.len(), 250);
    assert!(text.windows(2).all(|w| w[0] < w[1]));
    Ok(())
}

#[test]
fn a_checkpoint_is_not_blocked_during_a_long_iteration() -> TestResult {
    let cache = Cache::temp()?;
    cache.transact(|c| -> Result<(), Error> {
        for n in 0..1000 {
            c.set(n, n)?;
        }
        Ok(())
    })?;
    let mut keys = cache.keys::<i64>()?;
    keys.next().transpose()?; // first page read
    let other = rusqlite::Connection::open(cache.directory().join("cache.db"))?;
    other.busy_timeout(Duration::ZERO)?;
    let (busy, _log, _done): (i64, i64, i64) =
        other.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    assert_eq!(
        busy, 0,
        "the iterator holds no read transaction between pages"
    );
    assert_eq!(keys.count(), 999);
    Ok(())
}

#[test]
fn queues_push_and_pull_in_order() -> TestResult {
    let cache = Cache::temp()?;
    for v in 0..10 {
        cache.push(v)?;
    }
    for v in 0..10 {
        let (_, e) = cache.pull::<i64>(None, Side::Front)?.unwrap();
        assert_eq!(e.value, v);
    }
    assert_eq!(cache.len()?, 0);
    for v in 0..10 {
        cache.push_with(v, PushOptions::new().prefix("key"))?;
    }
    for v in 0..10 {
        let (k1, peeked) = cache.peek::<i64>(Some("key"), Side::Front)?.unwrap();
        let (k2, pulled) = cache.pull::<i64>(Some("key"), Side::Front)?.unwrap();
        assert_eq!(k1, k2);
        assert!(matches!(&k2, QueueKey::Text(t) if t.starts_with("key-")));
        assert_eq!((peeked.value, pulled.value), (v, v));
    }
    assert_eq!(cache.pull::<i64>(None, Side::Front)?, None);
    // Front pushes go below the start.
    assert_eq!(
        cache.push_with("b", PushOptions::new().side(Side::Front))?,
        QueueKey::Int(QUEUE_START)
    );
    assert_eq!(
        cache.push_with("a", PushOptions::new().side(Side::Front))?,
        QueueKey::Int(QUEUE_START - 1)
    );
    assert_eq!(
        cache.push_with("t", PushOptions::new().prefix("p"))?,
        QueueKey::Text("p-500000000000000".into())
    );
    let (k, e) = cache.pull::<String>(None, Side::Back)?.unwrap();
    assert_eq!((k, e.value.as_str()), (QueueKey::Int(QUEUE_START), "b"));
    assert!(cache.check(CheckMode::Report)?.is_empty());
    Ok(())
}

#[test]
fn pull_skips_expired_entries_and_peek_keeps_the_item() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    for _ in 0..3 {
        cache.push_with(0, PushOptions::new().expire(Duration::from_millis(100)))?;
    }
    cache.push(1)?;
    clock.advance(Duration::from_millis(200));
    let (key, e) = cache.peek::<i64>(None, Side::Front)?.unwrap();
    assert_eq!((key, e.value), (QueueKey::Int(500_000_000_000_003), 1));
    assert_eq!(cache.len()?, 1);
    let (key, _) = cache.pull::<i64>(None, Side::Front)?.unwrap();
    assert_eq!(key, QueueKey::Int(500_000_000_000_003));
    assert_eq!(cache.len()?, 0);
    Ok(())
}

#[test]
fn queues_carry_file_values_expiry_and_tags() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    let big = b"test".repeat(1 << 20);
    cache.push_with(
        &big,
        PushOptions::new()
            .tag("foo")
            .expire(Duration::from_secs(10)),
    )?;
    let (_, e) = cache.peek::<Vec<u8>>(None, Side::Front)?.unwrap();
    assert_eq!(e.value, big);
    assert_eq!(e.tag, Some("foo".into()));
    assert!(e.expire_time.is_some());
    let (_, e) = cache.pull::<Vec<u8>>(None, Side::Front)?.unwrap();
    assert_eq!(e.value, big);
    assert_eq!(common::value_files(dir.path()).len(), 0);
    assert!(cache.check(CheckMode::Report)?.is_empty());
    Ok(())
}

#[test]
fn peek_item_skips_and_removes_expired_tail_items() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    assert!(cache.peek_item::<String, i64>(Side::Back)?.is_none());
    cache.set("a", 0)?;
    cache.set("b", 1)?;
    cache.set_with(
        "c",
        2,
        SetOptions::new().expire(Duration::from_secs(10)).tag("foo"),
    )?;
    cache.set_with("d", 3, SetOptions::new().expire(Duration::from_millis(100)))?;
    cache.set_with("e", 4, SetOptions::new().expire(Duration::from_millis(100)))?;
    clock.advance(Duration::from_millis(200));
    let (key, e) = cache.peek_item::<String, i64>(Side::Back)?.unwrap();
    assert_eq!((key.as_str(), e.value, e.tag), ("c", 2, Some("foo".into())));
    assert!(e.expire_time.is_some());
    assert_eq!(cache.len()?, 3, "d and e were removed");
    let (key, _) = cache.peek_item::<String, i64>(Side::Front)?.unwrap();
    assert_eq!(key, "a");
    let (key, _) = cache.pop_item::<String, i64>(Side::Front)?.unwrap();
    assert_eq!(key, "a");
    assert_eq!(cache.len()?, 2);
    Ok(())
}

#[test]
fn memoize_caches_successes_once_and_exposes_keys() -> TestResult {
    let cache = Cache::temp()?;
    cache.set_statistics(true)?;
    let m = cache.memoize("fib");
    let calls = AtomicUsize::new(0);
    for round in 0..2 {
        for n in 0..5i64 {
            let v: i64 = m.call(&(n,), || -> Result<i64, Error> {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(n * 10)
            })?;
            assert_eq!(v, n * 10, "round {round}");
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let s = cache.reset_stats()?;
    assert_eq!((s.hits, s.misses), (5, 5), "the second pass is all hits");
    // Errors are not cached.
    let failed: Result<i64, Error> = m.call(&(99,), || Err(Error::KeyNotFound));
    assert!(failed.is_err());
    assert!(!cache.contains(m.key(&(99,)))?);
    // Invalidation through the key.
    assert!(cache.delete(m.key(&(3,)))?);
    let v: i64 = m.call(&(3,), || -> Result<i64, Error> { Ok(-1) })?;
    assert_eq!(v, -1);
    // A zero expiry caches nothing.
    let z = cache.memoize("zero").expire(Duration::ZERO);
    let _: i64 = z.call(&(), || -> Result<i64, Error> { Ok(1) })?;
    assert!(!cache.contains(z.key(&()))?);
    Ok(())
}

#[test]
fn concurrent_callers_of_a_cold_key_share_one_computation() -> TestResult {
    let cache = Cache::temp()?;
    let m = cache.memoize("slow");
    let calls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (m, calls) = (m.clone(), calls.clone());
            std::thread::spawn(move || {
                m.call(&("x",), || -> Result<String, Error> {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    Ok("done".into())
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap()?, "done");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn storage_update_is_an_atomic_read_modify_write() -> TestResult {
    let cache = Cache::temp()?;
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.retrying();
            std::thread::spawn(move || -> Result<(), Error> {
                for _ in 0..50 {
                    Storage::update(
                        &cache,
                        "avg",
                        SetOptions::new(),
                        |cur: Option<(f64, u64)>| {
                            let (total, count) = cur.unwrap_or((0.0, 0));
                            (Update::Set((total + 2.0, count + 1)), ())
                        },
                    )?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap()?;
    }
    assert_eq!(cache.get::<(f64, u64)>("avg")?, Some((400.0, 200)));
    let removed = Storage::update(&cache, "avg", SetOptions::new(), |_: Option<(f64, u64)>| {
        (Update::Delete, true)
    })?;
    assert!(removed);
    assert!(!cache.contains("avg")?);
    let kept: Option<i64> = Storage::update(&cache, "n", SetOptions::new(), |cur: Option<i64>| {
        (Update::Keep, cur)
    })?;
    assert_eq!(kept, None);
    Ok(())
}
