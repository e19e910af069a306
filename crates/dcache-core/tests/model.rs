//! Random operation sequences against an in-memory model, reopening the cache in between.
#![allow(clippy::many_single_char_names)] // k, v, e, d: key, value, expiry, delta

mod common;

use std::sync::Arc;
use std::time::Duration;

use dcache_core::{Cache, Clock, ManualClock, SetOptions, Side};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Set(u8, i64, Option<u8>),
    Add(u8, i64),
    Get(u8),
    Pop(u8),
    Delete(u8),
    Incr(u8, i8),
    Touch(u8, Option<u8>),
    Advance(u8),
    Expire,
    Evict(u8),
    Clear,
    Push(i64),
    Pull,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    prop_oneof![
        4 => (key.clone(), any::<i64>(), proptest::option::of(0u8..4)).prop_map(|(k, v, e)| Op::Set(k, v, e)),
        2 => (key.clone(), any::<i64>()).prop_map(|(k, v)| Op::Add(k, v)),
        3 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Pop),
        1 => key.clone().prop_map(Op::Delete),
        2 => (key.clone(), any::<i8>()).prop_map(|(k, d)| Op::Incr(k, d)),
        1 => (key.clone(), proptest::option::of(0u8..4)).prop_map(|(k, e)| Op::Touch(k, e)),
        2 => (0u8..3).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        1 => (0u8..2).prop_map(Op::Evict),
        1 => Just(Op::Clear),
        2 => any::<i64>().prop_map(Op::Push),
        2 => Just(Op::Pull),
        1 => Just(Op::Reopen),
    ]
}

/// A row of the model: key, value, expiry (seconds since the test's epoch), tag.
#[derive(Debug, Clone)]
struct Row {
    key: u8,
    value: i64,
    expire: Option<u64>,
    tag: Option<u8>,
}

/// The model: rows in insertion order (the cache's rowid order), plus the queue.
#[derive(Debug, Default)]
struct Model {
    rows: Vec<Row>,
    queue: std::collections::VecDeque<(i64, i64)>,
    next_back: i64,
    now: u64,
}

impl Model {
    fn live(&self, key: u8) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.key == key && r.expire.is_none_or(|e| e > self.now))
    }
    fn position(&self, key: u8) -> Option<usize> {
        self.rows.iter().position(|r| r.key == key)
    }
}

/// Cache keys are negative so they never fall in the unprefixed queue's key range (python
/// counts any number between 0 and 999999999999999 as a queue item).
fn ck(k: u8) -> i64 {
    -1 - i64::from(k)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        std::time::UNIX_EPOCH + Duration::from_secs(1_000_000),
    ));
    let start = clock.now();
    // cull_limit 0: the model does not cull; eviction policy none keeps sizes irrelevant.
    let open = || {
        Cache::builder()
            .clock(clock.clone())
            .cull_limit(0)
            .open(dir.path())
            .unwrap()
    };
    let mut cache = open();
    let mut m = Model {
        next_back: dcache_core::QUEUE_START,
        ..Model::default()
    };
    for op in ops {
        let now_secs = clock.now().duration_since(start).unwrap().as_secs();
        m.now = now_secs;
        let expire_at = |e: Option<u8>| e.map(|s| now_secs + u64::from(s));
        let opts = |e: Option<u8>, tag: Option<u8>| {
            SetOptions::new()
                .expire_opt(e.map(|s| Duration::from_secs(u64::from(s))))
                .tag_opt(tag.map(|t| i64::from(t).into()))
        };
        match op {
            Op::Set(k, v, e) => {
                let tag = Some(k % 2);
                cache.set_with(ck(k), v, opts(e, tag)).unwrap();
                let row = Row {
                    key: k,
                    value: v,
                    expire: expire_at(e),
                    tag,
                };
                match m.position(k) {
                    Some(i) => m.rows[i] = row,
                    None => m.rows.push(row),
                }
            }
            Op::Add(k, v) => {
                let added = cache.add(ck(k), v).unwrap();
                prop_assert_eq!(added, m.live(k).is_none());
                if added {
                    let row = Row {
                        key: k,
                        value: v,
                        expire: None,
                        tag: None,
                    };
                    match m.position(k) {
                        Some(i) => m.rows[i] = row,
                        None => m.rows.push(row),
                    }
                }
            }
            Op::Get(k) => {
                let got = cache.get_entry::<i64>(ck(k)).unwrap();
                let want = m.live(k);
                prop_assert_eq!(got.as_ref().map(|e| e.value), want.map(|r| r.value));
                if let (Some(g), Some(w)) = (got, want) {
                    prop_assert_eq!(g.tag, w.tag.map(|t| i64::from(t).into()));
                    prop_assert_eq!(
                        g.expire_time,
                        w.expire.map(|s| start + Duration::from_secs(s))
                    );
                }
            }
            Op::Pop(k) => {
                let got = cache.pop::<i64>(ck(k)).unwrap();
                prop_assert_eq!(got, m.live(k).map(|r| r.value));
                if got.is_some() {
                    m.rows.retain(|r| r.key != k);
                }
            }
            Op::Delete(k) => {
                let deleted = cache.delete(ck(k)).unwrap();
                prop_assert_eq!(deleted, m.live(k).is_some());
                if deleted {
                    m.rows.retain(|r| r.key != k);
                }
            }
            Op::Incr(k, d) => {
                let d = i64::from(d);
                let result = cache.incr(ck(k), d);
                match (m.position(k), m.live(k)) {
                    (_, Some(row)) => match row.value.checked_add(d) {
                        Some(v) => {
                            prop_assert_eq!(result.unwrap(), v);
                            let i = m.position(k).unwrap();
                            m.rows[i].value = v;
                        }
                        None => prop_assert!(matches!(result, Err(dcache_core::Error::Overflow))),
                    },
                    (Some(i), None) => {
                        // python resets an entry that expired strictly before now; one expiring
                        // exactly now is neither live for get nor expired for incr.
                        let row = m.rows[i].clone();
                        if row.expire.is_some_and(|e| e < now_secs) {
                            prop_assert_eq!(result.unwrap(), d);
                            m.rows[i] = Row {
                                key: k,
                                value: d,
                                expire: None,
                                tag: None,
                            };
                        } else {
                            let v = row.value.checked_add(d);
                            match v {
                                Some(v) => {
                                    prop_assert_eq!(result.unwrap(), v);
                                    m.rows[i].value = v;
                                }
                                None => prop_assert!(result.is_err()),
                            }
                        }
                    }
                    (None, None) => {
                        prop_assert_eq!(result.unwrap(), d);
                        m.rows.push(Row {
                            key: k,
                            value: d,
                            expire: None,
                            tag: None,
                        });
                    }
                }
            }
            Op::Touch(k, e) => {
                let touched = cache
                    .touch(ck(k), e.map(|s| Duration::from_secs(u64::from(s))))
                    .unwrap();
                prop_assert_eq!(touched, m.live(k).is_some());
                if touched {
                    let i = m.position(k).unwrap();
                    m.rows[i].expire = expire_at(e);
                }
            }
            Op::Advance(s) => clock.advance(Duration::from_secs(u64::from(s))),
            Op::Expire => {
                let removed = cache.expire().unwrap();
                let before = m.rows.len();
                m.rows.retain(|r| r.expire.is_none_or(|e| e >= now_secs));
                prop_assert_eq!(removed as usize, before - m.rows.len());
            }
            Op::Evict(t) => {
                let removed = cache.evict(i64::from(t)).unwrap();
                let before = m.rows.len();
                m.rows.retain(|r| r.tag != Some(t));
                prop_assert_eq!(removed as usize, before - m.rows.len());
            }
            Op::Clear => {
                let removed = cache.clear().unwrap();
                prop_assert_eq!(removed as usize, m.rows.len() + m.queue.len());
                m.rows.clear();
                m.queue.clear();
                m.next_back = dcache_core::QUEUE_START;
            }
            Op::Push(v) => {
                let key = cache.push(v).unwrap();
                prop_assert_eq!(key, dcache_core::QueueKey::Int(m.next_back));
                m.queue.push_back((m.next_back, v));
                m.next_back += 1;
            }
            Op::Pull => {
                let got = cache
                    .pull::<i64>(None, Side::Front)
                    .unwrap()
                    .map(|(k, e)| (k, e.value));
                let want = m
                    .queue
                    .pop_front()
                    .map(|(k, v)| (dcache_core::QueueKey::Int(k), v));
                prop_assert_eq!(got, want);
                if m.queue.is_empty() {
                    m.next_back = dcache_core::QUEUE_START;
                }
            }
            Op::Reopen => {
                drop(cache);
                cache = open();
            }
        }
        prop_assert_eq!(cache.len().unwrap() as usize, m.rows.len() + m.queue.len());
    }
    let keys: Vec<i64> = cache.keys().unwrap().collect::<Result<_, _>>().unwrap();
    let want: Vec<i64> = m
        .rows
        .iter()
        .map(|r| ck(r.key))
        .chain(m.queue.iter().map(|(k, _)| *k))
        .collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_unstable();
    let mut sorted_want = want.clone();
    sorted_want.sort_unstable();
    prop_assert_eq!(sorted_keys, sorted_want);
    prop_assert!(cache.check(false).unwrap().is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cache_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
