//! Every `Deque` operation, its errors, and its on-disk layout.

use std::cmp::Ordering;

use dcache_collections::{Deque, Error};
use dcache_core::{Cache, EvictionPolicy, JsonDisk, MsgpackDisk, QUEUE_START, Side};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn elements<T: serde::de::DeserializeOwned>(d: &Deque<T>) -> Result<Vec<T>, Error> {
    d.iter().collect()
}

/// The (key, element) pairs, in key order, read straight from the cache.
fn keyed(d: &Deque<i64>) -> Result<Vec<(i64, i64)>, dcache_core::Error> {
    d.cache().sorted_items(false).collect()
}

#[test]
fn append_and_appendleft_use_pythons_queue_keys() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.append(&1)?;
    d.append(&2)?;
    d.appendleft(&0)?;
    d.appendleft(&-1)?;
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
    copy.append(&1)?;
    drop(copy);
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn pop_peek_and_their_left_forms() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend([1, 2, 3])?;
    assert_eq!(d.peek()?, 3);
    assert_eq!(d.peekleft()?, 1);
    assert_eq!(d.len()?, 3);
    assert_eq!(d.pop()?, 3);
    assert_eq!(d.popleft()?, 1);
    assert_eq!(d.pop()?, 2);
    for (result, op) in [
        (d.pop(), "pop"),
        (d.popleft(), "popleft"),
        (d.peek(), "peek"),
        (d.peekleft(), "peekleft"),
    ] {
        match result {
            Err(Error::Empty { operation }) => assert_eq!(operation, op),
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
    d.extendleft(borrowed)?;
    assert_eq!(elements(&d)?, [1, 2, 3, 4]);
    d.extend(Vec::<i64>::new())?;
    assert_eq!(d.len()?, 4);
    // A failure half way leaves nothing behind.
    let flaky = Deque::<Flaky>::temp()?;
    flaky.append(&Flaky(false))?;
    let r = flaky.extend([Flaky(false), Flaky(true), Flaky(false)]);
    assert!(matches!(r, Err(Error::Cache(_))), "{r:?}");
    assert_eq!(flaky.len()?, 1);
    assert!(flaky.extendleft([Flaky(false), Flaky(true)]).is_err());
    assert_eq!(flaky.len()?, 1);
    Ok(())
}

#[test]
fn a_failing_transaction_rolls_back_every_element() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend([1, 2])?;
    let r: Result<(), Error> = d.transact(|d| {
        d.append(&3)?;
        d.popleft()?;
        d.rotate(1)?;
        Err(Error::Empty { operation: "test" })
    });
    assert!(matches!(r, Err(Error::Empty { operation: "test" })));
    assert_eq!(elements(&d)?, [1, 2]);
    let moved: i64 = d.transact(|d| -> Result<i64, Error> {
        let v = d.popleft()?;
        d.append(&v)?;
        Ok(v)
    })?;
    assert_eq!(moved, 1);
    assert_eq!(elements(&d)?, [2, 1]);
    Ok(())
}

#[test]
fn indexes_count_from_both_ends() -> TestResult {
    let d = Deque::<String>::temp()?;
    d.extend(["a", "b", "c", "d"].map(String::from))?;
    assert_eq!(d.get(0)?, "a");
    assert_eq!(d.get(3)?, "d");
    assert_eq!(d.get(-1)?, "d");
    assert_eq!(d.get(-4)?, "a");
    for bad in [4, 100, -5, i64::MIN, i64::MAX] {
        match d.get(bad) {
            Err(Error::IndexOutOfRange { index, len }) => assert_eq!((index, len), (bad, 4)),
            other => panic!("get({bad}) gave {other:?}"),
        }
        assert!(matches!(
            d.set(bad, "x"),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            d.remove_at(bad),
            Err(Error::IndexOutOfRange { .. })
        ));
    }
    d.set(1, "B")?;
    d.set(-2, "C")?;
    assert_eq!(elements(&d)?, ["a", "B", "C", "d"]);
    d.remove_at(-1)?;
    d.remove_at(0)?;
    assert_eq!(elements(&d)?, ["B", "C"]);
    assert_eq!(d.get(1)?, "C");
    let empty = Deque::<i64>::temp()?;
    assert!(matches!(
        empty.get(0),
        Err(Error::IndexOutOfRange { index: 0, len: 0 })
    ));
    assert!(matches!(
        empty.get(-1),
        Err(Error::IndexOutOfRange { index: -1, len: 0 })
    ));
    Ok(())
}

#[test]
fn set_keeps_the_element_key_and_handles_value_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d: Deque<String> = Deque::open(dir.path())?;
    d.extend(["a", "b", "c"].map(String::from))?;
    let big = "x".repeat(100_000);
    d.set(1, big.as_str())?;
    assert_eq!(d.get(1)?, big);
    d.set(1, "small")?;
    assert_eq!(elements(&d)?, ["a", "small", "c"]);
    assert!(
        d.cache().check(false)?.is_empty(),
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
    assert_eq!(d.peekleft()?, 0);
    assert_eq!(d.pop()?, 6);
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
        other.pop()?;
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
    e.extendleft([3, 2, 1])?;
    assert!(d.eq_deque(&e)?);
    assert_eq!(d.cmp_deque(&e)?, Some(Ordering::Equal));
    e.append(&0)?;
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
    d.append(&5)?;
    assert_eq!(elements(&d)?, [3, 4, 5]);
    d.appendleft(&2)?;
    assert_eq!(elements(&d)?, [2, 3, 4], "appendleft drops from the back");
    d.extendleft([1, 0])?;
    assert_eq!(elements(&d)?, [0, 1, 2]);
    // Python trims one element per append; this handle trims down to maxlen even when
    // another handle made the deque longer.
    let unbounded = Deque::<i64>::from_cache(d.cache().clone());
    assert_eq!(unbounded.maxlen(), None);
    unbounded.extend(10..15)?;
    assert_eq!(unbounded.len()?, 8);
    d.append(&99)?;
    assert_eq!(elements(&d)?, [13, 14, 99]);
    Ok(())
}

#[test]
fn lowering_maxlen_trims_from_the_left_and_is_per_handle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut d: Deque<i64> = Deque::open(dir.path())?;
    d.extend(0..10)?;
    d.set_maxlen(Some(20))?;
    assert_eq!(d.len()?, 10);
    d.set_maxlen(Some(4))?;
    assert_eq!(elements(&d)?, [6, 7, 8, 9]);
    d.set_maxlen(Some(0))?;
    assert!(d.is_empty()?);
    d.append(&1)?;
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
fn clear_removes_everything() -> TestResult {
    let d = Deque::<i64>::temp()?;
    d.extend(0..250)?;
    d.clear()?;
    assert!(d.is_empty()?);
    assert!(matches!(d.pop(), Err(Error::Empty { .. })));
    d.append(&1)?;
    assert_eq!(
        d.cache().sorted_keys::<i64>(false).next().transpose()?,
        Some(QUEUE_START)
    );
    Ok(())
}

#[test]
fn elements_of_another_type_are_typed_errors_and_stay() -> TestResult {
    let d = Deque::<String>::temp()?;
    d.append("text")?;
    let ints = Deque::<i64>::from_cache(d.cache().clone());
    for result in [ints.pop(), ints.popleft(), ints.peek(), ints.get(0)] {
        assert!(matches!(result, Err(Error::WrongType { .. })), "{result:?}");
    }
    assert!(matches!(ints.contains(&1), Err(Error::WrongType { .. })));
    let first = ints.iter().next();
    assert!(matches!(first, Some(Err(Error::WrongType { .. }))));
    assert_eq!(d.len()?, 1, "a failed pop keeps the element");
    let message = ints.pop().unwrap_err().to_string();
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
    d.append(&("a".to_owned(), vec![1, 2]))?;
    d.appendleft(&("z".to_owned(), vec![]))?;
    assert_eq!(d.get(-1)?, ("a".to_owned(), vec![1, 2]));
    d.set(0, &("y".to_owned(), vec![9]))?;
    assert_eq!(d.popleft()?.0, "y");
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
    assert_eq!(d.peek()?, [2]);
    assert_eq!(d.popleft()?, [1]);
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
    d.append(&1)?; // waits for the lock instead of failing
    holder.join().map_err(|_| "holder panicked")??;
    assert_eq!(d.len()?, 2);
    Ok(())
}

#[test]
fn side_is_reexported_for_index_queues() {
    // The Deque's ends are python's queue sides.
    assert_eq!(Side::default(), Side::Back);
}
