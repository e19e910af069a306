//! The statements of the queues (`push`, `pull`, `peek`, `peekitem`, `popitem`) and of the
//! `Deque`'s renumbering (`rotate_queue`, `reverse_queue`), each beside its row.
//!
//! Queue keys lie strictly between the bounds of [`crate::queue`]'s key range; the
//! unprefixed queue's upper bound, [`QUEUE_MAX`], is bound as a parameter.

use dcache_disk::{SqlRef, SqlValue};
use rusqlite::Row;

use crate::error::Result;
use crate::queue::{QUEUE_MAX, Side};
use crate::sql::entry::live_row_cols;
use crate::sql::{Db, LiveRow};
use crate::sqlval::{Bind, from_rusqlite, raw_flag, sql_value};

/// The key at one end of a queue's key range (`?1 < key < ?2`).
const LAST_KEY: &str =
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key DESC LIMIT 1";
const FIRST_KEY: &str =
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key ASC LIMIT 1";

/// The row at one end of a queue's key range, then its key.
const LAST_ROW: &str = concat!(
    "SELECT ",
    live_row_cols!(),
    ", key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key DESC LIMIT 1"
);
const FIRST_ROW: &str = concat!(
    "SELECT ",
    live_row_cols!(),
    ", key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key ASC LIMIT 1"
);

/// The newest or oldest row in insertion order, then its key and `raw` flag.
const NEWEST_ITEM: &str = concat!(
    "SELECT ",
    live_row_cols!(),
    ", key, raw FROM Cache ORDER BY rowid DESC LIMIT 1"
);
const OLDEST_ITEM: &str = concat!(
    "SELECT ",
    live_row_cols!(),
    ", key, raw FROM Cache ORDER BY rowid ASC LIMIT 1"
);

/// The `n`-th key (`?1`) of the unprefixed queue (`0 < key < ?2`).
const NTH_FROM_BACK: &str = "SELECT key FROM Cache WHERE raw = 1 AND 0 < key AND key < ?2 \
     ORDER BY key DESC LIMIT 1 OFFSET +?1";
const NTH_FROM_FRONT: &str = "SELECT key FROM Cache WHERE raw = 1 AND 0 < key AND key < ?2 \
     ORDER BY key ASC LIMIT 1 OFFSET +?1";

/// The number of items of the unprefixed queue.
const QUEUE_LEN: &str = "SELECT COUNT(*) FROM Cache WHERE raw = 1 AND 0 < key AND key < ?1";

/// Moves the unprefixed queue's keys in `?2 <= key < ?3` down by `?1`.
const SHIFT_DOWN_FROM: &str =
    "UPDATE Cache SET key = key - ?1 WHERE raw = 1 AND ?2 <= key AND key < ?3";
/// Moves the unprefixed queue's keys in `?2 < key < ?3` down by `?1`.
const SHIFT_DOWN_ABOVE: &str =
    "UPDATE Cache SET key = key - ?1 WHERE raw = 1 AND ?2 < key AND key < ?3";
/// Moves the unprefixed queue's keys in `0 < key <= ?2` up by `?1`.
const SHIFT_UP_TO: &str = "UPDATE Cache SET key = key + ?1 WHERE raw = 1 AND 0 < key AND key <= ?2";
/// Moves the unprefixed queue's keys in `0 < key < ?2` up by `?1`.
const SHIFT_UP_BELOW: &str =
    "UPDATE Cache SET key = key + ?1 WHERE raw = 1 AND 0 < key AND key < ?2";
/// Mirrors every key `k` of the unprefixed queue to `?1 - k`.
const MIRROR: &str = "UPDATE Cache SET key = ?1 - key WHERE raw = 1 AND 0 < key AND key < ?2";

/// A row at one end of a queue: the entry and its key.
pub(crate) struct QueueRow {
    pub(crate) row: LiveRow,
    pub(crate) key: SqlValue,
}

/// A row at one end of insertion order: the entry, its key and `raw` flag.
pub(crate) struct ItemRow {
    pub(crate) row: LiveRow,
    pub(crate) key: SqlValue,
    pub(crate) raw: bool,
}

/// How a block of the unprefixed queue's keys moves (see [`Db::shift_queue`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shift {
    /// Keys from `bound` (inclusive) up move down by `span`.
    DownFrom { bound: i64, span: i64 },
    /// Keys above `bound` move down by `span`.
    DownAbove { bound: i64, span: i64 },
    /// Keys up to `bound` (inclusive) move up by `span`.
    UpTo { bound: i64, span: i64 },
    /// Keys below `bound` move up by `span`.
    UpBelow { bound: i64, span: i64 },
}

impl Db<'_> {
    /// The first column, a key.
    fn key_column(r: &Row<'_>) -> rusqlite::Result<SqlValue> {
        r.get(0).map(from_rusqlite)
    }

    /// The key at the `side` end of the queue range `lo < key < hi`.
    pub(crate) fn queue_end_key(
        &self,
        side: Side,
        lo: SqlRef<'_>,
        hi: SqlRef<'_>,
    ) -> Result<Option<SqlValue>> {
        let sql = match side {
            Side::Back => LAST_KEY,
            Side::Front => FIRST_KEY,
        };
        self.first_row(sql, (Bind(lo), Bind(hi)), Self::key_column)
    }

    /// The row at the `side` end of the queue range `lo < key < hi`.
    pub(crate) fn queue_end_row(
        &self,
        side: Side,
        lo: SqlRef<'_>,
        hi: SqlRef<'_>,
    ) -> Result<Option<QueueRow>> {
        let sql = match side {
            Side::Back => LAST_ROW,
            Side::Front => FIRST_ROW,
        };
        self.first(sql, (Bind(lo), Bind(hi)), |r| {
            Ok(QueueRow {
                row: LiveRow::read(r)?,
                key: sql_value(r.get_ref(7).map_err(|e| self.err(e))?)?,
            })
        })
    }

    /// The newest (`last`) or oldest row in insertion order.
    pub(crate) fn end_item(&self, last: bool) -> Result<Option<ItemRow>> {
        let sql = if last { NEWEST_ITEM } else { OLDEST_ITEM };
        self.first(sql, [], |r| {
            Ok(ItemRow {
                row: LiveRow::read(r)?,
                key: sql_value(r.get_ref(7).map_err(|e| self.err(e))?)?,
                raw: raw_flag(&from_rusqlite(r.get(8).map_err(|e| self.err(e))?)),
            })
        })
    }

    /// The `n`-th key of the unprefixed queue from the front (or the back).
    pub(crate) fn queue_nth(&self, n: u64, from_back: bool) -> Result<Option<SqlValue>> {
        let sql = if from_back {
            NTH_FROM_BACK
        } else {
            NTH_FROM_FRONT
        };
        let offset = i64::try_from(n).unwrap_or(i64::MAX);
        self.first_row(sql, (offset, QUEUE_MAX), Self::key_column)
    }

    /// The number of items in the unprefixed queue.
    pub(crate) fn queue_len(&self) -> Result<u64> {
        let n = self.first_row(QUEUE_LEN, [QUEUE_MAX], |r| r.get::<_, i64>(0))?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    }

    /// Moves a block of the unprefixed queue's keys.
    pub(crate) fn shift_queue(&self, shift: Shift) -> Result<()> {
        match shift {
            Shift::DownFrom { bound, span } => {
                self.execute(SHIFT_DOWN_FROM, (span, bound, QUEUE_MAX))
            }
            Shift::DownAbove { bound, span } => {
                self.execute(SHIFT_DOWN_ABOVE, (span, bound, QUEUE_MAX))
            }
            Shift::UpTo { bound, span } => self.execute(SHIFT_UP_TO, (span, bound)),
            Shift::UpBelow { bound, span } => self.execute(SHIFT_UP_BELOW, (span, bound)),
        }
        .map(drop)
    }

    /// Mirrors every key `k` of the unprefixed queue to `mirror - k`.
    pub(crate) fn mirror_queue(&self, mirror: i64) -> Result<()> {
        self.execute(MIRROR, (mirror, QUEUE_MAX)).map(drop)
    }
}
