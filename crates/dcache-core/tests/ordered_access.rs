//! Items with values in insertion and key order, the n-th entry by key, and in-place queue
//! rotation and reversal: what the persistent `Deque` and `Index` are built on.

mod common;

use std::time::Duration;

use common::{builder_with, clock};
use dcache_core::{Cache, Error, PushOptions, QUEUE_START, QueueKey, SetOptions, Side};
use dcache_core::{CheckMode, Order};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The queue's (key, value) pairs in key order.
fn queue(cache: &Cache) -> Result<Vec<(i64, i64)>, Error> {
    cache.sorted_items(Order::Ascending).collect()
}

fn values(cache: &Cache) -> Result<Vec<i64>, Error> {
    cache
        .sorted_items::<i64, i64>(Order::Ascending)
        .map(|r| r.map(|(_, v)| v))
        .collect()
}

#[test]
fn items_follow_insertion_order_and_skip_expired_and_later_inserts() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    cache.transact(|c| -> Result<(), Error> {
        for n in 0..250i64 {
            let opts = if n % 10 == 3 {
                SetOptions::new().expire(Duration::from_secs(1))
            } else {
                SetOptions::new()
            };
            c.set_with(format!("k{}", 1000 - n), n, opts)?;
        }
        Ok(())
    })?;
    clock.advance(Duration::from_secs(2));
    let expected: Vec<(String, i64)> = (0..250i64)
        .filter(|n| n % 10 != 3)
        .map(|n| (format!("k{}", 1000 - n), n))
        .collect();
    let mut it = cache.items::<String, i64>()?;
    let items: Vec<(String, i64)> = it.by_ref().collect::<Result<_, _>>()?;
    assert_eq!(
        items, expected,
        "pages of 100 in rowid order, expired skipped"
    );
    let mut rev: Vec<(String, i64)> = cache.items_rev()?.collect::<Result<_, _>>()?;
    rev.reverse();
    assert_eq!(rev, expected);

    let mut fresh = cache.items::<String, i64>()?;
    cache.set("later", 1)?;
    assert_eq!(
        fresh.by_ref().count(),
        expected.len(),
        "later inserts are not yielded"
    );
    // Overwriting keeps the position.
    cache.set("k1000", -1)?;
    let first = cache.items::<String, i64>()?.next().transpose()?;
    assert_eq!(first, Some(("k1000".to_owned(), -1)));
    Ok(())
}

#[test]
fn items_skip_entries_removed_during_iteration_and_report_wrong_types() -> TestResult {
    let cache = Cache::temp()?;
    for n in 0..300i64 {
        cache.set(n, n)?;
    }
    let mut it = cache.items::<i64, i64>()?;
    assert_eq!(it.next().transpose()?, Some((0, 0)));
    // The first page (100 rows) is read: removals show from the next page on.
    for n in (1..300).step_by(2) {
        cache.delete(n)?;
    }
    let rest: Vec<i64> = it.map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    let expected: Vec<i64> = (1..100).chain((100..300).step_by(2)).collect();
    assert_eq!(rest, expected);

    cache.set(1000, "text")?;
    let results: Vec<_> = cache.items::<i64, i64>()?.collect();
    assert_eq!(results.len(), 151);
    assert!(matches!(
        results.last(),
        Some(Err(Error::Disk(dcache_disk::Error::WrongType { .. })))
    ));
    Ok(())
}

#[test]
fn items_read_value_files_and_skip_missing_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    let big = "x".repeat(40_000);
    cache.set("a", &big)?;
    cache.set("b", "small")?;
    cache.set("c", &big)?;
    let items: Vec<(String, String)> = cache.items()?.collect::<Result<_, _>>()?;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].1, big);
    let files = common::value_files(dir.path());
    std::fs::remove_file(dir.path().join(&files[0]))?;
    let keys: Vec<String> = cache
        .items::<String, String>()?
        .map(|r| r.map(|(k, _)| k))
        .collect::<Result<_, _>>()?;
    assert_eq!(keys.len(), 2, "a value whose file is gone reads as a miss");
    Ok(())
}

#[test]
fn sorted_items_page_by_key_in_both_directions() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    cache.transact(|c| -> Result<(), Error> {
        for n in (0..230i64).rev() {
            c.set(n * 3, n)?;
        }
        c.set_with(-1, -1, SetOptions::new().expire(Duration::ZERO))
    })?;
    let items: Vec<(i64, i64)> = cache
        .sorted_items(Order::Ascending)
        .collect::<Result<_, _>>()?;
    assert_eq!(items, (0..230).map(|n| (n * 3, n)).collect::<Vec<_>>());
    let rev: Vec<(i64, i64)> = cache
        .sorted_items(Order::Descending)
        .collect::<Result<_, _>>()?;
    assert_eq!(rev, (0..230).rev().map(|n| (n * 3, n)).collect::<Vec<_>>());

    // Removal during iteration is tolerated (from the next page of 100 on); keys added past
    // the position are yielded.
    let mut it = cache.sorted_items::<i64, i64>(Order::Ascending);
    assert_eq!(it.next().transpose()?, Some((0, 0)));
    cache.delete(3 * 150)?;
    cache.set(10_000, 7)?;
    let rest: Vec<i64> = it.map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    assert_eq!(rest.first(), Some(&3));
    assert!(!rest.contains(&450));
    assert_eq!(rest.last(), Some(&10_000));
    assert_eq!(rest.len(), 229);
    Ok(())
}

#[test]
fn nth_sorted_finds_entries_from_both_ends() -> TestResult {
    let clock = clock();
    let cache = builder_with(&clock).open_temp()?;
    for n in [50i64, 10, 40, 20, 30] {
        cache.set(n, n * 10)?;
    }
    cache.set_with(25, 0, SetOptions::new().expire(Duration::from_secs(1)))?;
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.nth_sorted_key::<i64>(0, Order::Ascending)?, Some(10));
    assert_eq!(
        cache.nth_sorted_key::<i64>(2, Order::Ascending)?,
        Some(30),
        "expired 25 is skipped"
    );
    assert_eq!(cache.nth_sorted_key::<i64>(4, Order::Ascending)?, Some(50));
    assert_eq!(cache.nth_sorted_key::<i64>(5, Order::Ascending)?, None);
    assert_eq!(
        cache.nth_sorted_key::<i64>(u64::MAX, Order::Ascending)?,
        None
    );
    assert_eq!(cache.nth_sorted_key::<i64>(0, Order::Descending)?, Some(50));
    assert_eq!(cache.nth_sorted_key::<i64>(3, Order::Descending)?, Some(20));
    assert_eq!(
        cache.nth_sorted_item::<i64, i64>(1, Order::Ascending)?,
        Some((20, 200))
    );
    assert_eq!(
        cache.nth_sorted_item::<i64, i64>(1, Order::Descending)?,
        Some((40, 400))
    );
    assert_eq!(
        cache.nth_sorted_item::<i64, i64>(5, Order::Descending)?,
        None
    );
    assert!(matches!(
        cache.nth_sorted_item::<i64, String>(0, Order::Ascending),
        Err(Error::Disk(dcache_disk::Error::WrongType { .. }))
    ));
    Ok(())
}

#[test]
fn rotate_queue_moves_blocks_in_one_statement_with_pythons_keys() -> TestResult {
    let cache = Cache::temp()?;
    cache.rotate_queue(3)?; // empty: nothing to do
    for n in 0..5 {
        cache.push(n)?;
    }
    let s = QUEUE_START;
    cache.rotate_queue(2)?;
    // python: pop 4 -> appendleft (s-1), pop 3 -> appendleft (s-2).
    assert_eq!(
        queue(&cache)?,
        [(s - 2, 3), (s - 1, 4), (s, 0), (s + 1, 1), (s + 2, 2)]
    );
    cache.rotate_queue(-2)?;
    // python: popleft 3 -> append (s+3), popleft 4 -> append (s+4).
    assert_eq!(
        queue(&cache)?,
        [(s, 0), (s + 1, 1), (s + 2, 2), (s + 3, 3), (s + 4, 4)]
    );
    cache.rotate_queue(5 * 1000 + 1)?; // modulo the length
    assert_eq!(values(&cache)?, [4, 0, 1, 2, 3]);
    cache.rotate_queue(-11)?;
    assert_eq!(values(&cache)?, [0, 1, 2, 3, 4]);
    cache.rotate_queue(5)?;
    cache.rotate_queue(-5)?;
    assert_eq!(values(&cache)?, [0, 1, 2, 3, 4]);
    cache.rotate_queue(i64::MIN)?; // -(2^63) mod 5 = 3 to the left
    assert_eq!(values(&cache)?, [3, 4, 0, 1, 2]);
    cache.rotate_queue(i64::MAX)?; // 2^63 - 1 mod 5 = 2 to the right
    assert_eq!(values(&cache)?, [1, 2, 3, 4, 0]);
    assert!(
        cache.check(CheckMode::Report)?.is_empty(),
        "count and size stay right"
    );
    Ok(())
}

#[test]
fn rotate_queue_keeps_gaps_in_order_and_moves_value_files_untouched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    for n in 0..300i64 {
        cache.push(format!(
            "{n:06}{}",
            "v".repeat(if n % 50 == 0 { 40_000 } else { 0 })
        ))?;
    }
    for n in (0..300).step_by(7) {
        cache.delete(QUEUE_START + n)?;
    }
    let strings = |c: &Cache| -> Result<Vec<String>, Error> {
        c.sorted_items::<i64, String>(Order::Ascending)
            .map(|r| r.map(|(_, v)| v))
            .collect()
    };
    let mut model = std::collections::VecDeque::from(strings(&cache)?);
    let files = common::value_files(dir.path());
    let len = model.len() as i64;
    for steps in [1i64, -1, 123, -200, 257, 0, -len - 3, len] {
        cache.rotate_queue(steps)?;
        let k = steps.rem_euclid(len) as usize;
        model.rotate_right(k);
        assert_eq!(
            strings(&cache)?,
            Vec::from(model.clone()),
            "rotate({steps})"
        );
    }
    assert_eq!(
        common::value_files(dir.path()),
        files,
        "no value file rewritten"
    );
    assert!(cache.check(CheckMode::Report)?.is_empty());
    Ok(())
}

#[test]
fn reverse_queue_swaps_keys_in_place() -> TestResult {
    let cache = Cache::temp()?;
    cache.reverse_queue()?; // empty
    cache.push(1)?;
    cache.reverse_queue()?;
    assert_eq!(queue(&cache)?, [(QUEUE_START, 1)]);
    for n in 2..=250 {
        cache.push(n)?;
    }
    cache.delete(QUEUE_START + 10)?;
    let keys: Vec<i64> = queue(&cache)?.into_iter().map(|(k, _)| k).collect();
    let mut vals = values(&cache)?;
    cache.reverse_queue()?;
    vals.reverse();
    assert_eq!(values(&cache)?, vals);
    let after: Vec<i64> = queue(&cache)?.into_iter().map(|(k, _)| k).collect();
    let mirrored: Vec<i64> = keys
        .iter()
        .rev()
        .map(|k| keys[0] + keys[keys.len() - 1] - k)
        .collect();
    assert_eq!(
        after, mirrored,
        "keys mirror around the middle: gaps mirror too"
    );
    cache.reverse_queue()?;
    vals.reverse();
    assert_eq!(values(&cache)?, vals);
    assert!(cache.check(CheckMode::Report)?.is_empty());
    Ok(())
}

#[test]
fn reverse_and_rotate_near_the_edges_of_the_key_range() -> TestResult {
    let cache = Cache::temp()?;
    // Keys near the top: reversing mirrors below the front instead.
    let top = 999_999_999_999_993i64; // keys up to ...997: no room above for a mirror
    for (i, k) in (top..top + 5).enumerate() {
        cache.set(k, i as i64)?;
    }
    cache.reverse_queue()?;
    assert_eq!(
        queue(&cache)?,
        (top..top + 5).zip((0..5).rev()).collect::<Vec<_>>()
    );
    // Rotating left past the top cannot fit: an error, and nothing changed.
    assert!(matches!(cache.rotate_queue(-3), Err(Error::QueueExhausted)));
    assert_eq!(values(&cache)?, [4, 3, 2, 1, 0]);
    cache.rotate_queue(2)?; // to the right moves keys down: fine
    assert_eq!(values(&cache)?, [1, 0, 4, 3, 2]);

    let low = Cache::temp()?;
    for k in 1..=4i64 {
        low.set(k, k)?;
    }
    assert!(matches!(low.rotate_queue(1), Err(Error::QueueExhausted)));
    low.rotate_queue(-1)?;
    assert_eq!(values(&low)?, [2, 3, 4, 1]);
    low.reverse_queue()?;
    assert_eq!(values(&low)?, [1, 4, 3, 2]);

    // A key spanning the whole range leaves no room either way.
    let wide = Cache::temp()?;
    wide.set(1, 1)?;
    wide.set(999_999_999_999_998i64, 2)?;
    assert!(matches!(wide.reverse_queue(), Err(Error::QueueExhausted)));
    Ok(())
}

#[test]
fn rotate_queue_refuses_float_keys_at_the_block_edges_and_ignores_other_keys() -> TestResult {
    let cache = Cache::temp()?;
    cache.set("text", 0)?;
    cache.set(-5, 0)?;
    cache.set_with(1_000_000_000_000_000i64, 0, SetOptions::new())?;
    for n in 0..3 {
        cache.push(n)?;
    }
    cache.rotate_queue(1)?;
    assert_eq!(
        cache.peek::<i64>(None, Side::Front)?.map(|(_, e)| e.value),
        Some(2)
    );
    assert_eq!(cache.get::<i64>("text")?, Some(0));
    assert_eq!(cache.get::<i64>(-5)?, Some(0));
    assert_eq!(cache.get::<i64>(1_000_000_000_000_000i64)?, Some(0));

    cache.set(3.5, 9)?;
    assert!(matches!(
        cache.rotate_queue(-1),
        Err(Error::NotAQueueKey { .. })
    ));
    // Prefixed queues are not touched.
    cache.push_with(7, PushOptions::new().prefix("p"))?;
    cache.delete(3.5)?;
    cache.reverse_queue()?;
    assert_eq!(
        cache.peek::<i64>(Some("p"), Side::Front)?.map(|(k, _)| k),
        Some(QueueKey::Text("p-500000000000000".into()))
    );
    Ok(())
}

#[test]
fn rotation_inside_a_transaction_rolls_back_with_it() -> TestResult {
    let cache = Cache::temp()?;
    for n in 0..4 {
        cache.push(n)?;
    }
    let r: Result<(), Error> = cache.transact(|c| {
        c.rotate_queue(1)?;
        c.reverse_queue()?;
        Err(Error::KeyNotFound)
    });
    assert!(r.is_err());
    assert_eq!(values(&cache)?, [0, 1, 2, 3]);
    Ok(())
}
