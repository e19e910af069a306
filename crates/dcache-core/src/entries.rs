//! Inspection: entries with their metadata, values of any type, expired counts, a summary of
//! the cache, and `VACUUM`. What an inspection tool (the `dcache` command) needs, without SQL
//! of its own.

use std::collections::VecDeque;
use std::time::SystemTime;

use dcache_disk::{DiskFormat, Format, Mode, SqlRef, SqlValue, StoredRef, Value};
use serde::Serialize;

use crate::cache::Cache;
use crate::conn::{self, Use};
use crate::error::{Error, Result};
use crate::evict::Stats;
use crate::iter::PAGE;
use crate::options::Entry;
use crate::sql::ListedRow;
use crate::tag::Tag;

/// Which entries [`Cache::entries`] lists, in which order, and whether it reads inline values.
///
/// # Examples
///
/// ```
/// use dcache_core::EntryQuery;
///
/// let query = EntryQuery::new().tag("sessions").reverse(true).values(false);
/// assert!(query.reverse && !query.values);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EntryQuery {
    /// Only entries with this tag (default: all entries).
    pub tag: Option<Tag>,
    /// Newest first (default false: insertion order, oldest first).
    pub reverse: bool,
    /// Read inline values with the rows (default true), so [`Cache::decode_value`] needs no
    /// further query. Without them a page of 100 rows holds only keys and metadata.
    pub values: bool,
}

impl Default for EntryQuery {
    fn default() -> Self {
        EntryQuery {
            tag: None,
            reverse: false,
            values: true,
        }
    }
}

impl EntryQuery {
    /// Every entry, oldest first, with inline values.
    #[must_use]
    pub fn new() -> Self {
        EntryQuery::default()
    }

    /// Only entries tagged `tag`.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only entries tagged `tag` when `Some`.
    #[must_use]
    pub fn tag_opt(mut self, tag: Option<Tag>) -> Self {
        self.tag = tag;
        self
    }

    /// Newest first when `true`.
    #[must_use]
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }

    /// Whether to read inline values with the rows.
    #[must_use]
    pub fn values(mut self, values: bool) -> Self {
        self.values = values;
        self
    }
}

/// The inline `value` column of a listed entry.
#[derive(Debug, Clone, PartialEq)]
enum Inline {
    /// Not read ([`EntryQuery::values`] was false).
    NotRead,
    /// The column as stored (`NULL` for a value in a file).
    Value(SqlValue),
    /// TEXT that is not UTF-8 (only a foreign program writes one).
    BadText,
}

/// One entry of a cache with its metadata, as [`Cache::entries`] and [`Cache::entry_info`]
/// return it: a row of the `Cache` table.
///
/// Times are the stored ones; a stored time that is not a valid time (a damaged row) reads as
/// `None`. Expired entries are listed too: see [`is_expired_at`](Self::is_expired_at).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dcache_core::{Cache, SetOptions};
///
/// let cache = Cache::temp()?;
/// cache.set_with("k", "v", SetOptions::new().expire(Duration::from_secs(60)))?;
/// let info = cache.entry_info("k")?.expect("live");
/// assert!(!info.is_expired_at(SystemTime::now()));
/// assert!(info.is_expired_at(SystemTime::now() + Duration::from_secs(61)));
/// assert!(!info.in_file());
/// assert_eq!(info.value_size(), 1);
/// assert!(info.stored().is_some());
/// # Ok::<(), dcache_core::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The row id: the entry's position in insertion order (an overwrite keeps it).
    pub rowid: i64,
    /// The key, decoded by the cache's disk as a [`Value`], or why it could not be (a pickle
    /// of a class, a foreign encoding). The listing goes on past such entries.
    pub key: std::result::Result<Value, dcache_disk::Error>,
    /// The `key` column as stored (TEXT that is not UTF-8 is given as its bytes).
    pub key_column: SqlValue,
    /// The `raw` column: true when the key is stored natively, false when serialized.
    pub raw: bool,
    /// When the entry was last written.
    pub store_time: Option<SystemTime>,
    /// When the entry expires (`None`: never).
    pub expire_time: Option<SystemTime>,
    /// When the entry was last read (maintained only by the least-recently-used policy).
    pub access_time: Option<SystemTime>,
    /// How often the entry was read (maintained only by the least-frequently-used policy).
    pub access_count: u64,
    /// The tag (a TEXT tag that is not UTF-8 is given as its bytes).
    pub tag: Option<Tag>,
    /// Bytes in the value file; 0 for an inline value.
    pub size: u64,
    /// How the value is stored.
    pub mode: Mode,
    /// The value file, relative to the cache directory, if the value lives in one.
    pub filename: Option<String>,
    /// Length of the inline value as SQLite's `length()` gives it: bytes of a blob, characters
    /// of text, digits of a number; 0 for a value in a file.
    pub inline_len: u64,
    inline: Inline,
}

impl EntryInfo {
    /// Whether the entry is expired at `now` (python's live test is `expire_time > now`).
    #[must_use]
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    /// Whether the value lives in a value file.
    #[must_use]
    pub fn in_file(&self) -> bool {
        self.filename.is_some()
    }

    /// The value's size in bytes wherever it is stored: the file size, or the inline length.
    #[must_use]
    pub fn value_size(&self) -> u64 {
        if self.in_file() {
            self.size
        } else {
            self.inline_len
        }
    }

    /// The stored value as a [`dcache_disk::DiskFormat`] reads it, or `None` when the inline
    /// value was not read (see [`EntryQuery::values`]) or is unreadable text.
    #[must_use]
    pub fn stored(&self) -> Option<StoredRef<'_>> {
        let value = match (&self.inline, &self.filename) {
            (_, Some(_)) => SqlRef::Null,
            (Inline::Value(v), None) => v.as_ref(),
            (Inline::NotRead | Inline::BadText, None) => return None,
        };
        Some(StoredRef {
            size: self.size,
            mode: self.mode,
            filename: self.filename.as_deref(),
            value,
        })
    }
}

/// For monitoring and tools: a map of the public fields. `key` is the decoded key, or `null`
/// with `key_error` saying why it could not be decoded; times are Unix seconds (python's
/// representation), `mode` its number, the tag the value it holds. The inline value is not
/// included (read it with [`EntryInfo::stored`]).
impl Serialize for EntryInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let time = |t: Option<SystemTime>| t.map(crate::clock::unix_seconds);
        let mut map = s.serialize_map(Some(14))?;
        map.serialize_entry("rowid", &self.rowid)?;
        map.serialize_entry("key", &self.key.as_ref().ok())?;
        map.serialize_entry(
            "key_error",
            &self.key.as_ref().err().map(ToString::to_string),
        )?;
        map.serialize_entry("key_column", &self.key_column)?;
        map.serialize_entry("raw", &self.raw)?;
        map.serialize_entry("store_time", &time(self.store_time))?;
        map.serialize_entry("expire_time", &time(self.expire_time))?;
        map.serialize_entry("access_time", &time(self.access_time))?;
        map.serialize_entry("access_count", &self.access_count)?;
        map.serialize_entry("tag", &self.tag)?;
        map.serialize_entry("size", &self.size)?;
        map.serialize_entry("mode", &self.mode.0)?;
        map.serialize_entry("filename", &self.filename)?;
        map.serialize_entry("inline_len", &self.inline_len)?;
        map.end()
    }
}

/// Interprets a listed row: the key is decoded by `disk` (its failure is kept in the entry);
/// a mode outside `0..=255` fails the row.
fn entry_info<D: DiskFormat>(row: ListedRow, disk: &D, values: bool) -> Result<EntryInfo> {
    let ListedRow {
        rowid,
        key,
        raw,
        store_time,
        expire_time,
        access_time,
        access_count,
        tag,
        size,
        mode,
        filename,
        value,
        inline_len,
    } = row;
    let raw = raw.as_i64().unwrap_or(0) != 0;
    let (key, key_column) = match key.into_sql() {
        Ok(column) => (disk.get_value(column.as_ref(), raw), column),
        Err(bytes) => (
            Err(dcache_disk::Error::Decode {
                format: Format::Raw,
                reason: "the stored text key is not UTF-8".to_owned(),
            }),
            SqlValue::Blob(bytes),
        ),
    };
    let tag = match tag.into_sql() {
        Ok(v) => Tag::from_sql(v.as_ref()),
        Err(bytes) => Some(Tag::Blob(bytes)),
    };
    let mode = mode.as_i64().unwrap_or(0);
    let mode = Mode::from_column(mode).map_err(|_| {
        Error::Disk(dcache_disk::Error::Decode {
            format: Format::Raw,
            reason: format!("row {rowid}: mode {mode} is not a storage mode"),
        })
    })?;
    let filename = match filename.into_sql() {
        Ok(SqlValue::Text(name)) => Some(name),
        Ok(SqlValue::Null) => None,
        _ => {
            return Err(Error::Disk(dcache_disk::Error::Decode {
                format: Format::Raw,
                reason: format!("row {rowid}: the filename column is not text"),
            }));
        }
    };
    let inline = if values {
        value.into_sql().map_or(Inline::BadText, Inline::Value)
    } else {
        Inline::NotRead
    };
    Ok(EntryInfo {
        rowid,
        key,
        key_column,
        raw,
        store_time: store_time.as_time(),
        expire_time: expire_time.as_time(),
        access_time: access_time.as_time(),
        access_count: u64::try_from(access_count.as_i64().unwrap_or(0)).unwrap_or(0),
        tag,
        size: u64::try_from(size.as_i64().unwrap_or(0)).unwrap_or(0),
        mode,
        filename,
        inline_len: u64::try_from(inline_len.as_i64().unwrap_or(0)).unwrap_or(0),
        inline,
    })
}

/// The entries of a cache with their metadata, as [`Cache::entries`] returns them.
///
/// Reads pages of 100 rows by row id and holds no connection between pages. Entries added
/// after the listing started are not yielded, entries removed meanwhile are skipped, expired
/// entries are included. An entry whose key cannot be decoded is yielded with the error in
/// [`EntryInfo::key`]; a row that cannot be read at all is yielded as an `Err` and the listing
/// goes on; only a failed page read ends it.
pub struct Entries<D: DiskFormat> {
    cache: Cache<D>,
    query: EntryQuery,
    /// Exclusive bound on the far side.
    bound: i64,
    /// The last row id read.
    cursor: i64,
    page: VecDeque<ListedRow>,
    done: bool,
}

impl<D: DiskFormat> std::fmt::Debug for Entries<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries")
            .field("query", &self.query)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl<D: DiskFormat> Entries<D> {
    fn fill(&mut self) -> Result<()> {
        let (lo, hi) = if self.query.reverse {
            (self.bound, self.cursor)
        } else {
            (self.cursor, self.bound)
        };
        let query = &self.query;
        let rows = self.cache.read_with(|db| {
            db.listing_page(
                lo,
                hi,
                PAGE,
                query.values,
                query.tag.as_ref(),
                query.reverse,
            )
        })?;
        if rows.is_empty() {
            self.done = true;
        }
        self.page.extend(rows);
        Ok(())
    }
}

impl<D: DiskFormat> Iterator for Entries<D> {
    type Item = Result<EntryInfo>;

    fn next(&mut self) -> Option<Result<EntryInfo>> {
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fill()
        {
            self.done = true;
            return Some(Err(e));
        }
        let row = self.page.pop_front()?;
        self.cursor = row.rowid;
        Some(entry_info(row, &self.cache.state().disk, self.query.values))
    }
}

/// Counts and sizes of a cache, as [`Cache::summary`] returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Entries, expired ones included (python's `len`).
    pub entries: u64,
    /// Entries expired now and not yet removed.
    pub expired: u64,
    /// Bytes the cache occupies: database pages plus value files (python's `volume()`).
    pub volume: u64,
    /// Bytes in value files (the `size` counter).
    pub files_size: u64,
    /// Hits and misses recorded while statistics were on.
    pub stats: Stats,
}

impl<D: DiskFormat> Cache<D> {
    /// Lists entries with their metadata, in insertion order (or newest first), optionally
    /// only those with a tag. Never writes. See [`Entries`] for how it pages and what it does
    /// with entries it cannot decode.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] reading the last row id; later errors come through the iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{Cache, EntryQuery, SetOptions, Value};
    ///
    /// let cache = Cache::temp()?;
    /// cache.set("a", 1)?;
    /// cache.set_with("b", b"bytes".as_slice(), SetOptions::new().tag("t"))?;
    /// let tagged: Vec<_> = cache.entries(EntryQuery::new().tag("t"))?.collect::<Result<_, _>>()?;
    /// assert_eq!(tagged.len(), 1);
    /// assert_eq!(tagged[0].key.as_ref().ok(), Some(&Value::from("b")));
    /// assert_eq!(cache.decode_value(&tagged[0])?, Value::from(b"bytes".to_vec()));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn entries(&self, query: EntryQuery) -> Result<Entries<D>> {
        let max = self.read_with(|db| db.max_rowid())?;
        let (bound, cursor, done) = match (max, query.reverse) {
            (None, _) => (0, 0, true),
            (Some(m), false) => (m.saturating_add(1), 0, false),
            (Some(m), true) => (0, m.saturating_add(1), false),
        };
        Ok(Entries {
            cache: self.clone(),
            query,
            bound,
            cursor,
            page: VecDeque::new(),
            done,
        })
    }

    /// The metadata of the live entry for `key` (with its inline value), or `None`. Never
    /// writes: reading it records no hit, miss or access.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`] for a key that cannot be encoded, [`Error::Sqlite`], and a row that
    /// cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set("big", vec![0u8; 100_000].as_slice())?;
    /// let info = cache.entry_info("big")?.expect("just set");
    /// assert!(info.in_file());
    /// assert_eq!(info.value_size(), 100_000);
    /// assert!(cache.entry_info("missing")?.is_none());
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn entry_info(&self, key: impl Serialize) -> Result<Option<EntryInfo>> {
        let state = self.state();
        let key = state.disk.put(&key)?;
        let now = self.now();
        let row = self.read_with(|db| db.listed_row(&key, now))?;
        row.map(|r| entry_info(r, &state.disk, true)).transpose()
    }

    /// Decodes the value of a listed entry as a [`Value`] of any type (python's `repr` is its
    /// `Display`), reading its value file if it has one.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`]: the value cannot be decoded, its file is missing or has another size,
    /// or the listing did not read inline values ([`EntryQuery::values`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{Cache, EntryQuery};
    ///
    /// let cache = Cache::temp()?;
    /// cache.set("s", std::collections::BTreeSet::from([1, 2]))?;
    /// let entry = cache.entries(EntryQuery::new())?.next().expect("one entry")?;
    /// assert_eq!(cache.decode_value(&entry)?.to_string(), "[1, 2]");
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn decode_value(&self, entry: &EntryInfo) -> Result<Value> {
        let stored = entry.stored().ok_or_else(|| {
            Error::Disk(dcache_disk::Error::Decode {
                format: Format::Raw,
                reason: match entry.inline {
                    Inline::BadText => format!("row {}: the stored text is not UTF-8", entry.rowid),
                    _ => format!(
                        "row {}: the inline value was not read (list with EntryQuery::values(true))",
                        entry.rowid
                    ),
                },
            })
        })?;
        Ok(self.state().disk.fetch_value(stored, &self.inner.files)?)
    }

    /// The value of the live entry for `key` as a [`Value`] of any type, with its expiry time
    /// and tag; `None` on a miss. Records statistics and access like [`get`](Self::get).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), but never a type mismatch.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{Cache, Value};
    ///
    /// let cache = Cache::temp()?;
    /// cache.set("point", (1, "a"))?;
    /// let entry = cache.get_value("point")?.expect("just set");
    /// assert_eq!(entry.value.to_string(), "(1, 'a')");
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn get_value(&self, key: impl Serialize) -> Result<Option<Entry<Value>>> {
        self.lookup(key, true, |state, stored| {
            state.disk.fetch_value(stored, &self.inner.files)
        })
    }

    /// The number of entries that have expired and are still stored (`expire()` would remove
    /// them, bar those expiring at this very instant). Never writes.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dcache_core::{Cache, SetOptions};
    ///
    /// let cache = Cache::temp()?;
    /// cache.set("kept", 2)?;
    /// // Expired at once (and culled by the next write, as in python).
    /// cache.set_with("gone", 1, SetOptions::new().expire(Duration::ZERO))?;
    /// assert_eq!(cache.expired_count()?, 1);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn expired_count(&self) -> Result<u64> {
        let now = self.now();
        self.read_with(|db| db.expired_count(now))
            .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// Entries, expired entries, volume, value-file bytes and recorded hits and misses, read
    /// without writing (unlike [`stats`](Self::stats), which may change the `statistics`
    /// setting).
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.set("a", vec![1u8; 40_000].as_slice())?;
    /// let summary = cache.summary()?;
    /// assert_eq!((summary.entries, summary.expired, summary.files_size), (1, 0, 40_000));
    /// assert!(summary.volume > 40_000);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn summary(&self) -> Result<Summary> {
        let count = |name| self.metadata(name).map(|n| u64::try_from(n).unwrap_or(0));
        Ok(Summary {
            entries: count("count")?,
            expired: self.expired_count()?,
            volume: self.volume()?,
            files_size: count("size")?,
            stats: Stats {
                hits: count("hits")?,
                misses: count("misses")?,
            },
        })
    }

    /// Rebuilds the database file to reclaim free pages and defragment it (SQLite's
    /// `VACUUM`), then truncates the write-ahead log so the space returns to the file system.
    ///
    /// `VACUUM` cannot run inside a transaction: it runs on its own connection, under the
    /// cache's write lock (readers go on meanwhile). It needs free disk space of about twice
    /// the database's size while it runs, and it does not touch value files. With python's
    /// default `sqlite_auto_vacuum` (FULL) free pages are already returned at each commit, so
    /// this mostly defragments; with auto-vacuum off it can shrink the file a lot.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`]; [`Error::InTransaction`] inside [`transact`](Self::transact);
    /// [`Error::Timeout`] when other writers keep the database busy for the cache's timeout;
    /// [`Error::Sqlite`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// for n in 0..1000 {
    ///     cache.set(n, "x".repeat(100))?;
    /// }
    /// cache.clear()?;
    /// cache.vacuum()?;
    /// assert!(cache.is_empty()?);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn vacuum(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly {
                path: self.directory().to_path_buf(),
            });
        }
        if conn::active(conn::db_id(&self.inner.writer)).is_some() {
            // SQLite refuses it too; and this thread holds the write lock vacuum would take.
            return Err(Error::InTransaction {
                operation: "vacuum",
            });
        }
        let op = self.op();
        let _guard = self
            .inner
            .writer
            .acquire(op.deadline, crate::pid::current())
            .ok_or_else(|| op.timeout())?;
        let conn = self.inner.pool.checkout(Use::Write, &op)?;
        op.retry_busy(|| conn.execute_batch("VACUUM"))?;
        // Busy readers make a TRUNCATE checkpoint give up (reported in its row, not as an
        // error): the log is then truncated by a later checkpoint.
        op.retry_busy(|| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
    }
}
