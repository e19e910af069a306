//! Random operation sequences against an in-memory model, reopening the cache in between.
//!
//! Values are integers (inline) and byte strings, inline or in value files; the queue is
//! pushed and pulled at both ends. After every operation the entry count and the value files
//! on disk match the model (no orphan, none missing); at every reopen and at the end,
//! `check(false)` is clean and iteration yields the model's keys in insertion order.
#![allow(clippy::many_single_char_names)] // k, v, e, d: key, value, expiry, delta

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use common::value_files;
use dcache_core::CheckMode;
use dcache_core::{Cache, Clock, ManualClock, PushOptions, QueueKey, SetOptions, Side, Value};
use proptest::prelude::*;

/// Byte values at least this long are stored in value files.
const MIN_FILE_SIZE: usize = 64;

#[derive(Debug, Clone)]
enum Op {
    Set(u8, i64, Option<u8>),
    /// A byte string of the given length (a value file from `MIN_FILE_SIZE` bytes on).
    SetBytes(u8, u16, u8, Option<u8>),
    Add(u8, i64),
    Get(u8),
    Pop(u8),
    Delete(u8),
    Incr(u8, i8),
    Touch(u8, Option<u8>),
    Advance(u8),
    Expire,
    Cull,
    Evict(u8),
    Clear,
    Push(i64, bool),
    PushBytes(u16, u8, bool),
    Pull(bool),
    Reopen,
}

fn side(back: bool) -> Side {
    if back { Side::Back } else { Side::Front }
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    let expiry = proptest::option::of(0u8..4);
    prop_oneof![
        3 => (key.clone(), any::<i64>(), expiry.clone()).prop_map(|(k, v, e)| Op::Set(k, v, e)),
        3 => (key.clone(), 0u16..200, any::<u8>(), expiry.clone())
            .prop_map(|(k, n, b, e)| Op::SetBytes(k, n, b, e)),
        2 => (key.clone(), any::<i64>()).prop_map(|(k, v)| Op::Add(k, v)),
        3 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Pop),
        1 => key.clone().prop_map(Op::Delete),
        2 => (key.clone(), any::<i8>()).prop_map(|(k, d)| Op::Incr(k, d)),
        1 => (key.clone(), expiry).prop_map(|(k, e)| Op::Touch(k, e)),
        2 => (0u8..3).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        1 => Just(Op::Cull),
        1 => (0u8..2).prop_map(Op::Evict),
        1 => Just(Op::Clear),
        2 => (any::<i64>(), any::<bool>()).prop_map(|(v, b)| Op::Push(v, b)),
        2 => (0u16..200, any::<u8>(), any::<bool>()).prop_map(|(n, b, s)| Op::PushBytes(n, b, s)),
        3 => any::<bool>().prop_map(Op::Pull),
        1 => Just(Op::Reopen),
    ]
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Bytes(Vec<u8>),
}

impl Val {
    fn bytes(len: u16, first: u8) -> Val {
        Val::Bytes(
            (0..usize::from(len))
                .map(|i| first.wrapping_add(i as u8))
                .collect(),
        )
    }

    fn as_value(&self) -> Value {
        match self {
            Val::Int(i) => Value::Int(*i),
            Val::Bytes(b) => Value::Bytes(b.clone()),
        }
    }

    fn in_file(&self) -> bool {
        matches!(self, Val::Bytes(b) if b.len() >= MIN_FILE_SIZE)
    }

    fn store(&self, cache: &Cache, key: i64, opts: SetOptions) -> dcache_core::Result<()> {
        match self {
            Val::Int(i) => cache.set_with(key, i, opts),
            Val::Bytes(b) => cache.set_with(key, &b[..], opts),
        }
    }
}

/// A row of the model: key, value, expiry (seconds since the test's epoch), tag, and its
/// position in insertion order (the cache's rowid order).
#[derive(Debug, Clone)]
struct Row {
    key: u8,
    value: Val,
    expire: Option<u64>,
    tag: Option<u8>,
    seq: u64,
}

/// The model: rows in insertion order, plus the queue (key, value, insertion position).
#[derive(Debug, Default)]
struct Model {
    rows: Vec<Row>,
    queue: VecDeque<(i64, Val, u64)>,
    now: u64,
    next_seq: u64,
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
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
    /// Writes `value` to `key` as set does: in place (keeping the position) or appended.
    fn put(&mut self, key: u8, value: Val, expire: Option<u64>, tag: Option<u8>) {
        if let Some(i) = self.position(key) {
            let seq = self.rows[i].seq;
            self.rows[i] = Row {
                key,
                value,
                expire,
                tag,
                seq,
            };
        } else {
            let seq = self.seq();
            self.rows.push(Row {
                key,
                value,
                expire,
                tag,
                seq,
            });
        }
    }
    fn len(&self) -> usize {
        self.rows.len() + self.queue.len()
    }
    fn files(&self) -> usize {
        self.rows.iter().filter(|r| r.value.in_file()).count()
            + self.queue.iter().filter(|(_, v, _)| v.in_file()).count()
    }
    /// Every key, in insertion order.
    fn keys(&self) -> Vec<i64> {
        let mut keys: Vec<(u64, i64)> = self
            .rows
            .iter()
            .map(|r| (r.seq, ck(r.key)))
            .chain(self.queue.iter().map(|(k, _, s)| (*s, *k)))
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| k).collect()
    }
}

/// Cache keys are negative so they never fall in the unprefixed queue's key range (python
/// counts any number between 0 and 999999999999999 as a queue item).
fn ck(k: u8) -> i64 {
    -1 - i64::from(k)
}

/// The checks made at every reopen and at the end.
fn check_whole(cache: &Cache, m: &Model) -> Result<(), TestCaseError> {
    let keys: Vec<i64> = cache.keys().unwrap().collect::<Result<_, _>>().unwrap();
    prop_assert_eq!(keys, m.keys(), "iteration order");
    let warnings = cache.check(CheckMode::Report).unwrap();
    prop_assert!(warnings.is_empty(), "check found {:?}", warnings);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        std::time::UNIX_EPOCH + Duration::from_secs(1_000_000),
    ));
    let start = clock.now();
    // cull_limit 0: the model does not cull; the default size limit (1 GiB) is never reached.
    let open = || {
        Cache::builder()
            .clock(clock.clone())
            .cull_limit(0)
            .disk_min_file_size(MIN_FILE_SIZE as u64)
            .open(dir.path())
            .unwrap()
    };
    let mut cache = open();
    let mut m = Model::default();
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
                m.put(k, Val::Int(v), expire_at(e), tag);
            }
            Op::SetBytes(k, n, b, e) => {
                let tag = Some(k % 2);
                let value = Val::bytes(n, b);
                value.store(&cache, ck(k), opts(e, tag)).unwrap();
                m.put(k, value, expire_at(e), tag);
            }
            Op::Add(k, v) => {
                let added = cache.add(ck(k), v).unwrap();
                prop_assert_eq!(added, m.live(k).is_none());
                if added {
                    m.put(k, Val::Int(v), None, None);
                }
            }
            Op::Get(k) => {
                let got = cache.get_entry::<Value>(ck(k)).unwrap();
                let want = m.live(k);
                prop_assert_eq!(
                    got.as_ref().map(|e| e.value.clone()),
                    want.map(|r| r.value.as_value())
                );
                if let (Some(g), Some(w)) = (got, want) {
                    prop_assert_eq!(g.tag, w.tag.map(|t| i64::from(t).into()));
                    prop_assert_eq!(
                        g.expire_time,
                        w.expire.map(|s| start + Duration::from_secs(s))
                    );
                }
            }
            Op::Pop(k) => {
                let got = cache.pop::<Value>(ck(k)).unwrap();
                prop_assert_eq!(got.clone(), m.live(k).map(|r| r.value.as_value()));
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
                match m.position(k) {
                    None => {
                        prop_assert_eq!(result.unwrap(), d);
                        m.put(k, Val::Int(d), None, None);
                    }
                    // python resets an entry that expired strictly before now (and removes
                    // its value file); one expiring exactly now is neither live for get nor
                    // expired for incr.
                    Some(i) if m.rows[i].expire.is_some_and(|e| e < now_secs) => {
                        prop_assert_eq!(result.unwrap(), d);
                        m.put(k, Val::Int(d), None, None);
                    }
                    Some(i) => match m.rows[i].value {
                        Val::Int(v) => match v.checked_add(d) {
                            Some(v) => {
                                prop_assert_eq!(result.unwrap(), v);
                                m.rows[i].value = Val::Int(v);
                            }
                            None => prop_assert!(
                                matches!(result, Err(dcache_core::Error::Overflow)),
                                "{:?}",
                                result
                            ),
                        },
                        Val::Bytes(_) => prop_assert!(
                            matches!(result, Err(dcache_core::Error::NotAnInteger { .. })),
                            "{:?}",
                            result
                        ),
                    },
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
            Op::Expire | Op::Cull => {
                // With a size limit never reached, cull removes exactly what expire does.
                let removed = if matches!(op, Op::Expire) {
                    cache.expire().unwrap()
                } else {
                    cache.cull().unwrap()
                };
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
                prop_assert_eq!(removed as usize, m.len());
                m.rows.clear();
                m.queue.clear();
            }
            Op::Push(_, back) | Op::PushBytes(_, _, back) => {
                let value = match op {
                    Op::Push(v, _) => Val::Int(v),
                    Op::PushBytes(n, b, _) => Val::bytes(n, b),
                    _ => unreachable!("matched above"),
                };
                let opts = PushOptions::new().side(side(back));
                let key = match &value {
                    Val::Int(i) => cache.push_with(i, opts),
                    Val::Bytes(b) => cache.push_with(&b[..], opts),
                }
                .unwrap();
                let want = if back {
                    m.queue.back().map_or(dcache_core::QUEUE_START, |q| q.0 + 1)
                } else {
                    m.queue
                        .front()
                        .map_or(dcache_core::QUEUE_START, |q| q.0 - 1)
                };
                prop_assert_eq!(key, QueueKey::Int(want));
                let seq = m.seq();
                if back {
                    m.queue.push_back((want, value, seq));
                } else {
                    m.queue.push_front((want, value, seq));
                }
            }
            Op::Pull(back) => {
                let got = cache
                    .pull::<Value>(None, side(back))
                    .unwrap()
                    .map(|(k, e)| (k, e.value));
                let want = if back {
                    m.queue.pop_back()
                } else {
                    m.queue.pop_front()
                };
                let want = want.map(|(k, v, _)| (QueueKey::Int(k), v.as_value()));
                prop_assert_eq!(got, want);
            }
            Op::Reopen => {
                drop(cache);
                cache = open();
                check_whole(&cache, &m)?;
            }
        }
        prop_assert_eq!(cache.len().unwrap() as usize, m.len());
        prop_assert_eq!(
            value_files(dir.path()).len(),
            m.files(),
            "value files on disk"
        );
    }
    check_whole(&cache, &m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn cache_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
