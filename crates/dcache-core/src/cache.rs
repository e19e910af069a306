//! [`Cache`]: python-diskcache's `Cache` on SQLite.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use dcache_disk::{DbKey, Disk, DiskFormat, FileStore, Mode, SqlRef, SqlValue, Stored, StoredRef};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock, from_unix, unix_seconds};
use crate::conn::{self, Pool, Pragmas, Tx, TxContext, WriterLock, map_err, retry_busy};
use crate::error::{Error, Result};
use crate::open;
use crate::options::{Entry, SetOptions, ValueReader};
use crate::reserve::{DEFAULT_DISK_RESERVE, Reserve};
use crate::schema;
use crate::settings::{self, EvictionPolicy, Settings};
use crate::sqlval::{Bind, column_err, opt_f64, sql_ref, sql_value};
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

/// The settings and disk a cache runs with; replaced whole by `reset`.
#[derive(Debug)]
pub(crate) struct State<D> {
    pub(crate) settings: Settings,
    pub(crate) disk: D,
}

/// A thread's handle on a [`State`]: cloning it touches only this thread's memory.
// The `Rc` is the point: cloning an `Arc` shared by all threads writes its reference count,
// a cache line every core then fights over; this thread's `Rc` around it is written by no one
// else.
#[allow(clippy::redundant_allocation)]
pub(crate) struct StateRef<D>(Rc<Arc<State<D>>>);

impl<D> std::ops::Deref for StateRef<D> {
    type Target = State<D>;

    fn deref(&self) -> &State<D> {
        &self.0
    }
}

/// Snapshots a thread keeps, at most (the oldest goes first).
const SNAPSHOTS_KEPT: usize = 64;

thread_local! {
    /// This thread's snapshots of cache states (`Arc<State<D>>` of any `D`), by generation.
    static SNAPSHOTS: RefCell<Vec<(u64, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// A generation no other state of any cache in this process has had.
fn next_state_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
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

/// The columns a write stores besides the key and the times.
pub(crate) struct Columns<'a> {
    pub(crate) expire_time: Option<f64>,
    pub(crate) tag: SqlRef<'a>,
    pub(crate) stored: StoredRef<'a>,
}

/// A row read for a lookup.
pub(crate) struct Found {
    pub(crate) rowid: i64,
    pub(crate) expire_time: Option<f64>,
    pub(crate) tag: Option<Tag>,
    pub(crate) mode: Mode,
    pub(crate) filename: Option<String>,
    pub(crate) value: SqlValue,
    pub(crate) size: u64,
}

impl Found {
    pub(crate) fn from_row(row: &Row<'_>) -> Result<Found> {
        let mode = Mode::from_column(row.get::<_, i64>(3).map_err(column_err)?)?;
        Ok(Found {
            rowid: row.get(0).map_err(column_err)?,
            expire_time: opt_f64(row.get_ref(1).map_err(column_err)?),
            tag: Tag::from_sql(sql_ref(row.get_ref(2).map_err(column_err)?)?),
            mode,
            filename: row.get(4).map_err(column_err)?,
            value: sql_value(row.get_ref(5).map_err(column_err)?)?,
            size: u64::try_from(
                row.get::<_, Option<i64>>(6)
                    .map_err(column_err)?
                    .unwrap_or(0),
            )
            .unwrap_or(0),
        })
    }

    pub(crate) fn stored(&self) -> StoredRef<'_> {
        StoredRef {
            size: self.size,
            mode: self.mode,
            filename: self.filename.as_deref(),
            value: self.value.as_ref(),
        }
    }

    pub(crate) fn entry<V>(self, value: V) -> Entry<V> {
        Entry {
            value,
            expire_time: self.expire_time.and_then(from_unix),
            tag: self.tag,
        }
    }
}

/// How many times a read re-reads a row whose value file vanished because a writer replaced
/// the entry meanwhile (each time a different file), before it reads the entry as a miss.
const MISSING_FILE_RETRIES: usize = 100;

/// A live row read by a lookup, its value decoded or its file still to read.
struct Hit<T> {
    rowid: i64,
    expire_time: Option<f64>,
    tag: Option<Tag>,
    value: Fetch<T>,
}

/// The value of a [`Hit`].
enum Fetch<T> {
    /// An inline value, decoded from the borrowed column.
    Decoded(std::result::Result<T, dcache_disk::Error>),
    /// A value file, read once the statement is done.
    File {
        mode: Mode,
        filename: String,
        size: u64,
        value: SqlValue,
    },
}

impl<T> Hit<T> {
    /// Reads a row of [`schema::SELECT_LIVE`] (`meta`) or [`schema::SELECT_LIVE_VALUE`],
    /// decoding an inline value in place.
    fn from_row(
        row: &Row<'_>,
        meta: bool,
        decode: impl FnOnce(StoredRef<'_>) -> std::result::Result<T, dcache_disk::Error>,
    ) -> Result<Hit<T>> {
        // Column of `mode`; `filename`, `value` and `size` follow.
        let at = if meta { 3 } else { 0 };
        let mode = Mode::from_column(row.get::<_, i64>(at).map_err(column_err)?)?;
        let size = u64::try_from(
            row.get::<_, Option<i64>>(at + 3)
                .map_err(column_err)?
                .unwrap_or(0),
        )
        .unwrap_or(0);
        let filename = match sql_ref(row.get_ref(at + 1).map_err(column_err)?)? {
            SqlRef::Null => None,
            SqlRef::Text(name) => Some(name),
            other => return Err(column_err(format!("filename is {}", other.storage_class()))),
        };
        let value = sql_ref(row.get_ref(at + 2).map_err(column_err)?)?;
        let value = match filename {
            None => Fetch::Decoded(decode(StoredRef {
                size,
                mode,
                filename: None,
                value,
            })),
            Some(name) => Fetch::File {
                mode,
                filename: name.to_owned(),
                size,
                value: value.to_owned(),
            },
        };
        if !meta {
            return Ok(Hit {
                rowid: 0,
                expire_time: None,
                tag: None,
                value,
            });
        }
        Ok(Hit {
            rowid: row.get(0).map_err(column_err)?,
            expire_time: opt_f64(row.get_ref(1).map_err(column_err)?),
            tag: Tag::from_sql(sql_ref(row.get_ref(2).map_err(column_err)?)?),
            value,
        })
    }
}

/// Whether a disk error means the value's file is gone or damaged: python reads that as a
/// miss, and so does dcache (with a warning in the log).
fn is_missing_file(e: &Error) -> bool {
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

    /// This thread's snapshot of the settings and disk in effect.
    ///
    /// Every operation starts here, so it must not write memory other threads use: a thread
    /// keeps the snapshots it has seen, each under its generation (unique in the process), and
    /// checks the current generation with a plain atomic load. Only after a
    /// [`reset`](Self::reset) does it take the lock again.
    pub(crate) fn state(&self) -> StateRef<D> {
        let generation = self.inner.state_generation.load(Ordering::Acquire);
        let cached = SNAPSHOTS
            .try_with(|s| {
                s.try_borrow().ok().and_then(|s| {
                    s.iter()
                        .rev()
                        .find(|(g, _)| *g == generation)
                        .map(|(_, snapshot)| Rc::clone(snapshot))
                })
            })
            .ok()
            .flatten()
            .and_then(|snapshot| snapshot.downcast::<Arc<State<D>>>().ok());
        if let Some(state) = cached {
            return StateRef(state);
        }
        let (generation, state) = {
            let guard = self
                .inner
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (guard.0, Rc::new(Arc::clone(&guard.1)))
        };
        SNAPSHOTS
            .try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    if s.len() >= SNAPSHOTS_KEPT {
                        s.remove(0);
                    }
                    s.push((generation, Rc::clone(&state) as Rc<dyn Any>));
                }
            })
            // A thread whose thread-locals are being destroyed uses the snapshot once.
            .unwrap_or(());
        StateRef(state)
    }

    pub(crate) fn now(&self) -> f64 {
        unix_seconds(self.inner.clock.now())
    }

    pub(crate) fn db_path(&self) -> &Path {
        &self.inner.pool.db_path
    }

    fn deadline(&self, started: Instant) -> Option<Instant> {
        if self.retry {
            None
        } else {
            Some(started + self.inner.timeout)
        }
    }

    /// Runs `f` in a write transaction (joining this thread's open one on the database).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let ctx = TxContext {
            pool: &self.inner.pool,
            writer: &self.inner.writer,
            deadline: self.deadline(started),
            started,
        };
        conn::write(&ctx, f)
    }

    /// Like [`write`](Self::write), for operations that free space: when the disk is full, the
    /// reserve is given back and `f` runs once more (see [`crate::reserve`]).
    pub(crate) fn write_freeing<T>(&self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        let result = match self.write(&mut f) {
            Err(Error::WriteFailed { .. }) if self.inner.reserve.release() => self.write(f),
            other => other,
        };
        if result.is_ok() && self.inner.reserve.is_missing() {
            // Written again once the operation made room for it.
            self.inner.reserve.ensure();
        }
        result
    }

    /// Runs `f` on a connection: this thread's open transaction on the database if any, or a
    /// pooled connection in autocommit mode. Busy errors are retried until the timeout.
    pub(crate) fn read_sql<T>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let db = conn::db_id(&self.inner.writer);
        if let Some(tx) = conn::active(db) {
            return f(&tx.conn.sql).map_err(|e| map_err(self.db_path(), e));
        }
        let deadline = self.deadline(started);
        let conn =
            self.inner
                .pool
                .checkout(conn::Use::Read, crate::pid::current(), deadline, started)?;
        let result = retry_busy(self.db_path(), deadline, started, || f(&conn.sql));
        self.inner.pool.checkin(conn::Use::Read, conn);
        result
    }

    /// Like [`read_sql`](Self::read_sql), for closures that fail with dcache errors: the
    /// closure is retried while SQLite reports the database busy.
    pub(crate) fn read_with<T>(&self, mut f: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        let db = conn::db_id(&self.inner.writer);
        if let Some(tx) = conn::active(db) {
            return f(&tx.conn.sql);
        }
        let started = Instant::now();
        let deadline = self.deadline(started);
        let conn =
            self.inner
                .pool
                .checkout(conn::Use::Read, crate::pid::current(), deadline, started)?;
        let result = conn::retry_busy_with(deadline, started, || f(&conn.sql));
        self.inner.pool.checkin(conn::Use::Read, conn);
        result
    }

    pub(crate) fn sql_err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |e| map_err(self.db_path(), e)
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
                let err = self.sql_err();
                let existing: Option<(i64, Option<String>, Option<f64>)> = tx
                    .sql
                    .prepare_cached(schema::SELECT_ROW)
                    .and_then(|mut s| {
                        s.query_row((Bind(key.value.as_ref()), key.raw), |r| {
                            Ok((r.get(0)?, r.get(1)?, opt_f64(r.get_ref(2)?)))
                        })
                        .optional()
                    })
                    .map_err(&err)?;
                match existing {
                    Some((_, _, expire)) if add && expire.is_none_or(|e| e > now) => {
                        // The losing add's file is referenced by nothing: remove it now.
                        if let Some(name) = &new_file {
                            files.remove(name)?;
                        }
                        return Ok(false);
                    }
                    Some((rowid, old_file, _)) => {
                        if let Some(old) = old_file {
                            tx.remove_after_commit(files, old);
                        }
                        self.update_row(tx, rowid, now, &columns)?;
                    }
                    None => self.insert_row(tx, key, now, &columns)?,
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
            let now = self.now();
            let row: Option<(i64, Option<String>)> = tx
                .sql
                .prepare_cached(schema::SELECT_LIVE_ROWID)
                .and_then(|mut s| {
                    s.query_row((Bind(key.value.as_ref()), key.raw, now), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .map_err(self.sql_err())?;
            let Some((rowid, filename)) = row else {
                return Ok(false);
            };
            self.delete_rowid(tx, rowid, filename)?;
            Ok(true)
        })
    }

    /// Inserts a row for a key known to be absent.
    pub(crate) fn insert_row(
        &self,
        tx: &Tx<'_>,
        key: &DbKey,
        now: f64,
        c: &Columns<'_>,
    ) -> Result<()> {
        tx.sql
            .prepare_cached(schema::INSERT_ROW)
            .and_then(|mut s| {
                s.execute((
                    Bind(key.value.as_ref()),
                    key.raw,
                    now,
                    c.expire_time,
                    Bind(c.tag),
                    c.stored.size as i64,
                    i64::from(c.stored.mode.0),
                    c.stored.filename,
                    Bind(c.stored.value),
                ))
            })
            .map(drop)
            .map_err(self.sql_err())
    }

    /// Rewrites a row in place (rowid kept, so its position in iteration order too).
    pub(crate) fn update_row(
        &self,
        tx: &Tx<'_>,
        rowid: i64,
        now: f64,
        c: &Columns<'_>,
    ) -> Result<()> {
        tx.sql
            .prepare_cached(schema::UPDATE_ROW)
            .and_then(|mut s| {
                s.execute((
                    now,
                    c.expire_time,
                    Bind(c.tag),
                    c.stored.size as i64,
                    i64::from(c.stored.mode.0),
                    c.stored.filename,
                    Bind(c.stored.value),
                    rowid,
                ))
            })
            .map(drop)
            .map_err(self.sql_err())
    }

    pub(crate) fn delete_rowid(
        &self,
        tx: &Tx<'_>,
        rowid: i64,
        filename: Option<String>,
    ) -> Result<()> {
        tx.sql
            .prepare_cached(schema::DELETE_ROWID)
            .and_then(|mut s| s.execute([rowid]))
            .map_err(self.sql_err())?;
        if let Some(name) = filename {
            tx.remove_after_commit(&self.inner.files, name);
        }
        Ok(())
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
            let err = self.sql_err();
            let expire_time = expire.map(|d| crate::clock::expire_at(now, d));
            // One statement for python's read-then-update: only a live entry is touched.
            let touched = tx
                .sql
                .prepare_cached(
                    "UPDATE Cache SET expire_time = ?1 WHERE key = ?2 AND raw = ?3 \
                     AND (expire_time IS NULL OR expire_time > ?4)",
                )
                .and_then(|mut s| s.execute((expire_time, Bind(key.value.as_ref()), key.raw, now)))
                .map_err(&err)?;
            Ok(touched == 1)
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
        self.incr_or(key, delta.checked_neg().ok_or(Error::Overflow)?, Some(0))
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
            let err = self.sql_err();
            let row: Option<IncrRow> = tx
                .sql
                .prepare_cached(
                    "SELECT rowid, expire_time, filename, value, mode FROM Cache WHERE key = ?1 AND raw = ?2",
                )
                .and_then(|mut s| {
                    s.query_row((Bind(key.value.as_ref()), key.raw), |r| {
                        Ok((r.get(0)?, opt_f64(r.get_ref(1)?), r.get(2)?, r.get::<_, rusqlite::types::Value>(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(&err)?
                .map(|(a, b, c, v, m): (i64, Option<f64>, Option<String>, rusqlite::types::Value, i64)| {
                    (a, b, c, crate::sqlval::from_rusqlite(v), m)
                });
            let fresh_columns = |value: i64| Columns {
                expire_time: expire.map(|d| crate::clock::expire_at(now, d)),
                tag: tag.as_ref().map_or(SqlRef::Null, Tag::as_sql),
                stored: StoredRef { size: 0, mode: Mode::RAW, filename: None, value: SqlRef::Integer(value) },
            };
            let fresh = |default: Option<i64>| -> Result<i64> {
                default.ok_or(Error::KeyNotFound)?.checked_add(delta).ok_or(Error::Overflow)
            };
            match row {
                None => {
                    let value = fresh(default)?;
                    self.insert_row(tx, &key, now, &fresh_columns(value))?;
                    self.cull_in_tx(tx, &state, now, state.settings.cull_limit)?;
                    Ok(value)
                }
                Some((rowid, Some(expire), filename, _, _)) if expire < now => {
                    let value = fresh(default)?;
                    self.update_row(tx, rowid, now, &fresh_columns(value))?;
                    self.cull_in_tx(tx, &state, now, state.settings.cull_limit)?;
                    if let Some(name) = filename {
                        tx.remove_after_commit(&self.inner.files, name);
                    }
                    Ok(value)
                }
                Some((rowid, _, _, current, mode)) => {
                    let current = match (mode, &current) {
                        (1, SqlValue::Integer(i)) => *i,
                        _ => {
                            return Err(Error::NotAnInteger {
                                found: describe_stored(mode, current.as_ref()),
                            });
                        }
                    };
                    let value = current.checked_add(delta).ok_or(Error::Overflow)?;
                    let sql = match state.settings.eviction_policy {
                        EvictionPolicy::LeastRecentlyUsed => {
                            "UPDATE Cache SET store_time = ?1, value = ?2, access_time = ?1 WHERE rowid = ?3"
                        }
                        EvictionPolicy::LeastFrequentlyUsed => {
                            "UPDATE Cache SET store_time = ?1, value = ?2, access_count = access_count + 1 WHERE rowid = ?3"
                        }
                        _ => "UPDATE Cache SET store_time = ?1, value = ?2 WHERE rowid = ?3",
                    };
                    tx.sql.prepare_cached(sql).and_then(|mut s| s.execute((now, value, rowid))).map_err(&err)?;
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
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); [`dcache_disk::Error::WrongType`] for a structured (pickled)
    /// value, which has no byte form to stream.
    pub fn read(&self, key: impl Serialize) -> Result<Option<ValueReader>> {
        Ok(self
            .lookup(key, false, |_, stored| {
                match (stored.mode, stored.filename, stored.value) {
                    (Mode::BINARY | Mode::TEXT, Some(name), _) => {
                        Ok(ValueReader::File(self.inner.files.open(name, stored.size)?))
                    }
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
        self.read_sql(|c| {
            c.prepare_cached(schema::SELECT_LIVE_ROWID)?
                .query_row((Bind(key.value.as_ref()), key.raw, now), |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
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
        self.read_sql(|c| {
            c.prepare_cached(schema::SETTING_VALUE)?
                .query_row([name], |r| {
                    Ok(opt_f64(r.get_ref(0)?).map_or(0, |v| v as i64))
                })
                .optional()
                .map(Option::unwrap_or_default)
        })
    }

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
        let now = self.now();
        let settings = &state.settings;
        let records = settings.statistics || settings.eviction_policy.updates_on_get();
        let fast = !records || self.is_read_only();
        // Recording reads needs the rowid: the full row.
        let meta = meta || !fast;
        let select = |c: &Connection| -> Result<Option<Hit<T>>> {
            let sql = if meta {
                schema::SELECT_LIVE
            } else {
                schema::SELECT_LIVE_VALUE
            };
            let mut stmt = c.prepare_cached(sql).map_err(self.sql_err())?;
            let mut rows = stmt
                .query((Bind(key.value.as_ref()), key.raw, now))
                .map_err(self.sql_err())?;
            match rows.next().map_err(self.sql_err())? {
                Some(row) => Hit::from_row(row, meta, |stored| decode(&state, stored)).map(Some),
                None => Ok(None),
            }
        };
        // The entry of a hit; a value file that has gone missing is an error here, which the
        // callers below turn into a miss.
        let entry = |hit: Hit<T>| -> Result<Entry<T>> {
            let Hit {
                rowid: _,
                expire_time,
                tag,
                value,
            } = hit;
            let decoded = match value {
                Fetch::Decoded(v) => v,
                Fetch::File {
                    mode,
                    filename,
                    size,
                    value,
                } => decode(
                    &state,
                    StoredRef {
                        size,
                        mode,
                        filename: Some(&filename),
                        value: value.as_ref(),
                    },
                ),
            };
            Ok(Entry {
                value: decoded?,
                expire_time: expire_time.and_then(from_unix),
                tag,
            })
        };
        // The value of a hit, or `None` for a value file that has gone missing (a miss).
        let value = |hit: Hit<T>| -> Result<Option<Entry<T>>> {
            match entry(hit) {
                Ok(entry) => Ok(Some(entry)),
                Err(e) if is_missing_file(&e) => {
                    log::warn!("dcache: reading a damaged entry as a miss: {e}");
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        };
        // The row is read without a transaction, so a writer may replace the entry and unlink
        // its old value file before the file is read: then the row is read again. The same
        // file still referenced and still missing is a damaged entry (a miss).
        let read_unlocked = || -> Result<Option<Entry<T>>> {
            let mut missing: Option<(String, Error)> = None;
            for _ in 0..MISSING_FILE_RETRIES {
                let Some(hit) = self.read_with(&select)? else {
                    return Ok(None);
                };
                let file = match &hit.value {
                    Fetch::File { filename, .. } => Some(filename.clone()),
                    Fetch::Decoded(_) => None,
                };
                if let (Some(file), Some((gone, _))) = (&file, &missing)
                    && file == gone
                {
                    break;
                }
                match entry(hit) {
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
        };
        if fast {
            return read_unlocked();
        }
        // Recording the read needs the write lock; reading a value file does not, so the file
        // is only opened under the lock (to count a hit or a miss as python does: a missing
        // file is a miss) and read after the commit. Opening never blocks (a FIFO in its place
        // is refused by the file store), so a slow or hostile file cannot stall other writers.
        let hit = self.write(|tx| {
            let err = self.sql_err();
            let count = |name: &str| {
                tx.sql
                    .prepare_cached(schema::ADD_TO_SETTING)
                    .and_then(|mut s| s.execute((name, 1)))
                    .map(drop)
                    .map_err(&err)
            };
            let Some(hit) = select(tx.sql)? else {
                if settings.statistics {
                    count("misses")?;
                }
                return Ok(None);
            };
            let rowid = hit.rowid;
            let present = match &hit.value {
                Fetch::File { filename, size, .. } => match self.files().open(filename, *size) {
                    Ok(_) => true,
                    Err(e) => {
                        let e = Error::from(e);
                        if !is_missing_file(&e) {
                            return Err(e);
                        }
                        log::warn!("dcache: reading a damaged entry as a miss: {e}");
                        false
                    }
                },
                Fetch::Decoded(_) => true,
            };
            if settings.statistics {
                count(if present { "hits" } else { "misses" })?;
            }
            if !present {
                return Ok(None);
            }
            match settings.eviction_policy {
                EvictionPolicy::LeastRecentlyUsed => tx
                    .sql
                    .prepare_cached("UPDATE Cache SET access_time = ?1 WHERE rowid = ?2")
                    .and_then(|mut s| s.execute((now, rowid)))
                    .map_err(&err)?,
                EvictionPolicy::LeastFrequentlyUsed => tx
                    .sql
                    .prepare_cached(
                        "UPDATE Cache SET access_count = access_count + 1 WHERE rowid = ?1",
                    )
                    .and_then(|mut s| s.execute([rowid]))
                    .map_err(&err)?,
                _ => 0,
            };
            Ok(Some(hit))
        })?;
        let Some(hit) = hit else {
            return Ok(None);
        };
        match value(hit)? {
            Some(entry) => Ok(Some(entry)),
            // Replaced or deleted by a writer since the commit: read the row again.
            None => read_unlocked(),
        }
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
            let now = self.now();
            let found = {
                let mut stmt = tx
                    .sql
                    .prepare_cached(schema::SELECT_LIVE)
                    .map_err(self.sql_err())?;
                let mut rows = stmt
                    .query((Bind(key.value.as_ref()), key.raw, now))
                    .map_err(self.sql_err())?;
                match rows.next().map_err(self.sql_err())? {
                    Some(row) => Found::from_row(row)?,
                    None => return Ok(None),
                }
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
        let started = Instant::now();
        let ctx = TxContext {
            pool: &self.inner.pool,
            writer: &self.inner.writer,
            deadline: self.deadline(started),
            started,
        };
        conn::write(&ctx, |_tx| f(self))
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
            tx.sql
                .prepare_cached(schema::PUT_SETTING)
                .and_then(|mut s| s.execute((name, Bind(value.as_ref()))))
                .map_err(self.sql_err())?;
            if name == "eviction_policy"
                && let Some(ddl) = new_settings.eviction_policy.index_sql()
            {
                tx.sql.execute_batch(ddl).map_err(self.sql_err())?;
            }
            Ok(())
        })?;
        if name == "sqlite_journal_mode" {
            self.inner.pool.forget_files();
            let started = Instant::now();
            self.read_with(|c| {
                open::set_journal_mode(
                    c,
                    self.db_path(),
                    &new_settings.sqlite_journal_mode,
                    self.deadline(started),
                    started,
                )
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
        let started = Instant::now();
        let stored = self.read_with(|c| {
            open::read_settings(c, self.db_path(), self.deadline(started), started)
        })?;
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

    pub(crate) fn replace_state(&self, settings: Settings, disk: D) {
        let mut guard = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = next_state_generation();
        *guard = (generation, Arc::new(State { settings, disk }));
        self.inner
            .state_generation
            .store(generation, Ordering::Release);
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

/// A row of `incr`'s lookup: rowid, expire time, filename, value, mode.
type IncrRow = (i64, Option<f64>, Option<String>, SqlValue, i64);

/// Describes a stored value for error messages ("an inline pickle", "text", …).
pub(crate) fn describe_stored(mode: i64, value: SqlRef<'_>) -> String {
    match (mode, value) {
        (1, v) => format!("raw {}", v.storage_class().to_ascii_lowercase()),
        (2, _) => "bytes value file".to_owned(),
        (3, _) => "text value file".to_owned(),
        (4, _) => "pickled value".to_owned(),
        (5, _) => "MessagePack value".to_owned(),
        (m, _) => format!("value of mode {m}"),
    }
}
