//! Every `Deque` operation, its errors, and its on-disk layout.

use std::cmp::Ordering;

use dcache_collections::{Deque, Error};
use dcache_core::{Cache, EvictionPolicy, JsonDisk, MsgpackDisk, QUEUE_START, Side};
use dcache_core::{CheckMode, Order};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn elements<T: serde::de::DeserializeOwned>(d: &Deque<T>) -> Result<Vec<T>, Error> {
    d.iter().collect()
}

/// The (key, element) pairs, in key order, read straight from the cache.
fn keyed(d: &Deque<i64>) -> Result<Vec<(i64, i64)>, dcache_core::Error> {
    d.cache().sorted_items(Order::Ascending).collect()
}

#[test]
fn append_and_appendleft_use_pythons_queue_keys() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.push_back(&1)?;
    d.push_back(&2)?;
    d.push_front(&0)?;
    d.push_front(&-1)?;
    let s = QUEUE_START;
    assert_eq!(keyed(&d)?, [(s - 2, -1), (s - 1, 0), (s, 1), (s + 1, 2)]);
    assert_eq!(d.len()?, 4);
    assert!(!d.is_empty()?);
    Ok(())
}

#[test]
fn open_persists_the_none_eviction_policy_and_reopens_the_elements() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let d: Deque<String> = Deque::open(dir.path())?;
        d.extend(["a", "b"].map(String::from))?;
        assert_eq!(d.directory(), std::path::absolute(dir.path())?);
    }
    let cache = Cache::open(dir.path())?;
    assert_eq!(cache.settings().eviction_policy, EvictionPolicy::None);
    let d: Deque<String> = Deque::open(dir.path())?;
    assert_eq!(elements(&d)?, ["a", "b"]);
    Ok(())
}

#[test]
fn temp_deques_remove_their_directory_with_the_last_handle() -> TestResult {
    let d = Deque::<i64>::temp()?;
    let dir = d.directory().to_path_buf();
    let copy = d.clone();
    drop(d);
    assert!(dir.exists(), "a clone still holds it");
    copy.push_back(&1)?;
    drop(copy);
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn pop_and_peek_at_both_ends_and_none_when_empty() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend([1, 2, 3])?;
    assert_eq!(d.back()?, Some(3));
    assert_eq!(d.front()?, Some(1));
    assert_eq!(d.len()?, 3);
    assert_eq!(d.pop_back()?, Some(3));
    assert_eq!(d.pop_front()?, Some(1));
    assert_eq!(d.pop_back()?, Some(2));
    // An empty deque is normal, as for `VecDeque`: `Ok(None)`, not an error.
    for (result, op) in [
        (d.pop_back(), "pop_back"),
        (d.pop_front(), "pop_front"),
        (d.back(), "back"),
        (d.front(), "front"),
    ] {
        match result {
            Ok(None) => {}
            other => panic!("{op} on an empty deque gave {other:?}"),
        }
    }
    Ok(())
}

/// An element whose serialization fails when asked to.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct Flaky(bool);

impl serde::Serialize for Flaky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            Err(serde::ser::Error::custom("refusing to serialize"))
        } else {
            s.serialize_bool(false)
        }
    }
}

#[test]
fn extend_and_extendleft_are_one_transaction_each() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend([3, 4])?;
    let borrowed: &[i64] = &[2, 1];
    d.extend_front(borrowed)?;
    assert_eq!(elements(&d)?, [1, 2, 3, 4]);
    d.extend(Vec::<i64>::new())?;
    assert_eq!(d.len()?, 4);
    // A failure half way leaves nothing behind.
    let flaky = Deque::<Flaky>::temp()?;
    flaky.push_back(&Flaky(false))?;
    let r = flaky.extend([Flaky(false), Flaky(true), Flaky(false)]);
    assert!(matches!(r, Err(Error::Cache(_))), "{r:?}");
    assert_eq!(flaky.len()?, 1);
    assert!(flaky.extend_front([Flaky(false), Flaky(true)]).is_err());
    assert_eq!(flaky.len()?, 1);
    Ok(())
}

#[test]
fn a_failing_transaction_rolls_back_every_element() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend([1, 2])?;
    let r: Result<(), Error> = d.transact(|d| {
        d.push_back(&3)?;
        d.pop_front()?;
        d.rotate(1)?;
        Err(Error::IndexOutOfRange { index: 7, len: 0 })
    });
    assert!(matches!(r, Err(Error::IndexOutOfRange { index: 7, .. })));
    assert_eq!(elements(&d)?, [1, 2]);
    let moved = d.transact(|d| -> Result<Option<i64>, Error> {
        let v = d.pop_front()?;
        if let Some(v) = v {
            d.push_back(&v)?;
        }
        Ok(v)
    })?;
    assert_eq!(moved, Some(1));
    assert_eq!(elements(&d)?, [2, 1]);
    Ok(())
}

#[test]
fn indexes_count_from_both_ends() -> TestResult {
    let d = Deque::<String>::temp()?;
    d.extend(["a", "b", "c", "d"].map(String::from))?;
    assert_eq!(d.get(0)?.as_deref(), Some("a"));
    assert_eq!(d.get(3)?.as_deref(), Some("d"));
    assert_eq!(d.get(-1)?.as_deref(), Some("d"));
    assert_eq!(d.get(-4)?.as_deref(), Some("a"));
    for bad in [4, 100, -5, i64::MIN, i64::MAX] {
        // Reading or removing past the ends is `Ok(None)`, as `VecDeque::get`/`remove`.
        assert_eq!(d.get(bad)?, None, "get({bad})");
        match d.set(bad, "x") {
            Err(Error::IndexOutOfRange { index, len }) => assert_eq!((index, len), (bad, 4)),
            other => panic!("set({bad}) gave {other:?}"),
        }
        assert_eq!(d.remove_at(bad)?, None, "remove_at({bad})");
    }
    assert_eq!(d.len()?, 4, "nothing removed");
    d.set(1, "B")?;
    d.set(-2, "C")?;
    assert_eq!(elements(&d)?, ["a", "B", "C", "d"]);
    assert_eq!(d.remove_at(-1)?.as_deref(), Some("d"));
    assert_eq!(d.remove_at(0)?.as_deref(), Some("a"));
    assert_eq!(elements(&d)?, ["B", "C"]);
    assert_eq!(d.get(1)?.as_deref(), Some("C"));
    let empty = Deque::<i64>::temp()?;
    assert_eq!(empty.get(0)?, None);
    assert_eq!(empty.get(-1)?, None);
    assert_eq!(empty.remove_at(0)?, None);
    Ok(())
}

#[test]
fn set_keeps_the_element_key_and_handles_value_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d: Deque<String> = Deque::open(dir.path())?;
    d.extend(["a", "b", "c"].map(String::from))?;
    let big = "x".repeat(100_000);
    d.set(1, big.as_str())?;
    assert_eq!(d.get(1)?, Some(big));
    d.set(1, "small")?;
    assert_eq!(elements(&d)?, ["a", "small", "c"]);
    assert!(
        d.cache().check(CheckMode::Report)?.is_empty(),
        "the old value file is gone"
    );
    Ok(())
}

#[test]
fn rotate_both_ways_modulo_the_length() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.rotate(3)?; // empty: nothing to do
    d.extend(0..5)?;
    d.rotate(2)?;
    assert_eq!(elements(&d)?, [3, 4, 0, 1, 2]);
    d.rotate(-1)?;
    assert_eq!(elements(&d)?, [4, 0, 1, 2, 3]);
    d.rotate(-7)?;
    assert_eq!(elements(&d)?, [1, 2, 3, 4, 0]);
    d.rotate(10)?;
    assert_eq!(elements(&d)?, [1, 2, 3, 4, 0]);
    d.rotate(0)?;
    d.rotate(1)?;
    assert_eq!(elements(&d)?, [0, 1, 2, 3, 4]);
    // python's keys: rotating right by 2 from contiguous keys gives start-2, start-1, ...
    let fresh = Deque::<i64>::temp()?;
    fresh.extend(0..5)?;
    fresh.rotate(2)?;
    let s = QUEUE_START;
    assert_eq!(
        keyed(&fresh)?,
        [(s - 2, 3), (s - 1, 4), (s, 0), (s + 1, 1), (s + 2, 2)]
    );
    Ok(())
}

#[test]
fn reverse_in_place() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.reverse()?;
    d.extend(0..7)?;
    d.reverse()?;
    assert_eq!(elements(&d)?, [6, 5, 4, 3, 2, 1, 0]);
    d.remove_at(2)?;
    d.reverse()?;
    assert_eq!(elements(&d)?, [0, 1, 2, 3, 5, 6]);
    assert_eq!(d.front()?, Some(0));
    assert_eq!(d.pop_back()?, Some(6));
    Ok(())
}

#[test]
fn contains_count_and_remove_the_first_match() -> TestResult {
    let d = Deque::<String>::temp()?;
    d.extend(["a", "b", "a", "c", "a"].map(String::from))?;
    assert!(d.contains("a")?);
    assert!(!d.contains("z")?);
    assert_eq!(d.count("a")?, 3);
    assert_eq!(d.count("z")?, 0);
    assert!(d.remove("a")?);
    assert_eq!(elements(&d)?, ["b", "a", "c", "a"]);
    assert!(d.remove("c")?);
    assert!(!d.remove("z")?);
    assert_eq!(elements(&d)?, ["b", "a", "a"]);
    Ok(())
}

#[test]
fn iteration_both_ways_across_pages_tolerates_concurrent_removal() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend(0..450)?;
    assert_eq!(elements(&d)?, (0..450).collect::<Vec<_>>());
    let rev: Vec<i64> = d.iter_rev().collect::<Result<_, _>>()?;
    assert_eq!(rev, (0..450).rev().collect::<Vec<_>>());

    let mut it = d.iter();
    assert_eq!(it.next().transpose()?, Some(0));
    // Another handle removes elements past the first page while we iterate.
    let other = d.clone();
    for _ in 0..100 {
        other.pop_back()?;
    }
    other.remove_at(200)?;
    let rest: Vec<i64> = it.collect::<Result<_, _>>()?;
    assert_eq!(rest.len(), 348);
    assert_eq!(rest.last(), Some(&349));
    assert!(!rest.contains(&200));

    let mut total = 0;
    for element in &d {
        total += element?;
    }
    assert_eq!(total, (0..350).sum::<i64>() - 200);
    Ok(())
}

#[test]
fn comparisons_with_slices_and_other_deques() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend([1, 2, 3])?;
    assert!(d.eq_items([1, 2, 3])?);
    let owned = vec![1, 2, 3];
    assert!(d.eq_items(&owned)?);
    assert!(d.eq_items(owned.iter())?);
    assert!(d.eq_items(owned.as_slice())?);
    assert!(!d.eq_items([1, 2])?);
    assert!(!d.eq_items([1, 2, 3, 4])?);
    assert!(!d.eq_items([1, 2, 4])?);
    assert_eq!(d.cmp_items([1, 2, 3])?, Some(Ordering::Equal));
    assert_eq!(d.cmp_items([1, 2, 4])?, Some(Ordering::Less));
    assert_eq!(d.cmp_items([1, 2])?, Some(Ordering::Greater));
    assert_eq!(d.cmp_items([1, 2, 3, 0])?, Some(Ordering::Less));
    assert_eq!(d.cmp_items([0, 9, 9, 9])?, Some(Ordering::Greater));

    let e = Deque::<i64, MsgpackDisk>::from_cache(
        Cache::builder()
            .disk(MsgpackDisk::new())
            .eviction_policy(EvictionPolicy::None)
            .open_temp()?,
    );
    e.extend_front([3, 2, 1])?;
    assert!(d.eq_deque(&e)?);
    assert_eq!(d.cmp_deque(&e)?, Some(Ordering::Equal));
    e.push_back(&0)?;
    assert!(!d.eq_deque(&e)?);
    assert_eq!(d.cmp_deque(&e)?, Some(Ordering::Less));
    assert_eq!(e.cmp_deque(&d)?, Some(Ordering::Greater));

    let f = Deque::<f64>::temp()?;
    f.extend([1.0, f64::NAN])?;
    assert_eq!(f.cmp_items([1.0, 2.0])?, None, "NaN is not comparable");
    assert!(!f.eq_items([1.0, f64::NAN])?);
    Ok(())
}

#[test]
fn maxlen_trims_the_opposite_end_on_push() -> TestResult {
    let d = Deque::<i64>::temp()?.with_maxlen(Some(3))?;
    assert_eq!(d.maxlen(), Some(3));
    d.extend(0..5)?;
    assert_eq!(elements(&d)?, [2, 3, 4]);
    d.push_back(&5)?;
    assert_eq!(elements(&d)?, [3, 4, 5]);
    d.push_front(&2)?;
    assert_eq!(elements(&d)?, [2, 3, 4], "appendleft drops from the back");
    d.extend_front([1, 0])?;
    assert_eq!(elements(&d)?, [0, 1, 2]);
    // Python trims one element per append; this handle trims down to maxlen even when
    // another handle made the deque longer.
    let unbounded = Deque::<i64>::from_cache(d.cache().clone());
    assert_eq!(unbounded.maxlen(), None);
    unbounded.extend(10..15)?;
    assert_eq!(unbounded.len()?, 8);
    d.push_back(&99)?;
    assert_eq!(elements(&d)?, [13, 14, 99]);
    Ok(())
}

#[test]
fn lowering_maxlen_trims_from_the_left_and_is_per_handle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d: Deque<i64> = Deque::open(dir.path())?;
    d.extend(0..10)?;
    d.set_maxlen(Some(20))?;
    assert_eq!(d.len()?, 10);
    d.set_maxlen(Some(4))?;
    assert_eq!(elements(&d)?, [6, 7, 8, 9]);
    d.set_maxlen(Some(0))?;
    assert!(d.is_empty()?);
    d.push_back(&1)?;
    assert!(d.is_empty()?, "maxlen 0 keeps nothing");
    d.set_maxlen(None)?;
    d.extend(0..3)?;
    let clone = d.clone().with_maxlen(Some(1))?;
    assert_eq!((d.maxlen(), clone.maxlen()), (None, Some(1)));
    assert_eq!(elements(&d)?, [2]);
    // Nothing about maxlen is stored: a fresh handle is unbounded.
    let reopened: Deque<i64> = Deque::open(dir.path())?;
    assert_eq!(reopened.maxlen(), None);
    reopened.extend(0..5)?;
    assert_eq!(reopened.len()?, 6);
    let settings = Cache::open(dir.path())?.settings();
    assert!(settings.all.keys().all(|k| !k.contains("maxlen")));
    Ok(())
}

#[test]
fn set_maxlen_through_a_shared_reference_trims_and_is_send_and_sync() -> TestResult {
    fn shared<T: Send + Sync>(_: &T) {}
    let d = std::sync::Arc::new(Deque::<i64>::temp()?);
    shared(&d);
    d.extend(0..6)?;
    let other = std::sync::Arc::clone(&d);
    std::thread::spawn(move || other.set_maxlen(Some(2)))
        .join()
        .map_err(|_| "thread panicked")??;
    assert_eq!(
        d.maxlen(),
        Some(2),
        "the setting is seen through every reference"
    );
    assert_eq!(
        elements(&d)?,
        [4, 5],
        "trimmed from the front, as python's setter"
    );
    d.push_back(&6)?;
    assert_eq!(elements(&d)?, [5, 6]);
    Ok(())
}

#[test]
fn open_with_items_adds_to_what_is_there_in_one_call() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d: Deque<String> = Deque::open_with_items(dir.path(), ["a", "b"].map(String::from))?;
    assert_eq!(elements(&d)?, ["a", "b"]);
    // As python's `Deque(iterable, directory)`: an existing deque is extended.
    let again: Deque<String> = Deque::open_with_items(dir.path(), vec!["c".to_owned()])?;
    assert_eq!(elements(&again)?, ["a", "b", "c"]);
    // One transaction: a value that fails to encode leaves nothing behind.
    let flaky_dir = tempfile::tempdir()?;
    let r = Deque::<Flaky>::open_with_items(flaky_dir.path(), [Flaky(false), Flaky(true)]);
    assert!(r.is_err());
    assert!(Deque::<Flaky>::open(flaky_dir.path())?.is_empty()?);
    Ok(())
}

#[test]
fn clear_removes_everything() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend(0..250)?;
    d.clear()?;
    assert!(d.is_empty()?);
    assert_eq!(d.pop_back()?, None);
    d.push_back(&1)?;
    assert_eq!(
        d.cache()
            .sorted_keys::<i64>(Order::Ascending)
            .next()
            .transpose()?,
        Some(QUEUE_START)
    );
    Ok(())
}

#[test]
fn elements_of_another_type_are_typed_errors_and_stay() -> TestResult {
    let d = Deque::<String>::temp()?;
    d.push_back("text")?;
    let ints = Deque::<i64>::from_cache(d.cache().clone());
    for result in [ints.pop_back(), ints.pop_front(), ints.back(), ints.get(0)] {
        assert!(matches!(result, Err(Error::WrongType { .. })), "{result:?}");
    }
    assert!(matches!(ints.contains(&1), Err(Error::WrongType { .. })));
    let first = ints.iter().next();
    assert!(matches!(first, Some(Err(Error::WrongType { .. }))));
    assert_eq!(d.len()?, 1, "a failed pop keeps the element");
    let message = ints.pop_back().unwrap_err().to_string();
    assert!(message.contains("wrong element type"), "{message}");
    Ok(())
}

#[test]
fn deques_work_on_other_disks_and_structured_elements() -> TestResult {
    let cache = Cache::builder()
        .disk(MsgpackDisk::new())
        .eviction_policy(EvictionPolicy::None)
        .open_temp()?;
    let d: Deque<(String, Vec<u32>), MsgpackDisk> = Deque::from_cache(cache);
    d.push_back(&("a".to_owned(), vec![1, 2]))?;
    d.push_front(&("z".to_owned(), vec![]))?;
    assert_eq!(d.get(-1)?, Some(("a".to_owned(), vec![1, 2])));
    d.set(0, &("y".to_owned(), vec![9]))?;
    assert_eq!(d.pop_front()?.map(|e| e.0).as_deref(), Some("y"));
    let debug = format!("{d:?}");
    assert!(debug.starts_with("Deque { directory: "), "{debug}");
    assert!(debug.contains("maxlen: None"), "{debug}");
    Ok(())
}

#[test]
fn json_disk_deques_push_and_pop_but_cannot_read_their_integer_keys() -> TestResult {
    // JsonDisk encodes every key as compressed JSON, so it cannot read the raw integer keys of
    // a queue; python's JSONDisk cannot either. The ends work, the rest is a typed error.
    let cache = Cache::builder()
        .disk(JsonDisk::new())
        .eviction_policy(EvictionPolicy::None)
        .open_temp()?;
    let d: Deque<Vec<u32>, JsonDisk> = Deque::from_cache(cache);
    d.extend([vec![1], vec![2]])?;
    assert_eq!(d.back()?, Some(vec![2]));
    assert_eq!(d.pop_front()?, Some(vec![1]));
    assert!(matches!(
        d.get(0),
        Err(Error::Cache(dcache_core::Error::Disk(_)))
    ));
    assert!(matches!(d.iter().next(), Some(Err(Error::Cache(_)))));
    Ok(())
}

#[test]
fn from_cache_retries_instead_of_timing_out() -> TestResult {
    let cache = Cache::builder()
        .timeout(std::time::Duration::from_millis(1))
        .eviction_policy(EvictionPolicy::None)
        .open_temp()?;
    let d = Deque::<i64>::from_cache(cache.clone());
    assert!(d.cache().is_retrying());
    assert!(!cache.is_retrying());
    // A writer in another thread holds the lock for longer than the timeout.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            cache.transact(|c| -> Result<(), dcache_core::Error> {
                c.set("x", 1)?;
                locked_tx
                    .send(())
                    .map_err(|_| dcache_core::Error::KeyNotFound)?;
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok(())
            })
        })
    };
    locked_rx.recv()?;
    d.push_back(&1)?; // waits for the lock instead of failing
    holder.join().map_err(|_| "holder panicked")??;
    assert_eq!(d.len()?, 2);
    Ok(())
}

#[test]
fn push_options_push_to_the_back_like_python() {
    // `Side` has no default (python's push and pull default to opposite ends); the push
    // options keep python's `push(side='back')`.
    assert_eq!(dcache_core::PushOptions::new().side, Side::Back);
    assert_eq!(dcache_core::PushOptions::default().side, Side::Back);
}
