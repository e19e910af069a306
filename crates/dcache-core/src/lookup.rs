//! The read of one key behind `get`, `get_entry`, `get_bytes`, `read` and `get_value`: a fast
//! path without a transaction, its retry when a writer replaced the value file meanwhile, and
//! the slow path that records statistics and access times in a write transaction.

use dcache_disk::{DbKey, DiskFormat, StoredRef};
use serde::Serialize;

use crate::cache::{Cache, is_missing_file};
use crate::clock::from_unix;
use crate::conn::Tx;
use crate::error::{Error, Result};
use crate::options::Entry;
use crate::sql::{Db, Hit, HitValue};
use crate::state::State;

/// How many times a read re-reads a row whose value file vanished because a writer replaced
/// the entry meanwhile (each time a different file), before it reads the entry as a miss.
const MISSING_FILE_RETRIES: usize = 100;

impl<D: DiskFormat> Cache<D> {
    /// Looks up the live row of `key` and decodes it with `decode`; records statistics and
    /// access for LRU/LFU in a write transaction when those are on.
    ///
    /// An inline value is decoded straight from the row, without copying the column; a value
    /// file is read after the statement finished, so no read transaction stays open during
    /// file I/O. Without `meta`, the entry's expiry time and tag are not read (`None`).
    pub(crate) fn lookup<T>(
        &self,
        key: impl Serialize,
        meta: bool,
        decode: impl Fn(&State<D>, StoredRef<'_>) -> std::result::Result<T, dcache_disk::Error>,
    ) -> Result<Option<Entry<T>>> {
        let state = self.state();
        let key = state.disk.put(&key)?;
        let settings = &state.settings;
        let records = settings.statistics || settings.eviction_policy.updates_on_get();
        let fast = !records || self.is_read_only();
        let lookup = Lookup {
            cache: self,
            state: &state,
            key: &key,
            now: self.now(),
            // Recording reads needs the rowid: the full row.
            entry: meta || !fast,
            decode,
        };
        if fast {
            lookup.unlocked()
        } else {
            lookup.recorded()
        }
    }
}

/// One lookup: the key, the time it reads at, and how it decodes the value.
struct Lookup<'a, D: DiskFormat, F> {
    cache: &'a Cache<D>,
    state: &'a State<D>,
    key: &'a DbKey,
    now: f64,
    /// Whether the row's rowid, expiry time and tag are read.
    entry: bool,
    decode: F,
}

impl<D, F, T> Lookup<'_, D, F>
where
    D: DiskFormat,
    F: Fn(&State<D>, StoredRef<'_>) -> std::result::Result<T, dcache_disk::Error>,
{
    /// The live row, its inline value decoded.
    fn select(&self, db: Db<'_>) -> Result<Option<Hit<T>>> {
        db.live_hit(self.key, self.now, self.entry, |stored| {
            (self.decode)(self.state, stored)
        })
    }

    /// The entry of a hit, its value file read and decoded; a value file that has gone
    /// missing is an error here, which the callers turn into a miss.
    fn entry(&self, hit: Hit<T>) -> Result<Entry<T>> {
        let value = match hit.value {
            HitValue::Decoded(v) => v,
            HitValue::File {
                mode,
                filename,
                size,
                value,
            } => (self.decode)(
                self.state,
                StoredRef {
                    size,
                    mode,
                    filename: Some(&filename),
                    value: value.as_ref(),
                },
            ),
        };
        Ok(Entry {
            value: value?,
            expire_time: hit.expire_time.and_then(from_unix),
            tag: hit.tag,
        })
    }

    /// The fast path: the row read without a transaction, then its value file.
    ///
    /// A writer may replace the entry and unlink its old value file before the file is read:
    /// then the row is read again. The same file still referenced and still missing is a
    /// damaged entry (a miss).
    fn unlocked(&self) -> Result<Option<Entry<T>>> {
        let mut missing: Option<(String, Error)> = None;
        for _ in 0..MISSING_FILE_RETRIES {
            let Some(hit) = self.cache.read_with(|db| self.select(db))? else {
                return Ok(None);
            };
            let file = match &hit.value {
                HitValue::File { filename, .. } => Some(filename.clone()),
                HitValue::Decoded(_) => None,
            };
            if let (Some(file), Some((gone, _))) = (&file, &missing)
                && file == gone
            {
                break;
            }
            match self.entry(hit) {
                Ok(entry) => return Ok(Some(entry)),
                Err(e) if is_missing_file(&e) => missing = file.map(|f| (f, e)),
                Err(e) => return Err(e),
            }
            if missing.is_none() {
                break;
            }
        }
        if let Some((_, e)) = missing {
            log::warn!("dcache: reading a damaged entry as a miss: {e}");
        }
        Ok(None)
    }

    /// The slow path, for reads that record statistics or access: the row is read and the
    /// read recorded in a write transaction, the value file read after the commit.
    fn recorded(&self) -> Result<Option<Entry<T>>> {
        let Some(hit) = self.cache.write(|tx| self.record(tx))? else {
            return Ok(None);
        };
        match self.entry(hit) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) if is_missing_file(&e) => {
                log::warn!("dcache: reading a damaged entry as a miss: {e}");
                // Replaced or deleted by a writer since the commit: read the row again.
                self.unlocked()
            }
            Err(e) => Err(e),
        }
    }

    /// Inside the write transaction: reads the row and records a hit or a miss, and the
    /// access for LRU/LFU.
    ///
    /// Recording the read needs the write lock; reading a value file does not, so the file is
    /// only opened here (to count a hit or a miss as python does: a missing file is a miss)
    /// and read after the commit. Opening never blocks (a FIFO in its place is refused by the
    /// file store), so a slow or hostile file cannot stall other writers.
    fn record(&self, tx: &Tx<'_>) -> Result<Option<Hit<T>>> {
        let settings = &self.state.settings;
        let db = tx.db();
        let Some(hit) = self.select(db)? else {
            if settings.statistics {
                db.add_to_counter("misses", 1)?;
            }
            return Ok(None);
        };
        let present = match &hit.value {
            HitValue::File { filename, size, .. } => {
                match self.cache.files().open(filename, *size) {
                    Ok(_) => true,
                    Err(e) => {
                        let e = Error::from(e);
                        if !is_missing_file(&e) {
                            return Err(e);
                        }
                        log::warn!("dcache: reading a damaged entry as a miss: {e}");
                        false
                    }
                }
            }
            HitValue::Decoded(_) => true,
        };
        if settings.statistics {
            db.add_to_counter(if present { "hits" } else { "misses" }, 1)?;
        }
        if !present {
            return Ok(None);
        }
        db.record_access(settings.eviction_policy, hit.rowid, self.now)?;
        Ok(Some(hit))
    }
}
