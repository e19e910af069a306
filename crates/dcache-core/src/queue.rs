//! Queue operations on a cache: `push`, `pull`, `peek` (python's key scheme) and `peek_item`.

use std::fmt;

use dcache_disk::{DbKey, DiskFormat, SqlRef, SqlValue, Stored};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use crate::cache::Cache;
use crate::conn::Tx;
use crate::error::{Error, Result};
use crate::options::{Entry, SetOptions};
use crate::sql::{Columns, ItemRow, QueueRow, Shift};
use crate::state::State;
use crate::tag::Tag;

/// The first key of an empty queue (python's `500000000000000`).
pub const QUEUE_START: i64 = 500_000_000_000_000;
/// Queue keys lie strictly between 0 and this (15 digits).
pub(crate) const QUEUE_MAX: i64 = 999_999_999_999_999;

/// Which end of a queue an operation works on.
///
/// There is no default side: python's `push` defaults to the back while its `pull` and
/// `peek` default to the front, so every call names its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The front: the smallest keys (python's `side='front'`, `last=False`).
    Front,
    /// The back: the largest keys (python's `side='back'`, `last=True`).
    Back,
}

/// A queue key: an integer without a prefix, `"<prefix>-<15 digits>"` with one.
///
/// It is a cache key like any other: pass it to `get`, `delete`, ….
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueKey {
    /// A key of the unprefixed queue.
    Int(i64),
    /// A key of a prefixed queue, e.g. `"jobs-500000000000000"`.
    Text(String),
}

impl fmt::Display for QueueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueKey::Int(i) => write!(f, "{i}"),
            QueueKey::Text(s) => f.write_str(s),
        }
    }
}

impl Serialize for QueueKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            QueueKey::Int(i) => s.serialize_i64(*i),
            QueueKey::Text(t) => s.serialize_str(t),
        }
    }
}

/// Options of [`Cache::push_with`]: queue prefix, side, expiry and tag.
///
/// The default pushes to the back of the unprefixed queue, as python's `push` does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PushOptions {
    /// The queue's prefix (`None`: integer keys).
    pub prefix: Option<String>,
    /// Where to push ([`Side::Back`] unless set, python's `side='back'`).
    pub side: Side,
    /// Expiry and tag of the pushed entry.
    pub set: SetOptions,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            prefix: None,
            side: Side::Back,
            set: SetOptions::default(),
        }
    }
}

impl PushOptions {
    /// Push to the back of the unprefixed queue.
    #[must_use]
    pub fn new() -> Self {
        PushOptions::default()
    }

    /// Uses the queue named `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Pushes at `side`.
    #[must_use]
    pub fn side(mut self, side: Side) -> Self {
        self.side = side;
        self
    }

    /// Expires the entry `ttl` from now.
    #[must_use]
    pub fn expire(mut self, ttl: std::time::Duration) -> Self {
        self.set.expire = Some(ttl);
        self
    }

    /// Tags the entry.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.set.tag = Some(tag.into());
        self
    }
}

/// The key range of a queue, as bound parameters.
fn bounds(prefix: Option<&str>) -> (SqlValue, SqlValue) {
    match prefix {
        None => (SqlValue::Integer(0), SqlValue::Integer(QUEUE_MAX)),
        Some(p) => (
            SqlValue::Text(format!("{p}-{:015}", 0)),
            SqlValue::Text(format!("{p}-{QUEUE_MAX}")),
        ),
    }
}

fn queue_key(prefix: Option<&str>, key: SqlRef<'_>) -> Result<QueueKey> {
    let bad = || Error::NotAQueueKey {
        key: key.to_string(),
    };
    match (prefix, key) {
        (None, SqlRef::Integer(i)) => Ok(QueueKey::Int(i)),
        (Some(p), SqlRef::Text(t)) if t.len() > p.len() && t.starts_with(p) => {
            Ok(QueueKey::Text(t.to_owned()))
        }
        _ => Err(bad()),
    }
}

fn key_number(key: &QueueKey) -> Result<i64> {
    match key {
        QueueKey::Int(i) => Ok(*i),
        QueueKey::Text(t) => t
            .rsplit_once('-')
            .and_then(|(_, digits)| digits.parse().ok())
            .ok_or_else(|| Error::NotAQueueKey { key: t.clone() }),
    }
}

impl<D: DiskFormat> Cache<D> {
    /// Appends `value` to the back of the unprefixed queue and returns its key (python's
    /// `push`). The first key is 500000000000000; pushing to the back adds 1, to the front
    /// subtracts 1, so python's `pull` sees the same order.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set), and [`Error::NotAQueueKey`] when a key in the queue's range is
    /// not a queue key (python raises there too).
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{QueueKey, Side};
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// assert_eq!(cache.push("first")?, QueueKey::Int(500_000_000_000_000));
    /// cache.push("second")?;
    /// let (key, value) = cache.pull::<String>(None, Side::Front)?.unwrap();
    /// assert_eq!((key, value.value.as_str()), (QueueKey::Int(500_000_000_000_000), "first"));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn push(&self, value: impl Serialize) -> Result<QueueKey> {
        self.push_with(value, PushOptions::default())
    }

    /// [`push`](Self::push) with a prefix, side, expiry and tag.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn push_with(&self, value: impl Serialize, opts: PushOptions) -> Result<QueueKey> {
        let state = self.state();
        let stored = state.disk.store(&value, self.files())?;
        self.push_stored(&stored, opts)
    }

    pub(crate) fn push_stored(&self, stored: &Stored, opts: PushOptions) -> Result<QueueKey> {
        let PushOptions { prefix, side, set } = opts;
        let state = self.state();
        let (lo, hi) = bounds(prefix.as_deref());
        let new_file = stored.filename.clone();
        let result = self.write(|tx| {
            let last = tx.db().queue_end_key(side, lo.as_ref(), hi.as_ref())?;
            let num = match last {
                None => QUEUE_START,
                Some(k) => {
                    let n = key_number(&queue_key(prefix.as_deref(), k.as_ref())?)?;
                    match side {
                        Side::Back => n + 1,
                        Side::Front => n - 1,
                    }
                }
            };
            let key = match &prefix {
                None => QueueKey::Int(num),
                Some(p) => QueueKey::Text(format!("{p}-{num:015}")),
            };
            let db_key = match &key {
                QueueKey::Int(i) => DbKey {
                    value: SqlValue::Integer(*i),
                    raw: true,
                },
                QueueKey::Text(t) => DbKey {
                    value: SqlValue::Text(t.clone()),
                    raw: true,
                },
            };
            self.insert_entry(tx, &state, &db_key, stored, &set)?;
            Ok(key)
        });
        if result.is_err()
            && let Some(name) = &new_file
            && let Err(e) = self.files().remove(name)
        {
            log::warn!("dcache: could not remove unused value file {name}: {e}");
        }
        result
    }

    /// Removes and returns the entry at `side` of the queue `prefix` (python's `pull`), or
    /// `None` when the queue is empty. Expired entries at that end are removed and skipped.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop); the entry is kept if its value cannot be read as `V`.
    pub fn pull<V: DeserializeOwned>(
        &self,
        prefix: Option<&str>,
        side: Side,
    ) -> Result<Option<(QueueKey, Entry<V>)>> {
        self.queue_end(prefix, side, true)
    }

    /// Returns the entry at `side` of the queue without removing it (python's `peek`);
    /// expired entries at that end are removed.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn peek<V: DeserializeOwned>(
        &self,
        prefix: Option<&str>,
        side: Side,
    ) -> Result<Option<(QueueKey, Entry<V>)>> {
        self.queue_end(prefix, side, false)
    }

    fn queue_end<V: DeserializeOwned>(
        &self,
        prefix: Option<&str>,
        side: Side,
        remove: bool,
    ) -> Result<Option<(QueueKey, Entry<V>)>> {
        let state = self.state();
        let (lo, hi) = bounds(prefix);
        self.write(|tx| {
            loop {
                let now = self.now();
                let Some(QueueRow { row: found, key }) =
                    tx.db().queue_end_row(side, lo.as_ref(), hi.as_ref())?
                else {
                    return Ok(None);
                };
                let expired = found.expire_time.is_some_and(|t| t < now);
                if expired {
                    self.delete_rowid(tx, found.rowid, found.filename.clone())?;
                    continue;
                }
                let value = match state.disk.fetch::<V>(found.stored(), self.files()) {
                    Ok(v) => v,
                    Err(
                        e @ (dcache_disk::Error::MissingFile { .. }
                        | dcache_disk::Error::SizeMismatch { .. }),
                    ) => {
                        // python skips an entry whose file vanished; the row goes too.
                        log::warn!(
                            "dcache: skipping a queue entry whose value file is damaged: {e}"
                        );
                        self.delete_rowid(tx, found.rowid, found.filename.clone())?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if remove {
                    self.delete_rowid(tx, found.rowid, found.filename.clone())?;
                }
                let key = queue_key(prefix, key.as_ref())?;
                return Ok(Some((key, found.entry(value))));
            }
        })
    }

    /// The oldest ([`Side::Front`]) or newest ([`Side::Back`]) entry in insertion order, with
    /// its key; expired entries at that end are removed and skipped. Python's
    /// `peekitem(last=True)` is `peek_item(Side::Back)`, `peekitem(last=False)`
    /// `peek_item(Side::Front)`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::Side;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set("a", 1)?;
    /// cache.set("b", 2)?;
    /// let (key, entry) = cache.peek_item::<String, i64>(Side::Back)?.unwrap();
    /// assert_eq!((key.as_str(), entry.value), ("b", 2));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    #[doc(alias = "peekitem")]
    pub fn peek_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        side: Side,
    ) -> Result<Option<(K, Entry<V>)>> {
        self.end_item(side == Side::Back, false)
    }

    /// Removes and returns the oldest ([`Side::Front`]) or newest ([`Side::Back`]) entry in
    /// insertion order, in one transaction (python's `Index.popitem(last)`; `last=True` is
    /// [`Side::Back`]).
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop).
    #[doc(alias = "popitem")]
    pub fn pop_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        side: Side,
    ) -> Result<Option<(K, Entry<V>)>> {
        self.end_item(side == Side::Back, true)
    }

    fn end_item<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        last: bool,
        remove: bool,
    ) -> Result<Option<(K, Entry<V>)>> {
        let state = self.state();
        self.write(|tx| {
            loop {
                let now = self.now();
                let Some(ItemRow {
                    row: found,
                    key,
                    raw,
                }) = tx.db().end_item(last)?
                else {
                    return Ok(None);
                };
                if found.expire_time.is_some_and(|t| t < now) {
                    self.delete_rowid(tx, found.rowid, found.filename.clone())?;
                    continue;
                }
                let key: K = state.disk.get(key.as_ref(), raw)?;
                let value: V = match state.disk.fetch(found.stored(), self.files()) {
                    Ok(v) => v,
                    Err(
                        e @ (dcache_disk::Error::MissingFile { .. }
                        | dcache_disk::Error::SizeMismatch { .. }),
                    ) => {
                        // As `pull`: python skips an entry whose file vanished (it reads as a
                        // miss), and the row goes too, so the next call finds the next entry
                        // instead of failing on this one forever.
                        log::warn!("dcache: skipping an entry whose value file is damaged: {e}");
                        self.delete_rowid(tx, found.rowid, found.filename.clone())?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if remove {
                    self.delete_rowid(tx, found.rowid, found.filename.clone())?;
                }
                return Ok(Some((key, found.entry(value))));
            }
        })
    }

    /// Inserts a new row (the key is known to be absent) and culls.
    fn insert_entry(
        &self,
        tx: &Tx<'_>,
        state: &State<D>,
        key: &DbKey,
        stored: &Stored,
        opts: &SetOptions,
    ) -> Result<()> {
        if let Some(name) = &stored.filename {
            tx.remove_on_rollback(self.files(), name.clone());
        }
        if let Some(Tag::Real(f)) = &opts.tag
            && f.is_nan()
        {
            return Err(Error::NanTag);
        }
        let now = self.now();
        let columns = Columns {
            expire_time: opts.expire.map(|d| crate::clock::expire_at(now, d)),
            tag: opts.tag.as_ref().map_or(SqlRef::Null, Tag::as_sql),
            stored: stored.as_ref(),
        };
        tx.db().insert_row(key, now, &columns)?;
        self.cull_in_tx(tx, state, now, state.settings.cull_limit)
    }
}

impl<D: DiskFormat> Cache<D> {
    /// Rotates the unprefixed queue `steps` places towards the back (python's
    /// `Deque.rotate`): the last `steps` items move to the front, keeping their order; a
    /// negative `steps` moves the first `-steps` items to the back. `steps` is taken modulo
    /// the queue's length.
    ///
    /// One transaction of a few statements whatever `steps` is: the moved items get new keys
    /// in place (`UPDATE ... SET key = key - span`), their values and files are not touched.
    /// When the keys are contiguous, the new keys are exactly those python's one-item-at-a-time
    /// rotation gives.
    ///
    /// # Errors
    ///
    /// [`Error::NotAQueueKey`] if a key at an end of the moved block is not an integer (python
    /// counts a float between 0 and 999999999999999 as a queue item);
    /// [`Error::QueueExhausted`] if the new keys would leave the queue's range; and the errors
    /// of a write ([`Error::Timeout`], [`Error::ReadOnly`], [`Error::Sqlite`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::Side;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// for i in 0..5 {
    ///     cache.push(i)?;
    /// }
    /// cache.rotate_queue(2)?;
    /// let items: Vec<i64> = cache.sorted_items::<i64, i64>(dcache_core::Order::Ascending).map(|r| r.map(|(_, v)| v)).collect::<Result<_, _>>()?;
    /// assert_eq!(items, [3, 4, 0, 1, 2]);
    /// cache.rotate_queue(-3)?;
    /// let (_, front) = cache.peek::<i64>(None, Side::Front)?.unwrap();
    /// assert_eq!(front.value, 1);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn rotate_queue(&self, steps: i64) -> Result<()> {
        if steps == 0 {
            return Ok(());
        }
        // Rotating right moves a block from the back: count it from the back.
        let from_back = steps > 0;
        self.write(|tx| {
            let mut k = steps.unsigned_abs();
            let db = tx.db();
            let mut edge = db.queue_nth(k - 1, from_back)?;
            if edge.is_none() {
                let len = db.queue_len()?;
                if len == 0 {
                    return Ok(());
                }
                k %= len;
                if k == 0 {
                    return Ok(());
                }
                edge = db.queue_nth(k - 1, from_back)?;
            }
            let (Some(edge), Some(front), Some(back)) =
                (edge, db.queue_nth(0, false)?, db.queue_nth(0, true)?)
            else {
                return Ok(());
            };
            let (edge, front, back) = (int_key(&edge)?, int_key(&front)?, int_key(&back)?);
            // Keys lie in (0, QUEUE_MAX): none of this overflows.
            let span = back - front + 1;
            let shift = if from_back {
                if edge - span <= 0 {
                    return Err(Error::QueueExhausted);
                }
                Shift::DownFrom { bound: edge, span }
            } else {
                if edge + span >= QUEUE_MAX {
                    return Err(Error::QueueExhausted);
                }
                Shift::UpTo { bound: edge, span }
            };
            db.shift_queue(shift)
        })
    }

    /// Reverses the order of the unprefixed queue in place (python's `Deque.reverse`): the
    /// items swap keys, so the key set stays the same, and values and files are not touched.
    /// One transaction of four statements.
    ///
    /// # Errors
    ///
    /// As [`rotate_queue`](Self::rotate_queue).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// for s in ["a", "b", "c"] {
    ///     cache.push(s)?;
    /// }
    /// cache.reverse_queue()?;
    /// let items: Vec<(i64, String)> = cache.sorted_items(dcache_core::Order::Ascending).collect::<Result<_, _>>()?;
    /// assert_eq!(items, [
    ///     (500_000_000_000_000, "c".to_owned()),
    ///     (500_000_000_000_001, "b".to_owned()),
    ///     (500_000_000_000_002, "a".to_owned()),
    /// ]);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn reverse_queue(&self) -> Result<()> {
        self.write(|tx| {
            let db = tx.db();
            let (Some(front), Some(back)) = (db.queue_nth(0, false)?, db.queue_nth(0, true)?)
            else {
                return Ok(());
            };
            let (front, back) = (int_key(&front)?, int_key(&back)?);
            let span = back - front + 1;
            // Mirror the keys into the free space beyond one end (no key collides on the way),
            // then shift them back: the unique index on (key, raw) is checked row by row.
            // Above the back: back..front become back + 1..back + span, then shift down.
            // Else below the front: back..front become front - span..front - 1, shift up.
            let (mirror, shift) = if back + span < QUEUE_MAX {
                (2 * back + 1, Shift::DownAbove { bound: back, span })
            } else if front - span > 0 {
                (2 * front - 1, Shift::UpBelow { bound: front, span })
            } else {
                return Err(Error::QueueExhausted);
            };
            db.mirror_queue(mirror)?;
            db.shift_queue(shift)
        })
    }
}

/// An unprefixed queue key as an integer (a float in the queue's range cannot be moved).
fn int_key(key: &SqlValue) -> Result<i64> {
    match key {
        SqlValue::Integer(i) => Ok(*i),
        other => Err(Error::NotAQueueKey {
            key: other.as_ref().to_string(),
        }),
    }
}
