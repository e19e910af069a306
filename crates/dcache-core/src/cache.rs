//! [`Cache`]: python-diskcache's `Cache` on SQLite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dcache_disk::{DbKey, Disk, DiskFormat, FileStore, Mode, SqlRef, SqlValue, Stored, StoredRef};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock};
use crate::conn::{Pool, Pragmas, WriterLock};
use crate::error::{Error, Result};
use crate::open;
use crate::options::{Entry, SetOptions, ValueReader};
use crate::reserve::{DEFAULT_DISK_RESERVE, Reserve};
use crate::settings::{self, EvictionPolicy, Settings};
use crate::sql::{Columns, describe_stored};
use crate::state::{State, next_state_generation};
use crate::tag::Tag;

/// python-diskcache's default `Cache` timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How hard a cache works to keep committed entries through crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// The cache's `sqlite_synchronous` setting (NORMAL by default): a committed entry survives
    /// any process crash; the last commits may be lost on power loss.
    #[default]
    Process,
    /// `PRAGMA synchronous = FULL` on this handle's connections, and value files and their
    /// directories fsynced before the row commits: committed entries survive power loss.
    Full,
}

pub(crate) struct Inner<D> {
    pub(crate) dir: PathBuf,
    pub(crate) files: FileStore,
    /// The current settings and disk, with the generation that names them.
    pub(crate) state: RwLock<(u64, Arc<State<D>>)>,
    /// The generation in `state`, readable without the lock (see [`Cache::state`]).
    pub(crate) state_generation: AtomicU64,
    pub(crate) pool: Pool,
    pub(crate) writer: Arc<WriterLock>,
    pub(crate) timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) page_size: i64,
    pub(crate) durability: Durability,
    /// Space given back when the disk is full (see [`crate::reserve`]).
    pub(crate) reserve: Reserve,
    temp: bool,
}

impl<D> Drop for Inner<D> {
    fn drop(&mut self) {
        if self.temp {
            if let Err(e) = self.pool.close_idle() {
                log::warn!(
                    "dcache: closing temporary cache {}: {e}",
                    self.dir.display()
                );
            }
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                log::warn!(
                    "dcache: removing temporary cache {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// A persistent cache in a directory, shared safely by threads and processes.
///
/// `Cache` is cheap to clone (an `Arc`) and `Send + Sync`. Every operation is atomic; a
/// [`transact`](Self::transact) groups several. Keys are any `Serialize` type (`"a"`, `42`,
/// `&bytes[..]`, `(1, "x")`) and values any `Serialize` type, read back as any
/// `DeserializeOwned` type; see [`dcache_disk::Disk`] for how they map to python types.
///
/// Processes share a cache by opening the same directory. A handle may also cross a `fork()`
/// (a pre-fork server opening the cache before it starts its workers): the child closes the
/// connections it inherited and opens its own on first use. Fork while no other thread is
/// inside a call on the cache; a connection in use at that moment cannot be closed in the child.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dcache_core::{Cache, SetOptions};
///
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::open(dir.path())?;
/// cache.set("greeting", "hello")?;
/// assert_eq!(cache.get::<String>("greeting")?.as_deref(), Some("hello"));
///
/// cache.set_with("session", 42, SetOptions::new().expire(Duration::from_secs(60)).tag("web"))?;
/// assert_eq!(cache.incr("hits", 1)?, 1);
/// assert!(cache.delete("greeting")?);
/// assert_eq!(cache.len()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cache<D: DiskFormat = Disk> {
    pub(crate) inner: Arc<Inner<D>>,
    pub(crate) retry: bool,
}

impl<D: DiskFormat> Clone for Cache<D> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
            retry: self.retry,
        }
    }
}

impl<D: DiskFormat> std::fmt::Debug for Cache<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("directory", &self.inner.dir)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Configures and opens a [`Cache`].
///
/// Settings given here are persisted and win over stored ones (python's precedence: defaults
/// < stored < explicit); settings not given keep their stored value. The others (`timeout`,
/// `clock`, `read_only`, `durability`) belong to the handle.
///
/// # Examples
///
/// ```
/// use dcache_core::{Cache, EvictionPolicy};
///
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::builder()
///     .size_limit(64 << 20)
///     .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
///     .statistics(true)
///     .open(dir.path())?;
/// assert_eq!(cache.settings().size_limit, 64 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct CacheBuilder<D: DiskFormat = Disk> {
    explicit: BTreeMap<String, SqlValue>,
    disk: D,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    read_only: bool,
    durability: Durability,
    disk_reserve: u64,
}

impl Default for CacheBuilder<Disk> {
    fn default() -> Self {
        CacheBuilder {
            explicit: BTreeMap::new(),
            disk: Disk::default(),
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            read_only: false,
            durability: Durability::default(),
            disk_reserve: DEFAULT_DISK_RESERVE,
        }
    }
}

impl<D: DiskFormat> CacheBuilder<D> {
    fn put(mut self, name: &str, value: impl Into<SqlValue>) -> Self {
        self.explicit.insert(name.to_owned(), value.into());
        self
    }

    /// Count hits and misses (default false). Turns every read into a small write.
    pub fn statistics(self, enable: bool) -> Self {
        self.put("statistics", i64::from(enable))
    }

    /// Index tags so `evict(tag)` does not scan (default false).
    pub fn tag_index(self, enable: bool) -> Self {
        self.put("tag_index", i64::from(enable))
    }

    /// The eviction policy (default [`EvictionPolicy::LeastRecentlyStored`]).
    pub fn eviction_policy(self, policy: EvictionPolicy) -> Self {
        self.put("eviction_policy", policy.as_str())
    }

    /// The size the cache culls down to, in bytes of database pages and value files
    /// (default 1 GiB).
    pub fn size_limit(self, bytes: u64) -> Self {
        self.put("size_limit", i64::try_from(bytes).unwrap_or(i64::MAX))
    }

    /// The most entries one write culls (default 10; 0 turns culling on writes off).
    pub fn cull_limit(self, entries: u64) -> Self {
        self.put("cull_limit", i64::try_from(entries).unwrap_or(i64::MAX))
    }

    /// `PRAGMA auto_vacuum` for a new database (default 1 = FULL).
    pub fn sqlite_auto_vacuum(self, mode: i64) -> Self {
        self.put("sqlite_auto_vacuum", mode)
    }

    /// `PRAGMA cache_size`, in pages (default 8192).
    pub fn sqlite_cache_size(self, pages: i64) -> Self {
        self.put("sqlite_cache_size", pages)
    }

    /// `PRAGMA journal_mode` (default `wal`; readers never wait for writers only in WAL).
    pub fn sqlite_journal_mode(self, mode: &str) -> Self {
        self.put("sqlite_journal_mode", mode)
    }

    /// `PRAGMA mmap_size` in bytes (default 64 MiB).
    pub fn sqlite_mmap_size(self, bytes: i64) -> Self {
        self.put("sqlite_mmap_size", bytes)
    }

    /// `PRAGMA synchronous` (default 1 = NORMAL).
    pub fn sqlite_synchronous(self, level: i64) -> Self {
        self.put("sqlite_synchronous", level)
    }

    /// Values at least this large (bytes; characters for text) go to value files
    /// (default 32768).
    pub fn disk_min_file_size(self, bytes: u64) -> Self {
        self.put(
            "disk_min_file_size",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        )
    }

    /// The pickle protocol written for structured values (default 5).
    pub fn disk_pickle_protocol(self, protocol: u8) -> Self {
        self.put("disk_pickle_protocol", i64::from(protocol))
    }

    /// Any setting by name, as python's `Cache(**settings)` takes them (unknown names are
    /// stored too). Validated when the cache opens.
    pub fn setting(self, name: &str, value: impl Into<SqlValue>) -> Self {
        self.put(name, value)
    }

    /// How long a write waits for the write lock before [`Error::Timeout`] (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock for store, access and expiry times (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Open without ever writing (default false): writes return [`Error::ReadOnly`], settings
    /// are not persisted, reads that would record statistics or access times do not.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Crash durability of this handle's writes (default [`Durability::Process`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Bytes kept in the file `cache.db-reserve` and given back when the disk is full, so that
    /// delete, pop, clear, expire, evict, cull and reset can still run (default
    /// [`DEFAULT_DISK_RESERVE`], 1 MiB; 0 keeps none). Without it, SQLite has no room to record
    /// a delete on a full disk and only removing files by hand frees it. See
    /// [docs/reliability.md](https://github.com/dcache-rs/dcache/blob/main/docs/reliability.md).
    pub fn disk_reserve(mut self, bytes: u64) -> Self {
        self.disk_reserve = bytes;
        self
    }

    /// Whether the builder opens read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The value this builder writes for the setting `name` when it opens, if one was given
    /// (by its setter or [`setting`](Self::setting)); `None` keeps the stored (or default)
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// use dcache_core::{Cache, SqlValue};
    ///
    /// let builder = Cache::builder().size_limit(1 << 20);
    /// assert_eq!(builder.setting_value("size_limit"), Some(&SqlValue::Integer(1 << 20)));
    /// assert_eq!(builder.unset("size_limit").setting_value("size_limit"), None);
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    #[must_use]
    pub fn setting_value(&self, name: &str) -> Option<&SqlValue> {
        self.explicit.get(name)
    }

    /// Forgets the setting `name` given earlier: the cache keeps its stored (or default)
    /// value.
    pub fn unset(mut self, name: &str) -> Self {
        self.explicit.remove(name);
        self
    }

    /// Uses another disk (serialization format); settings given so far are kept.
    pub fn disk<D2: DiskFormat>(self, disk: D2) -> CacheBuilder<D2> {
        CacheBuilder {
            explicit: self.explicit,
            disk,
            timeout: self.timeout,
            clock: self.clock,
            read_only: self.read_only,
            durability: self.durability,
            disk_reserve: self.disk_reserve,
        }
    }

    /// Opens the cache in `dir`, creating the directory and database if needed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be created; [`Error::NotADatabase`],
    /// [`Error::ForeignDatabase`] or [`Error::IncompatibleSchema`] for a `cache.db` that is not
    /// a cache; [`Error::InvalidSetting`] or [`Error::UnknownEvictionPolicy`] for a bad setting
    /// (given or stored); [`Error::Timeout`] if other processes keep the database locked.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Cache<D>> {
        self.open_dir(dir.as_ref().to_path_buf(), false)
    }

    /// Opens a cache in a new temporary directory, removed when the last handle drops.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`Error::Io`] if no temporary directory can be made.
    pub fn open_temp(self) -> Result<Cache<D>> {
        let dir = temp_directory("dcache")?;
        self.open_dir(dir, true)
    }

    fn open_dir(self, dir: PathBuf, temp: bool) -> Result<Cache<D>> {
        let dir = if temp {
            dir
        } else {
            std::path::absolute(&dir).map_err(|e| Error::io(&dir, e))?
        };
        let db_key = std::fs::canonicalize(&dir)
            .unwrap_or_else(|_| dir.clone())
            .join("cache.db");
        let writer = WriterLock::for_database(&db_key);
        // Opening races (processes creating one directory, switching it to WAL) are retried
        // for at least python's 60 s, whatever the handle's timeout (FanoutCache shards: 10 ms).
        let open_timeout = self.timeout.max(DEFAULT_TIMEOUT);
        let opened = open::open_database(
            &dir,
            &self.explicit,
            self.disk,
            self.read_only,
            &writer,
            open_timeout,
        );
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                if temp {
                    // Nothing of value is in a directory we just made.
                    if let Err(rm) = std::fs::remove_dir_all(&dir) {
                        log::warn!("dcache: removing {}: {rm}", dir.display());
                    }
                }
                return Err(e);
            }
        };
        let pragmas = pragmas_of(&opened.settings, self.durability == Durability::Full);
        let pool = Pool::new(dir.join("cache.db"), opened.access, pragmas);
        let generation = next_state_generation();
        let files = FileStore::new(&dir).with_sync(self.durability == Durability::Full);
        let reserve = Reserve::new(&dir, if self.read_only { 0 } else { self.disk_reserve });
        reserve.ensure();
        // The connection used to open is not reused: it has no pragmas applied yet, and
        // opening is rare.
        drop(opened.first);
        Ok(Cache {
            inner: Arc::new(Inner {
                dir,
                files,
                state: RwLock::new((
                    generation,
                    Arc::new(State {
                        settings: opened.settings,
                        disk: opened.disk,
                    }),
                )),
                state_generation: AtomicU64::new(generation),
                pool,
                writer,
                timeout: self.timeout,
                clock: self.clock,
                page_size: opened.page_size,
                durability: self.durability,
                reserve,
                temp,
            }),
            retry: false,
        })
    }
}

/// The per-connection pragmas a cache's settings call for.
pub(crate) fn pragmas_of(settings: &Settings, full_durability: bool) -> Pragmas {
    Pragmas {
        cache_size: settings.sqlite_cache_size,
        mmap_size: settings.sqlite_mmap_size,
        synchronous: if full_durability {
            settings.sqlite_synchronous.max(2)
        } else {
            settings.sqlite_synchronous
        },
    }
}

/// Creates a new, empty, private directory named `<prefix>-<random>` in the system's temporary
/// directory (what [`Cache::temp`] and `FanoutCache::temp` open), as python's
/// `tempfile.mkdtemp` does: mode `0700` on Unix whatever the umask, and a random name created
/// with `O_EXCL` semantics, so another user can neither read it nor plant it in advance.
///
/// # Errors
///
/// [`Error::Io`] when the temporary directory cannot be written.
///
/// # Examples
///
/// ```
/// let dir = dcache_core::temp_directory("example")?;
/// assert!(dir.is_dir() && std::fs::read_dir(&dir)?.next().is_none());
/// std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn temp_directory(prefix: &str) -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let prefix = format!("{prefix}-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).rand_bytes(12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    builder
        .tempdir_in(&base)
        .map(tempfile::TempDir::keep)
        .map_err(|e| Error::io(&base, e))
}

/// Whether a disk error means the value's file is gone or damaged: python reads that as a
/// miss, and so does dcache (with a warning in the log).
pub(crate) fn is_missing_file(e: &Error) -> bool {
    matches!(
        e,
        Error::Disk(
            dcache_disk::Error::MissingFile { .. } | dcache_disk::Error::SizeMismatch { .. }
        )
    )
}

impl Cache<Disk> {
    /// Opens (creating if needed) the cache in `dir` with the stored settings, python's
    /// defaults for the rest, and the default [`Disk`].
    ///
    /// # Errors
    ///
    /// As [`CacheBuilder::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        CacheBuilder::default().open(dir)
    }

    /// Opens a cache in a new temporary directory, removed when the last handle drops.
    ///
    /// # Errors
    ///
    /// As [`CacheBuilder::open_temp`].
    pub fn temp() -> Result<Self> {
        CacheBuilder::default().open_temp()
    }

    /// A builder to set settings, timeout, clock, disk or durability before opening.
    pub fn builder() -> CacheBuilder<Disk> {
        CacheBuilder::default()
    }
}

impl<D: DiskFormat> Cache<D> {
    /// The cache directory.
    #[must_use]
    pub fn directory(&self) -> &Path {
        &self.inner.dir
    }

    /// The handle's timeout for the write lock.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// A handle on the same cache whose operations wait for the write lock as long as it
    /// takes instead of failing with [`Error::Timeout`] (python's `retry=True`).
    #[must_use]
    pub fn retrying(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
            retry: true,
        }
    }

    /// Whether this handle retries instead of timing out.
    #[must_use]
    pub fn is_retrying(&self) -> bool {
        self.retry
    }

    /// Whether writes are refused (opened read-only, or the directory is not writable).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.inner.pool.read_only()
    }

    /// The settings in effect (python caches them per handle too: another process's `reset`
    /// shows after [`reload_settings`](Self::reload_settings)).
    #[must_use]
    pub fn settings(&self) -> Settings {
        self.state().settings.clone()
    }

    /// The disk in effect, with its current settings.
    #[must_use]
    pub fn disk(&self) -> D {
        self.state().disk.clone()
    }

    /// The 32-bit hash of `key` as this cache's disk encodes it, with the settings in effect
    /// (python's `Disk.hash`): a FanoutCache picks a shard by it.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`] when the key cannot be encoded (a NaN key).
    pub fn key_hash(&self, key: impl Serialize) -> Result<u32> {
        let state = self.state();
        Ok(state.disk.hash(&state.disk.put(&key)?))
    }

    /// The value files of this cache.
    #[must_use]
    pub fn files(&self) -> &FileStore {
        &self.inner.files
    }

    /// The clock this handle uses.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    // ----- writes -----

    /// Stores `value` under `key`, replacing any entry (python's `set`).
    ///
    /// Overwriting keeps the entry's position in insertion order (its rowid) and removes a
    /// replaced value file after the commit.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`] if the key or value cannot be encoded (a NaN key) or its value file
    /// cannot be written (a full disk: [`dcache_disk::Error::Io`]), [`Error::WriteFailed`] when
    /// the database cannot grow (a full disk), [`Error::Timeout`], [`Error::ReadOnly`],
    /// [`Error::Io`] or [`Error::Sqlite`].
    pub fn set(&self, key: impl Serialize, value: impl Serialize) -> Result<()> {
        self.set_with(key, value, SetOptions::default())
    }

    /// [`set`](Self::set) with an expiry and a tag.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set), and [`Error::NanTag`].
    pub fn set_with(
        &self,
        key: impl Serialize,
        value: impl Serialize,
        opts: SetOptions,
    ) -> Result<()> {
        let state = self.state();
        let db_key = state.disk.put(&key)?;
        let stored = state.disk.store(&value, &self.inner.files)?;
        self.write_entry(&state, &db_key, stored, opts, false)
            .map(drop)
    }

    /// Stores the bytes read from `reader` in a value file, without holding them in memory
    /// (python's `set(key, file, read=True)`). Python reads it back as `bytes`.
    ///
    /// # Errors
    ///
    /// As [`set_with`](Self::set_with); [`Error::Disk`] wraps a read error of `reader`.
    pub fn set_reader(
        &self,
        key: impl Serialize,
        reader: &mut dyn std::io::Read,
        opts: SetOptions,
    ) -> Result<()> {
        let state = self.state();
        let db_key = state.disk.put(&key)?;
        let (filename, size) = self.inner.files.write_from(reader)?;
        let stored = Stored {
            size,
            mode: Mode::BINARY,
            filename: Some(filename),
            value: SqlValue::Null,
        };
        self.write_entry(&state, &db_key, stored, opts, false)
            .map(drop)
    }

    /// Stores `value` only if `key` has no live entry; returns whether it did (python's `add`).
    /// An expired entry is replaced.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn add(&self, key: impl Serialize, value: impl Serialize) -> Result<bool> {
        self.add_with(key, value, SetOptions::default())
    }

    /// [`add`](Self::add) with an expiry and a tag.
    ///
    /// # Errors
    ///
    /// As [`set_with`](Self::set_with).
    pub fn add_with(
        &self,
        key: impl Serialize,
        value: impl Serialize,
        opts: SetOptions,
    ) -> Result<bool> {
        let state = self.state();
        let db_key = state.disk.put(&key)?;
        let stored = state.disk.store(&value, &self.inner.files)?;
        self.write_entry(&state, &db_key, stored, opts, true)
    }

    /// Writes a row for an encoded key and value (set or add). The value file, if any, is
    /// already written; it is removed if the row is not written.
    pub(crate) fn write_entry(
        &self,
        state: &State<D>,
        key: &DbKey,
        stored: Stored,
        opts: SetOptions,
        add: bool,
    ) -> Result<bool> {
        let files = &self.inner.files;
        let Stored {
            size,
            mode,
            filename: new_file,
            value,
        } = stored;
        let SetOptions { expire, tag } = opts;
        let result = check_tag(tag.as_ref()).and_then(|()| {
            self.write(|tx| {
                if let Some(name) = &new_file {
                    tx.remove_on_rollback(files, name.clone());
                }
                let now = self.now();
                let columns = Columns {
                    expire_time: expire.map(|d| crate::clock::expire_at(now, d)),
                    tag: tag.as_ref().map_or(SqlRef::Null, Tag::as_sql),
                    stored: StoredRef {
                        size,
                        mode,
                        filename: new_file.as_deref(),
                        value: value.as_ref(),
                    },
                };
                let db = tx.db();
                match db.key_row(key)? {
                    Some(row) if add && row.expire_time.is_none_or(|e| e > now) => {
                        // The losing add's file is referenced by nothing: remove it now.
                        if let Some(name) = &new_file {
                            files.remove(name)?;
                        }
                        return Ok(false);
                    }
                    Some(row) => {
                        if let Some(old) = row.filename {
                            tx.remove_after_commit(files, old);
                        }
                        db.update_row(row.rowid, now, &columns)?;
                    }
                    None => db.insert_row(key, now, &columns)?,
                }
                self.cull_in_tx(tx, state, now, state.settings.cull_limit)?;
                Ok(true)
            })
        });
        if result.is_err()
            && let Some(name) = &new_file
        {
            // The row was not written (or was rolled back): the file is referenced by nothing.
            if let Err(e) = files.remove(name) {
                log::warn!("dcache: could not remove unused value file {name}: {e}");
            }
        }
        result
    }

    /// Removes the live entry for `key`; returns whether there was one (python's `delete`).
    ///
    /// # Errors
    ///
    /// [`Error::Disk`] for a key that cannot be encoded, [`Error::Timeout`],
    /// [`Error::ReadOnly`] or [`Error::Sqlite`].
    pub fn delete(&self, key: impl Serialize) -> Result<bool> {
        let state = self.state();
        let key = state.disk.put(&key)?;
        self.write_freeing(|tx| {
            let Some(row) = tx.db().live_rowid(&key, self.now())? else {
                return Ok(false);
            };
            self.delete_rowid(tx, row.rowid, row.filename)?;
            Ok(true)
        })
    }

    /// Sets a live entry's expiry (`None`: never); returns whether `key` had a live entry
    /// (python's `touch`).
    ///
    /// # Errors
    ///
    /// As [`delete`](Self::delete).
    pub fn touch(&self, key: impl Serialize, expire: Option<Duration>) -> Result<bool> {
        let state = self.state();
        let key = state.disk.put(&key)?;
        self.write(|tx| {
            let now = self.now();
            let expire_time = expire.map(|d| crate::clock::expire_at(now, d));
            tx.db().touch(&key, now, expire_time)
        })
    }

    /// Adds `delta` to the integer under `key` atomically and returns the new value; a
    /// missing or expired key starts from 0 (python's `incr`).
    ///
    /// # Errors
    ///
    /// [`Error::NotAnInteger`] if the stored value is not an integer, [`Error::Overflow`] past
    /// `i64`, and the errors of [`set`](Self::set).
    pub fn incr(&self, key: impl Serialize, delta: i64) -> Result<i64> {
        self.incr_or(key, delta, Some(0))
    }

    /// Subtracts `delta` (python's `decr`); see [`incr`](Self::incr).
    ///
    /// # Errors
    ///
    /// As [`incr`](Self::incr).
    pub fn decr(&self, key: impl Serialize, delta: i64) -> Result<i64> {
        self.decr_or(key, delta, Some(0))
    }

    /// [`decr`](Self::decr) with the starting value of a missing key (python's
    /// `decr(key, delta, default)`); `None` makes a missing or expired key an error
    /// ([`Error::KeyNotFound`]), as python's `default=None`.
    ///
    /// # Errors
    ///
    /// As [`incr_or`](Self::incr_or); [`Error::Overflow`] for `delta == i64::MIN`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// assert_eq!(cache.decr_or("stock", 1, Some(10))?, 9);
    /// assert_eq!(cache.decr_or("stock", 2, Some(10))?, 7);
    /// assert!(cache.decr_or("other", 1, None).is_err());
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn decr_or(&self, key: impl Serialize, delta: i64, default: Option<i64>) -> Result<i64> {
        self.incr_or(key, delta.checked_neg().ok_or(Error::Overflow)?, default)
    }

    /// [`incr`](Self::incr) with the starting value of a missing key; `None` makes a missing
    /// or expired key an error ([`Error::KeyNotFound`]), as python's `default=None`.
    ///
    /// # Errors
    ///
    /// As [`incr`](Self::incr), and [`Error::KeyNotFound`].
    pub fn incr_or(&self, key: impl Serialize, delta: i64, default: Option<i64>) -> Result<i64> {
        self.incr_with(key, delta, default, SetOptions::default())
    }

    /// [`incr_or`](Self::incr_or) with the expiry and tag of an entry it creates (a missing or
    /// expired key). An existing entry keeps its expiry and tag, as in python.
    ///
    /// # Errors
    ///
    /// As [`incr_or`](Self::incr_or), and [`Error::NanTag`].
    pub fn incr_with(
        &self,
        key: impl Serialize,
        delta: i64,
        default: Option<i64>,
        opts: SetOptions,
    ) -> Result<i64> {
        let SetOptions { expire, tag } = opts;
        check_tag(tag.as_ref())?;
        let state = self.state();
        let key = state.disk.put(&key)?;
        self.write(|tx| {
            let now = self.now();
            let db = tx.db();
            let fresh_columns = |value: i64| Columns {
                expire_time: expire.map(|d| crate::clock::expire_at(now, d)),
                tag: tag.as_ref().map_or(SqlRef::Null, Tag::as_sql),
                stored: StoredRef {
                    size: 0,
                    mode: Mode::RAW,
                    filename: None,
                    value: SqlRef::Integer(value),
                },
            };
            let fresh = |default: Option<i64>| -> Result<i64> {
                default
                    .ok_or(Error::KeyNotFound)?
                    .checked_add(delta)
                    .ok_or(Error::Overflow)
            };
            match db.counter_row(&key)? {
                None => {
                    let value = fresh(default)?;
                    db.insert_row(&key, now, &fresh_columns(value))?;
                    self.cull_in_tx(tx, &state, now, state.settings.cull_limit)?;
                    Ok(value)
                }
                Some(row) if row.expire_time.is_some_and(|e| e < now) => {
                    let value = fresh(default)?;
                    db.update_row(row.rowid, now, &fresh_columns(value))?;
                    self.cull_in_tx(tx, &state, now, state.settings.cull_limit)?;
                    if let Some(name) = row.filename {
                        tx.remove_after_commit(&self.inner.files, name);
                    }
                    Ok(value)
                }
                Some(row) => {
                    let current = match (row.mode, &row.value) {
                        (1, SqlValue::Integer(i)) => *i,
                        _ => {
                            return Err(Error::NotAnInteger {
                                found: describe_stored(row.mode, row.value.as_ref()),
                            });
                        }
                    };
                    let value = current.checked_add(delta).ok_or(Error::Overflow)?;
                    db.store_counter(state.settings.eviction_policy, row.rowid, now, value)?;
                    Ok(value)
                }
            }
        })
    }

    // ----- reads -----

    /// The value of the live entry for `key`, read as `V`, or `None` (python's `get`).
    ///
    /// A value file that has gone missing or was truncated reads as a miss (logged as a
    /// warning), as in python.
    ///
    /// # Bytes
    ///
    /// `get::<Vec<u8>>`, `Box<[u8]>`, `bytes::Bytes` and `serde_bytes::ByteBuf` take the
    /// bytes read from the value file whole, as fast as reading the file
    /// ([docs/benchmarks.md](https://github.com/dcache-rs/dcache/blob/main/docs/benchmarks.md), `get_large`); [`read`](Self::read) streams them.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`] when the stored value cannot be read as `V`
    /// ([`dcache_disk::Error::WrongType`]) or is corrupt; [`Error::Sqlite`]; with statistics
    /// or an LRU/LFU policy (reads then write), [`Error::Timeout`].
    pub fn get<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<V>> {
        Ok(self
            .lookup(key, false, |state, stored| {
                state.disk.fetch::<V>(stored, &self.inner.files)
            })?
            .map(|e| e.value))
    }

    /// The value with its expiry time and tag (python's `get(expire_time=True, tag=True)`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn get_entry<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<Entry<V>>> {
        self.lookup(key, true, |state, stored| {
            state.disk.fetch::<V>(stored, &self.inner.files)
        })
    }

    /// The bytes of a bytes value (inline or in a file), without serde: as fast as
    /// `get::<Vec<u8>>` (a plain file read for a 1 MiB value, [docs/benchmarks.md](https://github.com/dcache-rs/dcache/blob/main/docs/benchmarks.md):
    /// `get_large_bytes`), and an error rather than a conversion for a value that is not
    /// bytes (a pickled python list of small integers reads as a `Vec<u8>`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); [`dcache_disk::Error::WrongType`] for a value that is not bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// let image = vec![7u8; 1 << 20];
    /// cache.set("image", image.as_slice())?; // a 1 MiB value file; python reads `bytes`
    /// assert_eq!(cache.get_bytes("image")?, Some(image));
    /// assert!(cache.get_bytes("text").is_ok_and(|v| v.is_none()));
    /// cache.set("text", "not bytes")?;
    /// assert!(cache.get_bytes("text").is_err());
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn get_bytes(&self, key: impl Serialize) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lookup(key, false, |_, stored| {
                match (stored.mode, stored.filename, stored.value) {
                    (Mode::RAW, None, SqlRef::Blob(b)) => Ok(b.to_vec()),
                    (Mode::BINARY, Some(name), _) => {
                        Ok(self.inner.files.read(name, stored.size)?)
                    }
                    _ => Err(dcache_disk::Error::WrongType {
                        expected: "bytes".into(),
                        found: describe_stored(i64::from(stored.mode.0), stored.value),
                    }),
                }
            })?
            .map(|e| e.value))
    }

    /// Opens the value of `key` for streaming (python's `read`): a value file is read from
    /// disk as you go; an inline bytes or text value comes from memory.
    /// [`ValueReader::path`] gives a value file's path (python's `reader.name`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); [`dcache_disk::Error::WrongType`] for a structured (pickled)
    /// value, which has no byte form to stream.
    pub fn read(&self, key: impl Serialize) -> Result<Option<ValueReader>> {
        Ok(self
            .lookup(key, false, |_, stored| {
                match (stored.mode, stored.filename, stored.value) {
                    (Mode::BINARY | Mode::TEXT, Some(name), _) => Ok(ValueReader::File {
                        file: self.inner.files.open(name, stored.size)?,
                        path: self.inner.files.resolve(name)?,
                    }),
                    (Mode::RAW, None, SqlRef::Blob(b)) => {
                        Ok(ValueReader::Inline(std::io::Cursor::new(b.to_vec())))
                    }
                    (Mode::RAW, None, SqlRef::Text(s)) => Ok(ValueReader::Inline(
                        std::io::Cursor::new(s.as_bytes().to_vec()),
                    )),
                    _ => Err(dcache_disk::Error::WrongType {
                        expected: "bytes or text to stream".into(),
                        found: describe_stored(i64::from(stored.mode.0), stored.value),
                    }),
                }
            })?
            .map(|e| e.value))
    }

    /// Whether `key` has a live entry (python's `key in cache`). Never writes.
    ///
    /// # Errors
    ///
    /// [`Error::Disk`] for a key that cannot be encoded, [`Error::Sqlite`].
    pub fn contains(&self, key: impl Serialize) -> Result<bool> {
        let key = self.state().disk.put(&key)?;
        let now = self.now();
        self.read_with(|db| Ok(db.live_rowid(&key, now)?.is_some()))
    }

    /// The number of entries, expired ones included (python's `len`, from `Settings.count`).
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`].
    pub fn len(&self) -> Result<u64> {
        self.metadata("count")
            .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// Whether the cache has no entries at all.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`].
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads a counter row of `Settings` (`count`, `size`, `hits`, `misses`).
    pub(crate) fn metadata(&self, name: &str) -> Result<i64> {
        self.read_with(|db| db.counter(name))
    }

    /// Removes the live entry for `key` and returns its value (python's `pop`).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) and [`delete`](Self::delete). If the value cannot be decoded as
    /// `V`, the entry is kept.
    pub fn pop<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<V>> {
        Ok(self.pop_entry(key)?.map(|e| e.value))
    }

    /// [`pop`](Self::pop) with the entry's expiry time and tag.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop).
    pub fn pop_entry<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<Entry<V>>> {
        let state = self.state();
        let key = state.disk.put(&key)?;
        self.write_freeing(|tx| {
            let Some(found) = tx.db().live_row(&key, self.now())? else {
                return Ok(None);
            };
            let value = match state
                .disk
                .fetch::<V>(found.stored(), &self.inner.files)
                .map_err(Error::from)
            {
                Ok(v) => Some(v),
                Err(e) if is_missing_file(&e) => {
                    log::warn!("dcache: popping a damaged entry as a miss: {e}");
                    None
                }
                Err(e) => return Err(e),
            };
            self.delete_rowid(tx, found.rowid, found.filename.clone())?;
            Ok(value.map(|v| found.entry(v)))
        })
    }

    // ----- transactions, settings, lifecycle -----

    /// Runs `f` in one write transaction: every cache operation `f` makes on this thread (on
    /// this or any handle of the same cache) joins it, and it commits when `f` returns `Ok`
    /// and rolls back when `f` returns `Err` or panics. Other threads and processes see all of
    /// it or none of it; readers are never blocked.
    ///
    /// Keep `f` short: it holds the cache's write lock. Nested `transact` calls join the outer
    /// transaction; an operation that fails inside `f` is undone on its own (a savepoint), so
    /// `f` may handle the error and go on.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error::Timeout`] (converted into `E`) when the write lock cannot be
    /// taken, or a commit error.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = dcache_core::Cache::temp()?;
    /// cache.transact(|c| {
    ///     let total = c.incr("total", 5)?;
    ///     c.set("last", total)
    /// })?;
    /// assert_eq!(cache.get::<i64>("last")?, Some(5));
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn transact<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write(|_tx| f(self))
    }

    /// Changes a setting and persists it (python's `reset(key, value)`); returns the value
    /// stored. `sqlite_*` settings are applied as pragmas, `disk_*` ones to the disk.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] or [`Error::UnknownEvictionPolicy`] for a bad value, and the
    /// errors of a write.
    pub fn reset(&self, name: &str, value: impl Into<SqlValue>) -> Result<SqlValue> {
        let value = value.into();
        settings::validate(name, &value)?;
        let mut all = self.state().settings.all.clone();
        all.insert(name.to_owned(), value.clone());
        let new_settings = Settings::from_map(all)?;
        let mut disk = self.state().disk.clone();
        if let Some(disk_name) = name.strip_prefix("disk_") {
            disk.configure(disk_name, value.as_ref())?;
        }
        self.write_freeing(|tx| {
            let db = tx.db();
            db.put_setting(name, value.as_ref())?;
            if name == "eviction_policy"
                && let Some(ddl) = new_settings.eviction_policy.index_sql()
            {
                db.execute_batch(ddl)?;
            }
            Ok(())
        })?;
        if name == "sqlite_journal_mode" {
            self.inner.pool.forget_files();
            let op = self.op();
            self.read_with(|db| {
                open::set_journal_mode(db.conn, &op, &new_settings.sqlite_journal_mode)
            })?;
            // The switch deleted or created `-wal` and `-shm`.
            self.inner.pool.forget_files();
        }
        if name == "sqlite_auto_vacuum" {
            self.read_sql(|c| {
                c.pragma_update(None, "auto_vacuum", new_settings.sqlite_auto_vacuum)
            })?;
        }
        self.inner.pool.set_pragmas(pragmas_of(
            &new_settings,
            self.inner.durability == Durability::Full,
        ));
        self.replace_state(new_settings, disk);
        Ok(value)
    }

    /// Re-reads every setting from the database (python's `reset(key)` for all keys): picks up
    /// changes another process made.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a stored value dcache cannot use, [`Error::Sqlite`].
    pub fn reload_settings(&self) -> Result<Settings> {
        let op = self.op();
        let stored = self.read_with(|db| open::read_settings(db.conn, &op))?;
        let mut all = self.state().settings.all.clone();
        for (k, v) in stored {
            if !settings::METADATA.contains(&k.as_str()) {
                all.insert(k, v);
            }
        }
        let new_settings = Settings::from_map(all)?;
        let mut disk = self.state().disk.clone();
        for (name, value) in &new_settings.all {
            if let Some(disk_name) = name.strip_prefix("disk_") {
                disk.configure(disk_name, value.as_ref())?;
            }
        }
        self.inner.pool.set_pragmas(pragmas_of(
            &new_settings,
            self.inner.durability == Durability::Full,
        ));
        self.replace_state(new_settings.clone(), disk);
        Ok(new_settings)
    }

    /// Closes the idle connections of this cache (python's `close`). The cache stays usable:
    /// the next operation opens a connection again.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] if SQLite fails to close a connection.
    pub fn close(&self) -> Result<()> {
        self.inner.pool.close_idle()
    }
}

fn check_tag(tag: Option<&Tag>) -> Result<()> {
    match tag {
        Some(Tag::Real(f)) if f.is_nan() => Err(Error::NanTag),
        _ => Ok(()),
    }
}
