//! Random operation sequences on a `Deque` and an `Index` against in-memory models
//! (`VecDeque` with python's `maxlen` rules; an insertion-ordered list of pairs with python's
//! queue-key rules), reopening the directory in between.

use std::collections::VecDeque;

use dcache_collections::{Deque, Error, Index};
use dcache_core::CheckMode;
use dcache_core::{QUEUE_START, QueueKey, Side};
use proptest::prelude::*;

// ----- Deque -----

#[derive(Debug, Clone)]
enum DequeOp {
    Append(i64),
    AppendLeft(i64),
    Extend(Vec<i64>),
    ExtendLeft(Vec<i64>),
    Pop,
    PopLeft,
    Peek,
    PeekLeft,
    Get(i64),
    Set(i64, i64),
    RemoveAt(i64),
    Rotate(i64),
    Reverse,
    Remove(i64),
    Contains(i64),
    Count(i64),
    Clear,
    SetMaxlen(Option<u8>),
    Reopen,
}

fn deque_op() -> impl Strategy<Value = DequeOp> {
    let value = 0i64..5;
    let index = -8i64..8;
    prop_oneof![
        4 => value.clone().prop_map(DequeOp::Append),
        3 => value.clone().prop_map(DequeOp::AppendLeft),
        2 => proptest::collection::vec(value.clone(), 0..6).prop_map(DequeOp::Extend),
        1 => proptest::collection::vec(value.clone(), 0..6).prop_map(DequeOp::ExtendLeft),
        2 => Just(DequeOp::Pop),
        2 => Just(DequeOp::PopLeft),
        1 => Just(DequeOp::Peek),
        1 => Just(DequeOp::PeekLeft),
        2 => index.clone().prop_map(DequeOp::Get),
        2 => (index.clone(), value.clone()).prop_map(|(i, v)| DequeOp::Set(i, v)),
        1 => index.prop_map(DequeOp::RemoveAt),
        2 => (-12i64..12).prop_map(DequeOp::Rotate),
        1 => Just(DequeOp::Reverse),
        1 => value.clone().prop_map(DequeOp::Remove),
        1 => value.clone().prop_map(DequeOp::Contains),
        1 => value.prop_map(DequeOp::Count),
        1 => Just(DequeOp::Clear),
        1 => proptest::option::of(0u8..8).prop_map(DequeOp::SetMaxlen),
        1 => Just(DequeOp::Reopen),
    ]
}

/// python's `collections.deque`-like model with per-handle `maxlen`.
#[derive(Debug, Default)]
struct DequeModel {
    items: VecDeque<i64>,
    maxlen: Option<usize>,
}

impl DequeModel {
    fn trim(&mut self, side: Side) {
        if let Some(max) = self.maxlen {
            while self.items.len() > max {
                match side {
                    Side::Front => self.items.pop_front(),
                    Side::Back => self.items.pop_back(),
                };
            }
        }
    }

    fn position(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 { len + index } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }
}

/// What an operation returned, comparable between the deque and the model.
#[derive(Debug, PartialEq)]
enum Outcome {
    Done,
    Value(i64),
    Flag(bool),
    Count(u64),
    Empty,
    OutOfRange,
}

fn outcome<T>(
    r: Result<T, Error>,
    ok: impl FnOnce(T) -> Outcome,
) -> Result<Outcome, TestCaseError> {
    match r {
        Ok(v) => Ok(ok(v)),
        Err(Error::IndexOutOfRange { .. }) => Ok(Outcome::OutOfRange),
        Err(e) => Err(TestCaseError::fail(format!("unexpected error: {e}"))),
    }
}

fn run_deque(ops: &[DequeOp]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let open = |maxlen: Option<usize>| -> Result<Deque<i64>, TestCaseError> {
        Deque::open(dir.path())
            .and_then(|d| d.with_maxlen(maxlen.map(|m| m as u64)))
            .map_err(|e| TestCaseError::fail(e.to_string()))
    };
    let mut deque = open(None)?;
    let mut model = DequeModel::default();
    for op in ops {
        let (got, want) = match op.clone() {
            DequeOp::Append(v) => {
                model.items.push_back(v);
                model.trim(Side::Front);
                (
                    outcome(deque.push_back(&v), |()| Outcome::Done)?,
                    Outcome::Done,
                )
            }
            DequeOp::AppendLeft(v) => {
                model.items.push_front(v);
                model.trim(Side::Back);
                (
                    outcome(deque.push_front(&v), |()| Outcome::Done)?,
                    Outcome::Done,
                )
            }
            DequeOp::Extend(vs) => {
                model.items.extend(vs.iter().copied());
                model.trim(Side::Front);
                (
                    outcome(deque.extend(&vs), |()| Outcome::Done)?,
                    Outcome::Done,
                )
            }
            DequeOp::ExtendLeft(vs) => {
                for v in &vs {
                    model.items.push_front(*v);
                }
                model.trim(Side::Back);
                (
                    outcome(deque.extend_front(vs), |()| Outcome::Done)?,
                    Outcome::Done,
                )
            }
            DequeOp::Pop => (
                outcome(deque.pop_back(), |v| {
                    v.map_or(Outcome::Empty, Outcome::Value)
                })?,
                model
                    .items
                    .pop_back()
                    .map_or(Outcome::Empty, Outcome::Value),
            ),
            DequeOp::PopLeft => (
                outcome(deque.pop_front(), |v| {
                    v.map_or(Outcome::Empty, Outcome::Value)
                })?,
                model
                    .items
                    .pop_front()
                    .map_or(Outcome::Empty, Outcome::Value),
            ),
            DequeOp::Peek => (
                outcome(deque.back(), |v| v.map_or(Outcome::Empty, Outcome::Value))?,
                model
                    .items
                    .back()
                    .map_or(Outcome::Empty, |v| Outcome::Value(*v)),
            ),
            DequeOp::PeekLeft => (
                outcome(deque.front(), |v| v.map_or(Outcome::Empty, Outcome::Value))?,
                model
                    .items
                    .front()
                    .map_or(Outcome::Empty, |v| Outcome::Value(*v)),
            ),
            DequeOp::Get(i) => (
                outcome(deque.get(i), |v| {
                    v.map_or(Outcome::OutOfRange, Outcome::Value)
                })?,
                model
                    .position(i)
                    .map_or(Outcome::OutOfRange, |p| Outcome::Value(model.items[p])),
            ),
            DequeOp::Set(i, v) => {
                let want = match model.position(i) {
                    Some(p) => {
                        model.items[p] = v;
                        Outcome::Done
                    }
                    None => Outcome::OutOfRange,
                };
                (outcome(deque.set(i, &v), |()| Outcome::Done)?, want)
            }
            DequeOp::RemoveAt(i) => {
                let want = match model.position(i).and_then(|p| model.items.remove(p)) {
                    Some(v) => Outcome::Value(v),
                    None => Outcome::OutOfRange,
                };
                (
                    outcome(deque.remove_at(i), |v| {
                        v.map_or(Outcome::OutOfRange, Outcome::Value)
                    })?,
                    want,
                )
            }
            DequeOp::Rotate(n) => {
                let len = model.items.len();
                if len > 0 {
                    let k = (n.unsigned_abs() as usize) % len;
                    if n >= 0 {
                        model.items.rotate_right(k);
                    } else {
                        model.items.rotate_left(k);
                    }
                }
                (outcome(deque.rotate(n), |()| Outcome::Done)?, Outcome::Done)
            }
            DequeOp::Reverse => {
                model.items.make_contiguous().reverse();
                (outcome(deque.reverse(), |()| Outcome::Done)?, Outcome::Done)
            }
            DequeOp::Remove(v) => {
                let found = model.items.iter().position(|x| *x == v);
                if let Some(p) = found {
                    model.items.remove(p);
                }
                (
                    outcome(deque.remove(&v), Outcome::Flag)?,
                    Outcome::Flag(found.is_some()),
                )
            }
            DequeOp::Contains(v) => (
                outcome(deque.contains(&v), Outcome::Flag)?,
                Outcome::Flag(model.items.contains(&v)),
            ),
            DequeOp::Count(v) => (
                outcome(deque.count(&v), Outcome::Count)?,
                Outcome::Count(model.items.iter().filter(|x| **x == v).count() as u64),
            ),
            DequeOp::Clear => {
                model.items.clear();
                (outcome(deque.clear(), |()| Outcome::Done)?, Outcome::Done)
            }
            DequeOp::SetMaxlen(m) => {
                model.maxlen = m.map(usize::from);
                model.trim(Side::Front);
                (
                    outcome(deque.set_maxlen(m.map(u64::from)), |()| Outcome::Done)?,
                    Outcome::Done,
                )
            }
            DequeOp::Reopen => {
                drop(deque);
                deque = open(model.maxlen)?;
                (Outcome::Done, Outcome::Done)
            }
        };
        prop_assert_eq!(got, want, "after {:?}", op);
        let all: Vec<i64> = deque
            .iter()
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            &all,
            &Vec::from(model.items.clone()),
            "contents after {:?}",
            op
        );
        let len = deque
            .len()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(len, model.items.len() as u64);
    }
    let rev: Vec<i64> = deque
        .iter_rev()
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(rev, model.items.iter().rev().copied().collect::<Vec<_>>());
    let warnings = deque
        .cache()
        .check(CheckMode::Report)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(warnings.is_empty(), "{:?}", warnings);
    Ok(())
}

// ----- Index -----

#[derive(Debug, Clone)]
enum IndexOp {
    Insert(i64, i64),
    Remove(i64),
    Pop(i64),
    Get(i64),
    Contains(i64),
    SetDefault(i64, i64),
    PopItem(bool),
    PeekItem(bool),
    Push(i64, Side),
    Pull(Side),
    Peek(Side),
    Extend(Vec<(i64, i64)>),
    Clear,
    Reopen,
}

/// Keys: negative ones lie outside the unprefixed queue's range, 2..12 inside it (python
/// counts any integer key between 0 and 999999999999999 as a queue item).
fn index_key() -> impl Strategy<Value = i64> {
    prop_oneof![-6i64..0, 2i64..12]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Front), Just(Side::Back)]
}

fn index_op() -> impl Strategy<Value = IndexOp> {
    let value = -50i64..50;
    prop_oneof![
        5 => (index_key(), value.clone()).prop_map(|(k, v)| IndexOp::Insert(k, v)),
        2 => index_key().prop_map(IndexOp::Remove),
        2 => index_key().prop_map(IndexOp::Pop),
        2 => index_key().prop_map(IndexOp::Get),
        1 => index_key().prop_map(IndexOp::Contains),
        2 => (index_key(), value.clone()).prop_map(|(k, v)| IndexOp::SetDefault(k, v)),
        2 => any::<bool>().prop_map(IndexOp::PopItem),
        1 => any::<bool>().prop_map(IndexOp::PeekItem),
        3 => (value.clone(), side()).prop_map(|(v, s)| IndexOp::Push(v, s)),
        2 => side().prop_map(IndexOp::Pull),
        1 => side().prop_map(IndexOp::Peek),
        1 => proptest::collection::vec((index_key(), value), 0..5).prop_map(IndexOp::Extend),
        1 => Just(IndexOp::Clear),
        1 => Just(IndexOp::Reopen),
    ]
}

/// An insertion-ordered map with python's queue-key rules.
#[derive(Debug, Default)]
struct IndexModel {
    entries: Vec<(i64, i64)>,
}

impl IndexModel {
    fn position(&self, key: i64) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    fn get(&self, key: i64) -> Option<i64> {
        self.position(key).map(|p| self.entries[p].1)
    }

    fn insert(&mut self, key: i64, value: i64) {
        match self.position(key) {
            Some(p) => self.entries[p].1 = value,
            None => self.entries.push((key, value)),
        }
    }

    fn remove(&mut self, key: i64) -> Option<i64> {
        self.position(key).map(|p| self.entries.remove(p).1)
    }

    /// The queue's end key: the smallest or largest key strictly between 0 and
    /// 999999999999999.
    fn queue_end(&self, side: Side) -> Option<i64> {
        let keys = self
            .entries
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| 0 < *k && *k < 999_999_999_999_999);
        match side {
            Side::Front => keys.min(),
            Side::Back => keys.max(),
        }
    }
}

#[derive(Debug, PartialEq)]
enum IndexOutcome {
    Done,
    Flag(bool),
    Value(Option<i64>),
    Item(Option<(i64, i64)>),
    Queued(Option<(QueueKey, i64)>),
    Pushed(QueueKey),
    /// python's push fails too: its new key collides with an existing one.
    Refused,
}

fn unexpected(e: &Error) -> TestCaseError {
    TestCaseError::fail(format!("unexpected error: {e}"))
}

fn run_index(ops: &[IndexOp]) -> Result<(), TestCaseError> {
    use IndexOutcome as O;
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let open = || -> Result<Index<i64, i64>, TestCaseError> {
        Index::open(dir.path()).map_err(|e| unexpected(&e))
    };
    let mut index = open()?;
    let mut model = IndexModel::default();
    for op in ops {
        let (got, want) = match op.clone() {
            IndexOp::Insert(k, v) => {
                model.insert(k, v);
                index.insert(&k, v).map_err(|e| unexpected(&e))?;
                (O::Done, O::Done)
            }
            IndexOp::Remove(k) => (
                O::Flag(index.remove(&k).map_err(|e| unexpected(&e))?),
                O::Flag(model.remove(k).is_some()),
            ),
            IndexOp::Pop(k) => (
                O::Value(index.pop(&k).map_err(|e| unexpected(&e))?),
                O::Value(model.remove(k)),
            ),
            IndexOp::Get(k) => (
                O::Value(index.get(&k).map_err(|e| unexpected(&e))?),
                O::Value(model.get(k)),
            ),
            IndexOp::Contains(k) => (
                O::Flag(index.contains(&k).map_err(|e| unexpected(&e))?),
                O::Flag(model.get(k).is_some()),
            ),
            IndexOp::SetDefault(k, v) => {
                let want = model.get(k).unwrap_or_else(|| {
                    model.insert(k, v);
                    v
                });
                (
                    O::Value(Some(index.setdefault(&k, v).map_err(|e| unexpected(&e))?)),
                    O::Value(Some(want)),
                )
            }
            IndexOp::PopItem(last) => {
                let want = if model.entries.is_empty() {
                    None
                } else if last {
                    model.entries.pop()
                } else {
                    Some(model.entries.remove(0))
                };
                (
                    O::Item(
                        index
                            .pop_item(if last { Side::Back } else { Side::Front })
                            .map_err(|e| unexpected(&e))?,
                    ),
                    O::Item(want),
                )
            }
            IndexOp::PeekItem(last) => {
                let want = if last {
                    model.entries.last()
                } else {
                    model.entries.first()
                };
                (
                    O::Item(
                        index
                            .peek_item(if last { Side::Back } else { Side::Front })
                            .map_err(|e| unexpected(&e))?,
                    ),
                    O::Item(want.copied()),
                )
            }
            IndexOp::Push(v, side) => {
                let key = match (model.queue_end(side), side) {
                    (None, _) => QUEUE_START,
                    (Some(k), Side::Back) => k + 1,
                    (Some(k), Side::Front) => k - 1,
                };
                let want = if model.get(key).is_some() {
                    O::Refused
                } else {
                    model.insert(key, v);
                    O::Pushed(QueueKey::Int(key))
                };
                let got = match index.push(v, None, side) {
                    Ok(k) => O::Pushed(k),
                    Err(Error::Cache(dcache_core::Error::Sqlite { .. })) => O::Refused,
                    Err(e) => return Err(unexpected(&e)),
                };
                (got, want)
            }
            IndexOp::Pull(side) => {
                let want = model
                    .queue_end(side)
                    .and_then(|k| model.remove(k).map(|v| (QueueKey::Int(k), v)));
                (
                    O::Queued(index.pull(None, side).map_err(|e| unexpected(&e))?),
                    O::Queued(want),
                )
            }
            IndexOp::Peek(side) => {
                let want = model
                    .queue_end(side)
                    .and_then(|k| model.get(k).map(|v| (QueueKey::Int(k), v)));
                (
                    O::Queued(index.peek(None, side).map_err(|e| unexpected(&e))?),
                    O::Queued(want),
                )
            }
            IndexOp::Extend(pairs) => {
                for (k, v) in &pairs {
                    model.insert(*k, *v);
                }
                index.try_extend(pairs).map_err(|e| unexpected(&e))?;
                (O::Done, O::Done)
            }
            IndexOp::Clear => {
                model.entries.clear();
                index.clear().map_err(|e| unexpected(&e))?;
                (O::Done, O::Done)
            }
            IndexOp::Reopen => {
                drop(index);
                index = open()?;
                (O::Done, O::Done)
            }
        };
        prop_assert_eq!(got, want, "after {:?}", op);
        let items: Vec<(i64, i64)> = index
            .items()
            .collect::<Result<_, _>>()
            .map_err(|e| unexpected(&e))?;
        prop_assert_eq!(&items, &model.entries, "contents after {:?}", op);
        let len = index.len().map_err(|e| unexpected(&e))?;
        prop_assert_eq!(len, model.entries.len() as u64);
    }
    let keys_rev: Vec<i64> = index
        .keys_rev()
        .collect::<Result<_, _>>()
        .map_err(|e| unexpected(&e))?;
    prop_assert_eq!(
        keys_rev,
        model
            .entries
            .iter()
            .rev()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
    );
    let values: Vec<i64> = index
        .values()
        .collect::<Result<_, _>>()
        .map_err(|e| unexpected(&e))?;
    prop_assert_eq!(
        values,
        model.entries.iter().map(|(_, v)| *v).collect::<Vec<_>>()
    );
    Ok(())
}

proptest! {
    // PROPTEST_CASES=5000 for a longer run (`cargo xtask soak`).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn deque_matches_a_vecdeque_model(ops in proptest::collection::vec(deque_op(), 1..40)) {
        run_deque(&ops)?;
    }

    #[test]
    fn index_matches_an_insertion_ordered_model(ops in proptest::collection::vec(index_op(), 1..40)) {
        run_index(&ops)?;
    }
}
