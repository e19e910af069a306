//! Every `Index` operation, its errors, and its on-disk layout.

use std::collections::BTreeMap;

use dcache_collections::{Error, Index};
use dcache_core::{Cache, EvictionPolicy, MsgpackDisk, QueueKey, Side};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn items<K, V>(ix: &Index<K, V>) -> Result<Vec<(K, V)>, Error>
where
    K: serde::de::DeserializeOwned,
    V: serde::de::DeserializeOwned,
{
    ix.items().collect()
}

fn pair(k: &str, v: i64) -> (String, i64) {
    (k.to_owned(), v)
}

#[test]
fn insert_get_contains_remove() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    assert!(ix.is_empty()?);
    ix.insert("a", 1)?;
    ix.insert("b", 2)?;
    assert_eq!(ix.get("a")?, Some(1));
    assert_eq!(ix.get("z")?, None);
    assert!(ix.contains("b")?);
    assert!(!ix.contains("z")?);
    assert_eq!(ix.len()?, 2);
    assert!(ix.remove("a")?);
    assert!(!ix.remove("a")?);
    assert_eq!(ix.len()?, 1);
    // Owned keys work too.
    let key = String::from("c");
    ix.insert(&key, 3)?;
    assert_eq!(ix.get(&key)?, Some(3));
    Ok(())
}

#[test]
fn insertion_order_is_kept_and_overwrites_keep_their_place() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    for (i, k) in ["d", "b", "a", "c"].iter().enumerate() {
        ix.insert(*k, i as i64)?;
    }
    ix.insert("b", 10)?;
    assert_eq!(
        items(&ix)?,
        [pair("d", 0), pair("b", 10), pair("a", 2), pair("c", 3)]
    );
    let keys: Vec<String> = ix.keys().collect::<Result<_, _>>()?;
    assert_eq!(keys, ["d", "b", "a", "c"]);
    let keys_rev: Vec<String> = ix.keys_rev().collect::<Result<_, _>>()?;
    assert_eq!(keys_rev, ["c", "a", "b", "d"]);
    let values: Vec<i64> = ix.values().collect::<Result<_, _>>()?;
    assert_eq!(values, [0, 10, 2, 3]);
    let values_rev: Vec<i64> = ix.values_rev().collect::<Result<_, _>>()?;
    assert_eq!(values_rev, [3, 2, 10, 0]);
    let rev: Vec<(String, i64)> = ix.items_rev().collect::<Result<_, _>>()?;
    assert_eq!(rev[0], pair("c", 3));
    // Removing and inserting again moves a key to the end.
    ix.remove("d")?;
    ix.insert("d", 4)?;
    let keys: Vec<String> = (&ix)
        .into_iter()
        .map(|r| r.map(|(k, _)| k))
        .collect::<Result<_, _>>()?;
    assert_eq!(keys, ["b", "a", "c", "d"]);
    Ok(())
}

#[test]
fn iteration_pages_through_many_entries() -> TestResult {
    let ix = Index::<i64, String>::temp()?;
    ix.try_extend((0..350i64).rev().map(|n| (n, n.to_string())))?;
    let all = items(&ix)?;
    assert_eq!(all.len(), 350);
    assert_eq!(all[0], (349, "349".to_owned()));
    assert_eq!(all[349], (0, "0".to_owned()));
    assert_eq!(ix.keys().count(), 350);
    assert_eq!(ix.values_rev().next().transpose()?.as_deref(), Some("0"));
    Ok(())
}

#[test]
fn setdefault_and_pop_with_a_default() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    assert_eq!(ix.setdefault("a", 0)?, 0);
    assert_eq!(ix.setdefault("a", 5)?, 0);
    ix.insert("a", 7)?;
    assert_eq!(ix.setdefault("a", 5)?, 7);
    assert_eq!(ix.pop("a")?, Some(7));
    assert_eq!(ix.pop("a")?, None);
    assert_eq!(ix.pop("a")?.unwrap_or(-1), -1);
    assert!(ix.is_empty()?);
    Ok(())
}

#[test]
fn pop_item_and_peek_item_from_both_ends() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    assert_eq!(ix.peek_item(Side::Back)?, None);
    assert_eq!(ix.pop_item(Side::Front)?, None);
    ix.try_extend([pair("a", 1), pair("b", 2), pair("c", 3)])?;
    assert_eq!(ix.peek_item(Side::Back)?, Some(pair("c", 3)));
    assert_eq!(ix.peek_item(Side::Front)?, Some(pair("a", 1)));
    assert_eq!(ix.len()?, 3);
    assert_eq!(ix.pop_item(Side::Back)?, Some(pair("c", 3)));
    assert_eq!(ix.pop_item(Side::Front)?, Some(pair("a", 1)));
    assert_eq!(ix.pop_item(Side::Back)?, Some(pair("b", 2)));
    assert_eq!(ix.pop_item(Side::Back)?, None);
    Ok(())
}

#[test]
fn queue_operations_use_pythons_keys() -> TestResult {
    let ix = Index::<String, String>::temp()?;
    assert_eq!(
        ix.push("apples".to_owned(), None, Side::Back)?,
        QueueKey::Int(500_000_000_000_000)
    );
    assert_eq!(
        ix.push("beans".to_owned(), None, Side::Back)?,
        QueueKey::Int(500_000_000_000_001)
    );
    assert_eq!(
        ix.push("cherries".to_owned(), None, Side::Front)?,
        QueueKey::Int(499_999_999_999_999)
    );
    assert_eq!(
        ix.push("fruit".to_owned(), Some("fruit"), Side::Back)?,
        QueueKey::Text("fruit-500000000000000".into())
    );
    assert_eq!(
        ix.peek(None, Side::Back)?,
        Some((QueueKey::Int(500_000_000_000_001), "beans".to_owned()))
    );
    assert_eq!(
        ix.pull(None, Side::Front)?,
        Some((QueueKey::Int(499_999_999_999_999), "cherries".to_owned()))
    );
    assert_eq!(ix.get("fruit-500000000000000")?.as_deref(), Some("fruit"));
    assert_eq!(
        ix.pull(Some("fruit"), Side::Front)?
            .map(|(_, v)| v)
            .as_deref(),
        Some("fruit")
    );
    assert_eq!(ix.pull(Some("fruit"), Side::Front)?, None);
    assert_eq!(ix.len()?, 2);
    Ok(())
}

#[test]
fn clear_removes_everything() -> TestResult {
    let ix = Index::<i64, i64>::temp()?;
    ix.try_extend((0..250).map(|n| (n, n)))?;
    ix.clear()?;
    assert!(ix.is_empty()?);
    assert_eq!(ix.keys().count(), 0);
    Ok(())
}

#[test]
fn try_extend_is_all_or_nothing() -> TestResult {
    let ix = Index::<f64, i64>::temp()?;
    ix.insert(&1.0, 1)?;
    let r = ix.try_extend([(2.0, 2), (f64::NAN, 3), (4.0, 4)]);
    assert!(
        matches!(r, Err(Error::Cache(_))),
        "NaN keys are refused: {r:?}"
    );
    assert_eq!(ix.len()?, 1);
    let map = BTreeMap::from([(5.5f64.to_bits(), 5)]);
    let bits = Index::<u64, i64>::from_cache(ix.cache().clone());
    bits.try_extend(&map)?;
    assert_eq!(ix.len()?, 2);
    Ok(())
}

#[test]
fn equality_is_order_sensitive() -> TestResult {
    let a = Index::<String, i64>::temp()?;
    let b = Index::<String, i64, MsgpackDisk>::from_cache(
        Cache::builder()
            .disk(MsgpackDisk::new())
            .eviction_policy(EvictionPolicy::None)
            .open_temp()?,
    );
    assert!(a.eq_items(&b)?, "two empty indexes");
    a.try_extend([pair("x", 1), pair("y", 2)])?;
    b.try_extend([pair("y", 2), pair("x", 1)])?;
    assert!(!a.eq_items(&b)?);
    b.remove("y")?;
    b.insert("y", 2)?;
    assert!(a.eq_items(&b)?);
    b.insert("y", 3)?;
    assert!(!a.eq_items(&b)?);
    b.insert("y", 2)?;
    b.insert("z", 0)?;
    assert!(!a.eq_items(&b)?);
    assert!(!b.eq_items(&a)?);
    Ok(())
}

#[test]
fn transact_makes_read_modify_write_atomic() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    ix.insert("n", 0)?;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ix = ix.clone();
            std::thread::spawn(move || -> Result<(), Error> {
                for _ in 0..50 {
                    ix.transact(|ix| -> Result<(), Error> {
                        let n = ix.get("n")?.unwrap_or(0);
                        ix.insert("n", n + 1)
                    })?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "thread panicked")??;
    }
    assert_eq!(ix.get("n")?, Some(200));
    let r: Result<(), Error> = ix.transact(|ix| {
        ix.insert("n", -1)?;
        ix.insert("other", 1)?;
        Err(Error::IndexOutOfRange { index: 0, len: 0 })
    });
    assert!(r.is_err());
    assert_eq!(ix.get("n")?, Some(200));
    assert!(!ix.contains("other")?);
    Ok(())
}

#[test]
fn memoize_stores_results_in_the_index() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    let fib = ix.memoize("fib");
    let mut calls = 0;
    for _ in 0..3 {
        let v: u64 = fib.call(&(30u32,), || -> dcache_core::Result<u64> {
            calls += 1;
            Ok(832_040)
        })?;
        assert_eq!(v, 832_040);
    }
    assert_eq!(calls, 1);
    assert_eq!(ix.len()?, 1);
    assert_eq!(ix.cache().get::<u64>(fib.key(&(30u32,)))?, Some(832_040));
    Ok(())
}

#[test]
fn data_of_another_type_is_a_typed_error_and_stays() -> TestResult {
    let ix = Index::<String, String>::temp()?;
    ix.insert("a", "text".to_owned())?;
    let ints = Index::<String, i64>::from_cache(ix.cache().clone());
    assert!(matches!(ints.get("a"), Err(Error::WrongType { .. })));
    assert!(matches!(ints.pop("a"), Err(Error::WrongType { .. })));
    assert!(matches!(
        ints.pop_item(Side::Back),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        ints.setdefault("a", 1),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        ints.items().next(),
        Some(Err(Error::WrongType { .. }))
    ));
    let int_keys = Index::<i64, String>::from_cache(ix.cache().clone());
    assert!(matches!(
        int_keys.keys().next(),
        Some(Err(Error::WrongType { .. }))
    ));
    assert_eq!(ix.get("a")?.as_deref(), Some("text"), "nothing was removed");
    Ok(())
}

#[test]
fn open_persists_the_none_policy_and_reopens() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let ix: Index<(String, u8), Vec<String>> = Index::open(dir.path())?;
        ix.insert(&("k".to_owned(), 1), vec!["v".to_owned()])?;
    }
    assert_eq!(
        Cache::open(dir.path())?.settings().eviction_policy,
        EvictionPolicy::None
    );
    let ix: Index<(String, u8), Vec<String>> = Index::open(dir.path())?;
    assert_eq!(ix.get(&("k".to_owned(), 1))?, Some(vec!["v".to_owned()]));
    let debug = format!("{ix:?}");
    assert!(debug.starts_with("Index { directory: "), "{debug}");
    Ok(())
}

#[test]
fn eq_map_ignores_order_and_eq_pairs_does_not_like_python() -> TestResult {
    let ix = Index::<String, i64>::temp()?;
    let empty: [(String, i64); 0] = [];
    assert!(ix.eq_map(empty.clone())?);
    assert!(ix.eq_pairs(empty)?);
    ix.try_extend([pair("a", 1), pair("b", 2), pair("c", 3)])?;
    // python: `index == {'c': 3, 'b': 2, 'a': 1}` is True (a dict is unordered) …
    let map = std::collections::HashMap::from([pair("c", 3), pair("b", 2), pair("a", 1)]);
    assert!(ix.eq_map(&map)?);
    assert!(ix.eq_map(&BTreeMap::from([pair("a", 1), pair("b", 2), pair("c", 3)]))?);
    // … and `index == OrderedDict(...)` is order-sensitive.
    assert!(ix.eq_pairs([pair("a", 1), pair("b", 2), pair("c", 3)])?);
    assert!(!ix.eq_pairs([pair("c", 3), pair("b", 2), pair("a", 1)])?);
    let borrowed = [pair("a", 1), pair("b", 2), pair("c", 3)];
    assert!(ix.eq_pairs(borrowed.iter().map(|(k, v)| (k, v)))?);
    // Unequal: a value, a missing key, an extra key, a key given twice.
    assert!(!ix.eq_map([pair("a", 1), pair("b", 20), pair("c", 3)])?);
    assert!(!ix.eq_map([pair("a", 1), pair("b", 2)])?);
    assert!(!ix.eq_map([pair("a", 1), pair("b", 2), pair("c", 3), pair("d", 4)])?);
    assert!(!ix.eq_map([pair("a", 1), pair("a", 1), pair("b", 2)])?);
    assert!(!ix.eq_pairs([pair("a", 1), pair("b", 2)])?);
    assert!(!ix.eq_pairs([pair("a", 1), pair("b", 2), pair("c", 3), pair("d", 4)])?);
    // A stored value of another type is an error, not `false`.
    ix.cache().set("c", "text")?;
    assert!(matches!(ix.eq_map(&map), Err(Error::WrongType { .. })));
    Ok(())
}

#[test]
fn open_with_items_stores_pairs_in_order_in_one_call() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ix: Index<String, i64> = Index::open_with_items(dir.path(), [pair("b", 2), pair("a", 1)])?;
    assert_eq!(items(&ix)?, [pair("b", 2), pair("a", 1)]);
    // As python's `Index(directory, mapping)`: an existing index is updated.
    let map = BTreeMap::from([pair("a", 10), pair("c", 3)]);
    let again: Index<String, i64> = Index::open_with_items(dir.path(), &map)?;
    assert_eq!(items(&again)?, [pair("b", 2), pair("a", 10), pair("c", 3)]);
    Ok(())
}

#[test]
fn values_go_in_by_value_and_keys_by_reference() -> TestResult {
    let ix = Index::<String, Vec<String>>::temp()?;
    let value = vec!["x".to_owned()];
    ix.insert("k", value)?; // like `HashMap::insert`
    assert_eq!(ix.setdefault("k", Vec::new())?, ["x"]);
    let key = ix.push(vec!["queued".to_owned()], None, Side::Back)?;
    assert_eq!(key, QueueKey::Int(dcache_core::QUEUE_START));
    Ok(())
}
