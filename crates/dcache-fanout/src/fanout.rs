//! [`FanoutCache`]: N shards, each a full [`Cache`], chosen by python's `Disk.hash`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use dcache_collections::{Deque, Index};
use dcache_core::{
    Cache, CacheBuilder, Clock, Durability, Entry, Memoized, SetOptions, Settings, Stats, Storage,
    Update, ValueReader, Warning,
};
use dcache_disk::{Disk, DiskFormat, SqlValue, integral_i64};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::names::subdirectory;

/// python-diskcache's default shard count.
pub const DEFAULT_SHARDS: usize = 8;

/// python-diskcache's default per-shard timeout for FanoutCache: a busy shard is skipped
/// (a write returns `false`, a read a miss) rather than waited for.
pub const DEFAULT_SHARD_TIMEOUT: Duration = Duration::from_millis(10);

/// python-diskcache's default total `size_limit`, split across the shards of a new directory.
const DEFAULT_SIZE_LIMIT: u64 = 1 << 30;

/// Configures and opens a [`FanoutCache`].
///
/// Settings apply to every shard (`size_limit` is the total, split evenly across shards).
///
/// # Examples
///
/// ```
/// use dcache_fanout::FanoutCache;
///
/// let dir = tempfile::tempdir()?;
/// let cache = FanoutCache::builder().shards(4).size_limit(1 << 26).open(dir.path())?;
/// assert_eq!(cache.shard_count(), 4);
/// assert_eq!(cache.settings().size_limit, 1 << 24); // per shard
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct FanoutCacheBuilder<D: DiskFormat = Disk> {
    shard: CacheBuilder<D>,
    shards: Option<usize>,
    /// The total `size_limit`, as given (checked at open).
    size_limit: Option<SqlValue>,
}

impl Default for FanoutCacheBuilder<Disk> {
    fn default() -> Self {
        FanoutCacheBuilder {
            shard: Cache::builder().timeout(DEFAULT_SHARD_TIMEOUT),
            shards: None,
            size_limit: None,
        }
    }
}

impl<D: DiskFormat> FanoutCacheBuilder<D> {
    /// The number of shards (default 8, python's default), for a new directory and an
    /// existing one alike: python stores no shard count, so a directory must be opened with the
    /// count it was created with. A directory whose shard directories disagree (more shards, a
    /// file in place of one, a missing shard while others hold entries) is refused, never
    /// re-sharded. Tools that inspect directories of unknown origin can ask
    /// [`detect_shards`](crate::detect_shards).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The total size limit in bytes, split evenly across the shards (default 1 GiB for a new
    /// directory; an existing directory keeps its shards' stored limits).
    pub fn size_limit(mut self, bytes: u64) -> Self {
        self.size_limit = Some(SqlValue::Integer(i64::try_from(bytes).unwrap_or(i64::MAX)));
        self
    }

    /// How long an operation waits for a busy shard before giving up (default 10 ms). A write
    /// then returns `false` and a read a miss, as in python; [`FanoutCache::retrying`] waits.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.shard = self.shard.timeout(timeout);
        self
    }

    /// Bytes each shard keeps in reserve for deletes on a full disk (default 1 MiB per shard;
    /// see [`CacheBuilder::disk_reserve`]).
    pub fn disk_reserve(mut self, bytes: u64) -> Self {
        self.shard = self.shard.disk_reserve(bytes);
        self
    }

    /// Any cache setting for every shard (see [`CacheBuilder::setting`]).
    pub fn setting(mut self, name: &str, value: impl Into<SqlValue>) -> Self {
        let value = value.into();
        if name == "size_limit" {
            self.size_limit = Some(value);
        } else {
            self.shard = self.shard.setting(name, value);
        }
        self
    }

    /// The eviction policy of every shard (default least-recently-stored).
    pub fn eviction_policy(mut self, policy: dcache_core::EvictionPolicy) -> Self {
        self.shard = self.shard.eviction_policy(policy);
        self
    }

    /// Count hits and misses in every shard (default false).
    pub fn statistics(mut self, enable: bool) -> Self {
        self.shard = self.shard.statistics(enable);
        self
    }

    /// Index tags in every shard (default false).
    pub fn tag_index(mut self, enable: bool) -> Self {
        self.shard = self.shard.tag_index(enable);
        self
    }

    /// The most entries one write culls per shard (default 10).
    pub fn cull_limit(mut self, entries: u64) -> Self {
        self.shard = self.shard.cull_limit(entries);
        self
    }

    /// Values at least this large go to value files (default 32768).
    pub fn disk_min_file_size(mut self, bytes: u64) -> Self {
        self.shard = self.shard.disk_min_file_size(bytes);
        self
    }

    /// The clock for every shard (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.shard = self.shard.clock(clock);
        self
    }

    /// Open without ever writing (default false).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.shard = self.shard.read_only(read_only);
        self
    }

    /// Crash durability of writes (default [`Durability::Process`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.shard = self.shard.durability(durability);
        self
    }

    /// Uses another disk for every shard.
    pub fn disk<D2: DiskFormat>(self, disk: D2) -> FanoutCacheBuilder<D2> {
        FanoutCacheBuilder {
            shard: self.shard.disk(disk),
            shards: self.shards,
            size_limit: self.size_limit,
        }
    }

    /// Opens the FanoutCache in `dir` (creating it and its shards if needed).
    ///
    /// # Errors
    ///
    /// [`Error::ShardCountMismatch`] when `dir` has another number of shards than asked for,
    /// [`Error::ShardLayout`] for gaps in the shard numbering, [`Error::Io`], and any error of
    /// opening a shard ([`Error::Cache`]).
    pub fn open(self, dir: impl AsRef<Path>) -> Result<FanoutCache<D>> {
        self.open_dir(dir.as_ref().to_path_buf(), false)
    }

    /// Opens a FanoutCache in a new temporary directory, removed when the last handle drops.
    ///
    /// The directory goes with the last `FanoutCache` handle, not with handles taken from it:
    /// keep the FanoutCache alive while its [`deque`](FanoutCache::deque),
    /// [`index`](FanoutCache::index), [`cache`](FanoutCache::cache) sub-collections or cloned
    /// shards are in use.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_temp(self) -> Result<FanoutCache<D>> {
        let dir = dcache_core::temp_directory("dcache-fanout")?;
        self.open_dir(dir, true)
    }

    fn open_dir(self, dir: PathBuf, temp: bool) -> Result<FanoutCache<D>> {
        let result = self.open_shards(&dir);
        match result {
            Ok(shards) => {
                let retrying = shards.iter().map(Cache::retrying).collect();
                Ok(FanoutCache {
                    inner: Arc::new(Inner {
                        dir,
                        shards,
                        retrying,
                        temp,
                        shard_builder: self.shard,
                        subcaches: Mutex::new(HashMap::new()),
                    }),
                    retry: false,
                })
            }
            Err(e) => {
                if temp && let Err(rm) = std::fs::remove_dir_all(&dir) {
                    log::warn!("dcache: removing {}: {rm}", dir.display());
                }
                Err(e)
            }
        }
    }

    fn open_shards(&self, dir: &Path) -> Result<Vec<Cache<D>>> {
        let io = |e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        };
        // The count is the caller's (python's default 8), never guessed from the directory:
        // python stores no count and routes keys by the count it was given, so a directory
        // that disagrees is refused rather than re-sharded.
        let count = self.shards.unwrap_or(DEFAULT_SHARDS);
        if count == 0 {
            return Err(Error::NoShards);
        }
        if !self.shard.is_read_only() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Checking the layout and creating missing shards must not interleave with another
        // dcache process doing the same: hold an advisory lock on the directory itself (no
        // extra file for python to trip over) meanwhile. python creates its shards one by one
        // without a lock; the layout rules below accept every state it passes through.
        let dir_lock = lock_directory(dir);
        let layout = ShardLayout::scan(dir)?;
        layout.check(dir, count)?;
        let missing: Vec<usize> = (0..count).filter(|n| !layout.present(*n)).collect();
        let total = self.size_limit.as_ref().map(total_size_limit).transpose()?;
        let open_shard = |n: usize| -> Result<Cache<D>> {
            let path = dir.join(format!("{n:03}"));
            let mut builder = self.shard.clone();
            // python passes the split limit to every shard; dcache writes it when asked for and
            // when creating a shard, and otherwise keeps what the shard stores.
            match total {
                Some(total) => builder = builder.size_limit(total / count as u64),
                None if !path.join("cache.db").exists() => {
                    builder = builder.size_limit(DEFAULT_SIZE_LIMIT / count as u64);
                }
                None => {}
            }
            builder.open(&path).map_err(Error::from)
        };
        let mut shards: Vec<Option<Cache<D>>> = (0..count).map(|_| None).collect();
        if !missing.is_empty() && missing.len() < count {
            // Some shards exist, some do not: a directory python (or another opener) is still
            // creating, whose shards are all empty, or one whose shard was removed, moved or
            // never copied, whose keys would silently vanish. Only the first is completed.
            let mut holding = Vec::new();
            for n in (0..count).filter(|n| layout.present(*n)) {
                let shard = open_shard(n)?;
                if !shard.is_empty()? {
                    holding.push(n);
                }
                shards[n] = Some(shard);
            }
            if !holding.is_empty() {
                return Err(Error::ShardMissing {
                    dir: dir.to_path_buf(),
                    missing: shard_names(&missing),
                    holding: shard_names(&holding),
                });
            }
        }
        if self.shard.is_read_only() && !missing.is_empty() {
            return Err(Error::Cache(dcache_core::Error::ReadOnly {
                path: dir.join(format!("{:03}", missing[0])),
            }));
        }
        for &n in &missing {
            match std::fs::create_dir(dir.join(format!("{n:03}"))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        drop(dir_lock);
        shards
            .into_iter()
            .enumerate()
            .map(|(n, shard)| shard.map_or_else(|| open_shard(n), Ok))
            .collect()
    }
}

/// `000, 001, 003` for error messages.
fn shard_names(numbers: &[usize]) -> String {
    let names: Vec<String> = numbers.iter().map(|n| format!("{n:03}")).collect();
    names.join(", ")
}

/// The numbered entries (`000`, `001`, …, `1000`, …) of a FanoutCache directory.
#[derive(Debug, Default)]
struct ShardLayout {
    /// Numbered directories.
    dirs: std::collections::BTreeSet<usize>,
    /// Numbered entries that are not directories (a file or link in place of a shard).
    others: Vec<(usize, &'static str)>,
}

impl ShardLayout {
    fn scan(dir: &Path) -> Result<ShardLayout> {
        let io = |e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        };
        let mut layout = ShardLayout::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            // A read-only open of a directory that does not exist: every shard is missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(layout),
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let is_shard_name = name.len() >= 3
                && name.bytes().all(|b| b.is_ascii_digit())
                && (name.len() == 3 || !name.starts_with('0'));
            let Some(n) = is_shard_name.then(|| name.parse::<usize>().ok()).flatten() else {
                continue;
            };
            // `file_type` does not follow links: a link in place of a shard is not a shard.
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                layout.dirs.insert(n);
            } else {
                layout.others.push((
                    n,
                    if kind.is_symlink() {
                        "a symbolic link"
                    } else if kind.is_file() {
                        "a file"
                    } else {
                        "not a directory"
                    },
                ));
            }
        }
        layout.others.sort_unstable();
        Ok(layout)
    }

    fn present(&self, n: usize) -> bool {
        self.dirs.contains(&n)
    }

    /// Refuses entries in place of shards and shards beyond `count`.
    fn check(&self, dir: &Path, count: usize) -> Result<()> {
        if let Some(&(n, kind)) = self.others.first() {
            return Err(Error::ShardNotADirectory {
                path: dir.join(format!("{n:03}")),
                kind,
            });
        }
        if let Some(&beyond) = self.dirs.range(count..).next() {
            return Err(Error::ShardCountMismatch {
                dir: dir.to_path_buf(),
                found: self.dirs.len(),
                highest: self.dirs.last().copied().unwrap_or(beyond),
                requested: count,
            });
        }
        Ok(())
    }
}

/// The shard count of an existing FanoutCache directory, for tools that inspect directories
/// of unknown origin (the `dcache` command): the number of shard directories `000` to `NNN`,
/// each holding a `cache.db`, with no gaps and nothing else numbered.
///
/// Applications should not use this to open their own cache: pass the count they created it
/// with (python's default is 8), so that a damaged directory is refused instead of re-sharded.
///
/// # Errors
///
/// [`Error::ShardLayout`] when the numbering has gaps or a shard has no database,
/// [`Error::ShardNotADirectory`] for a file or link in place of a shard, [`Error::NoShards`]
/// when there is no shard directory, [`Error::Io`].
pub fn detect_shards(dir: impl AsRef<Path>) -> Result<usize> {
    let dir = dir.as_ref();
    let layout = ShardLayout::scan(dir)?;
    layout.check(dir, usize::MAX)?;
    let count = layout.dirs.len();
    if count == 0 {
        return Err(Error::NoShards);
    }
    for (expected, &n) in layout.dirs.iter().enumerate() {
        if n != expected || !dir.join(format!("{n:03}/cache.db")).is_file() {
            return Err(Error::ShardLayout {
                dir: dir.to_path_buf(),
                last: layout.dirs.last().copied().unwrap_or(0),
                missing: expected,
            });
        }
    }
    Ok(count)
}

/// A `size_limit` given to the builder: the total of all shards, in bytes (python stores
/// `size_limit / shards`, a REAL, so a whole-number REAL is accepted too).
fn total_size_limit(value: &SqlValue) -> Result<u64> {
    let total = match *value {
        SqlValue::Integer(i) => u64::try_from(i).ok(),
        SqlValue::Real(r) => integral_i64(r).and_then(|i| u64::try_from(i).ok()),
        _ => None,
    };
    total.ok_or_else(|| {
        Error::Cache(dcache_core::Error::InvalidSetting {
            name: "size_limit".to_owned(),
            value: format!("{value:?}"),
            reason: "expected the total size in bytes, a whole number of 0 or more".to_owned(),
        })
    })
}

/// Takes an exclusive advisory lock on `dir` (released when the returned file drops). Where a
/// directory cannot be opened or locked (some platforms), opening goes on without it.
fn lock_directory(dir: &Path) -> Option<std::fs::File> {
    let file = std::fs::File::open(dir).ok()?;
    match file.lock() {
        Ok(()) => Some(file),
        Err(e) => {
            log::debug!(
                "dcache: cannot lock {} while creating shards: {e}",
                dir.display()
            );
            None
        }
    }
}

struct Inner<D: DiskFormat> {
    dir: PathBuf,
    shards: Vec<Cache<D>>,
    retrying: Vec<Cache<D>>,
    temp: bool,
    shard_builder: CacheBuilder<D>,
    subcaches: Mutex<HashMap<(&'static str, String), Cache<D>>>,
}

impl<D: DiskFormat> Drop for Inner<D> {
    fn drop(&mut self) {
        if self.temp {
            self.shards.clear();
            self.retrying.clear();
            self.subcaches
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                log::warn!(
                    "dcache: removing temporary FanoutCache {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// python-diskcache's FanoutCache: keys spread over N shards, each a full [`Cache`] in
/// `000`, `001`, … below the directory, so writers to different shards never wait for each
/// other.
///
/// The shard of a key is python's `Disk.hash(key) % shards`, so python's FanoutCache and
/// dcache's put every key in the same shard and share one directory.
///
/// **Timeouts follow python's contract:** each shard waits at most its timeout (10 ms by
/// default) for its write lock. When that runs out, `set`, `add`, `touch` and `delete` return
/// `Ok(false)`, `get` and `pop` return `Ok(None)`, `incr` and `decr` return `Ok(None)` — the
/// cache is an optimization, and a busy shard is skipped. Only a timeout is turned into a
/// miss: I/O, corruption and decoding errors are returned. A [`retrying`](Self::retrying)
/// handle waits instead. Bulk operations (`clear`, `cull`, `expire`, `evict`) always wait,
/// shard by shard, and return the total.
///
/// # Examples
///
/// ```
/// use dcache_fanout::FanoutCache;
///
/// let dir = tempfile::tempdir()?;
/// let cache = FanoutCache::open(dir.path())?;
/// assert!(cache.set("key", "value")?);
/// assert_eq!(cache.get::<String>("key")?.as_deref(), Some("value"));
/// assert_eq!(cache.shard_of("key")?, 2); // python's shard for "key" of 8
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FanoutCache<D: DiskFormat = Disk> {
    inner: Arc<Inner<D>>,
    retry: bool,
}

impl<D: DiskFormat> Clone for FanoutCache<D> {
    fn clone(&self) -> Self {
        FanoutCache {
            inner: Arc::clone(&self.inner),
            retry: self.retry,
        }
    }
}

impl<D: DiskFormat> std::fmt::Debug for FanoutCache<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutCache")
            .field("directory", &self.inner.dir)
            .field("shards", &self.inner.shards.len())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Turns a shard timeout into `fallback`; passes every other error on.
fn skip_timeout<T>(result: dcache_core::Result<T>, fallback: T) -> Result<T> {
    match result {
        Err(e) if e.is_timeout() => Ok(fallback),
        other => other.map_err(Error::from),
    }
}

impl FanoutCache<Disk> {
    /// Opens (creating if needed) the FanoutCache in `dir` with python's defaults: 8 shards
    /// for a new directory, 10 ms shard timeout.
    ///
    /// # Errors
    ///
    /// As [`FanoutCacheBuilder::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        FanoutCacheBuilder::default().open(dir)
    }

    /// A FanoutCache in a new temporary directory, removed when the last handle drops.
    ///
    /// The directory goes with the last `FanoutCache` handle, not with handles taken from it:
    /// keep the FanoutCache alive while its [`deque`](FanoutCache::deque),
    /// [`index`](FanoutCache::index), [`cache`](FanoutCache::cache) sub-collections or cloned
    /// shards are in use.
    ///
    /// # Errors
    ///
    /// As [`FanoutCacheBuilder::open_temp`].
    pub fn temp() -> Result<Self> {
        FanoutCacheBuilder::default().open_temp()
    }

    /// A builder for the shard count, settings, timeout, clock and disk.
    pub fn builder() -> FanoutCacheBuilder<Disk> {
        FanoutCacheBuilder::default()
    }
}

impl<D: DiskFormat> FanoutCache<D> {
    /// The directory.
    #[must_use]
    pub fn directory(&self) -> &Path {
        &self.inner.dir
    }

    /// The number of shards.
    #[must_use]
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The shards, in order (`000`, `001`, …).
    #[must_use]
    pub fn shards(&self) -> &[Cache<D>] {
        if self.retry {
            &self.inner.retrying
        } else {
            &self.inner.shards
        }
    }

    /// A handle on the same FanoutCache whose operations wait for busy shards instead of
    /// returning `false`/`None` (python's `retry=True`).
    #[must_use]
    pub fn retrying(&self) -> Self {
        FanoutCache {
            inner: Arc::clone(&self.inner),
            retry: true,
        }
    }

    /// The shard `key` belongs to: python's `Disk.hash(key) % shards`.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] when the key cannot be encoded (a NaN key).
    pub fn shard_of(&self, key: impl Serialize) -> Result<usize> {
        Ok(self.shard_index(&key)?)
    }

    /// python's `self._shards[0].disk.hash(key) % shards`: the first shard's disk, with the
    /// settings stored in the directory (a python 3.7 cache pickles keys with protocol 4).
    fn shard_index(&self, key: &(impl Serialize + ?Sized)) -> dcache_core::Result<usize> {
        let shards = &self.inner.shards;
        Ok(shards[0].key_hash(key)? as usize % shards.len())
    }

    fn shard(&self, key: &impl Serialize) -> Result<&Cache<D>> {
        let n = self.shard_of(key)?;
        Ok(&self.shards()[n])
    }

    /// The settings of shard 0 (python's attributes come from there too).
    #[must_use]
    pub fn settings(&self) -> Settings {
        self.inner.shards[0].settings()
    }

    /// Stores `value` under `key`; `Ok(false)` if the shard stayed busy past its timeout.
    ///
    /// # Errors
    ///
    /// Any shard error other than a timeout.
    pub fn set(&self, key: impl Serialize, value: impl Serialize) -> Result<bool> {
        self.set_with(key, value, SetOptions::default())
    }

    /// [`set`](Self::set) with an expiry and a tag.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn set_with(
        &self,
        key: impl Serialize,
        value: impl Serialize,
        opts: SetOptions,
    ) -> Result<bool> {
        skip_timeout(
            self.shard(&key)?.set_with(&key, value, opts).map(|()| true),
            false,
        )
    }

    /// Streams `reader` into a value file (python's `set(..., read=True)`); `Ok(false)` on a
    /// shard timeout.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn set_reader(
        &self,
        key: impl Serialize,
        reader: &mut dyn std::io::Read,
        opts: SetOptions,
    ) -> Result<bool> {
        skip_timeout(
            self.shard(&key)?
                .set_reader(&key, reader, opts)
                .map(|()| true),
            false,
        )
    }

    /// Stores `value` only if `key` has no live entry; `Ok(false)` if it has one or the shard
    /// stayed busy.
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
    /// As [`set`](Self::set).
    pub fn add_with(
        &self,
        key: impl Serialize,
        value: impl Serialize,
        opts: SetOptions,
    ) -> Result<bool> {
        skip_timeout(self.shard(&key)?.add_with(&key, value, opts), false)
    }

    /// The value of `key`, or `None` when missing, expired or its shard stayed busy.
    ///
    /// # Errors
    ///
    /// Decoding errors (a value of another type), I/O and corruption.
    pub fn get<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<V>> {
        skip_timeout(self.shard(&key)?.get(&key), None)
    }

    /// The value with its expiry time and tag.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn get_entry<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<Entry<V>>> {
        skip_timeout(self.shard(&key)?.get_entry(&key), None)
    }

    /// The bytes of a bytes value, decoded without serde (see [`Cache::get_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn get_bytes(&self, key: impl Serialize) -> Result<Option<Vec<u8>>> {
        skip_timeout(self.shard(&key)?.get_bytes(&key), None)
    }

    /// Opens the value for streaming (python's `read`, which always waits for its shard).
    ///
    /// # Errors
    ///
    /// As [`Cache::read`].
    pub fn read(&self, key: impl Serialize) -> Result<Option<ValueReader>> {
        let n = self.shard_of(&key)?;
        Ok(self.inner.retrying[n].read(&key)?)
    }

    /// Whether `key` has a live entry.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn contains(&self, key: impl Serialize) -> Result<bool> {
        skip_timeout(self.shard(&key)?.contains(&key), false)
    }

    /// Removes and returns the value of `key`; `None` when missing or its shard stayed busy.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn pop<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<V>> {
        Ok(self.pop_entry(key)?.map(|e| e.value))
    }

    /// [`pop`](Self::pop) with the entry's expiry time and tag.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn pop_entry<V: DeserializeOwned>(&self, key: impl Serialize) -> Result<Option<Entry<V>>> {
        skip_timeout(self.shard(&key)?.pop_entry(&key), None)
    }

    /// Removes `key`; `Ok(false)` when missing or its shard stayed busy.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn delete(&self, key: impl Serialize) -> Result<bool> {
        skip_timeout(self.shard(&key)?.delete(&key), false)
    }

    /// Sets a live entry's expiry; `Ok(false)` when missing or its shard stayed busy.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn touch(&self, key: impl Serialize, expire: Option<Duration>) -> Result<bool> {
        skip_timeout(self.shard(&key)?.touch(&key, expire), false)
    }

    /// Adds `delta` atomically (a missing key starts at 0); `None` when the shard stayed busy.
    ///
    /// # Errors
    ///
    /// As [`Cache::incr`], timeouts aside.
    pub fn incr(&self, key: impl Serialize, delta: i64) -> Result<Option<i64>> {
        self.incr_or(key, delta, Some(0))
    }

    /// Subtracts `delta` atomically; `None` when the shard stayed busy.
    ///
    /// # Errors
    ///
    /// As [`incr`](Self::incr).
    pub fn decr(&self, key: impl Serialize, delta: i64) -> Result<Option<i64>> {
        skip_timeout(self.shard(&key)?.decr(&key, delta).map(Some), None)
    }

    /// [`incr`](Self::incr) with the starting value of a missing key (`None`: a missing key is
    /// an error).
    ///
    /// # Errors
    ///
    /// As [`Cache::incr_or`], timeouts aside.
    pub fn incr_or(
        &self,
        key: impl Serialize,
        delta: i64,
        default: Option<i64>,
    ) -> Result<Option<i64>> {
        skip_timeout(
            self.shard(&key)?.incr_or(&key, delta, default).map(Some),
            None,
        )
    }

    /// The number of entries in all shards (expired ones included).
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn len(&self) -> Result<u64> {
        self.sum(Cache::len)
    }

    /// Whether all shards are empty.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The bytes all shards occupy.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn volume(&self) -> Result<u64> {
        self.sum(Cache::volume)
    }

    fn sum(&self, f: impl Fn(&Cache<D>) -> dcache_core::Result<u64>) -> Result<u64> {
        self.inner
            .retrying
            .iter()
            .try_fold(0, |acc, shard| Ok(acc + f(shard)?))
    }

    /// Removes every entry; waits for busy shards and returns the total removed.
    ///
    /// # Errors
    ///
    /// A shard's error other than a timeout.
    pub fn clear(&self) -> Result<u64> {
        self.sum(Cache::clear)
    }

    /// Culls every shard to its size limit; returns the total removed.
    ///
    /// # Errors
    ///
    /// As [`clear`](Self::clear).
    pub fn cull(&self) -> Result<u64> {
        self.sum(Cache::cull)
    }

    /// Removes expired entries from every shard; returns the total removed.
    ///
    /// # Errors
    ///
    /// As [`clear`](Self::clear).
    pub fn expire(&self) -> Result<u64> {
        self.sum(Cache::expire)
    }

    /// Removes the entries tagged `tag` from every shard; returns the total removed.
    ///
    /// # Errors
    ///
    /// As [`clear`](Self::clear).
    pub fn evict(&self, tag: impl Into<dcache_core::Tag>) -> Result<u64> {
        let tag = tag.into();
        self.sum(|shard| shard.evict(tag.clone()))
    }

    /// Checks (and with `fix` repairs) every shard; returns all findings.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn check(&self, fix: bool) -> Result<Vec<Warning>> {
        let mut all = Vec::new();
        for shard in &self.inner.retrying {
            all.extend(shard.check(fix)?);
        }
        Ok(all)
    }

    /// [`check`](Self::check) with the age below which `fix` keeps unknown files (see
    /// [`Cache::check_with`]): `Duration::ZERO` after a crash, when nobody writes.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn check_with(&self, fix: bool, unknown_file_grace: Duration) -> Result<Vec<Warning>> {
        let mut all = Vec::new();
        for shard in &self.inner.retrying {
            all.extend(shard.check_with(fix, unknown_file_grace)?);
        }
        Ok(all)
    }

    /// Creates the tag index in every shard.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn create_tag_index(&self) -> Result<()> {
        self.inner
            .retrying
            .iter()
            .try_for_each(Cache::create_tag_index)
            .map_err(Error::from)
    }

    /// Drops the tag index in every shard.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn drop_tag_index(&self) -> Result<()> {
        self.inner
            .retrying
            .iter()
            .try_for_each(Cache::drop_tag_index)
            .map_err(Error::from)
    }

    /// The summed hit and miss counts; then turns statistics on or off (and zeroes the counts
    /// with `reset`) in every shard.
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn stats(&self, enable: bool, reset: bool) -> Result<Stats> {
        let mut total = Stats::default();
        for shard in &self.inner.retrying {
            let s = shard.stats(enable, reset)?;
            total.hits += s.hits;
            total.misses += s.misses;
        }
        Ok(total)
    }

    /// Changes a setting in every shard (python's `reset`: `size_limit` is *not* divided
    /// here); returns the value stored.
    ///
    /// # Errors
    ///
    /// As [`Cache::reset`].
    pub fn reset(&self, name: &str, value: impl Into<SqlValue>) -> Result<SqlValue> {
        let value = value.into();
        for shard in &self.inner.retrying {
            shard.reset(name, value.clone())?;
        }
        Ok(value)
    }

    /// Runs `f` with every shard's write lock held, taken in shard order (python's
    /// `transact`, which requires retrying): operations `f` makes on this FanoutCache from this
    /// thread join the per-shard transactions; all commit together when `f` returns `Ok`.
    ///
    /// # Errors
    ///
    /// `f`'s error, or a shard's error converted into `E`.
    pub fn transact<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Self) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut f = Some(f);
        nest(&self.inner.retrying, &mut || match f.take() {
            Some(f) => f(self),
            None => unreachable!("the transaction body runs once"),
        })
    }

    /// A memoizer storing results in this FanoutCache.
    pub fn memoize(&self, name: impl Into<String>) -> Memoized<Self> {
        Memoized::new(self.retrying(), name)
    }

    /// Closes the idle connections of every shard (they reopen on demand).
    ///
    /// # Errors
    ///
    /// A shard's error.
    pub fn close(&self) -> Result<()> {
        for shard in &self.inner.shards {
            shard.close()?;
        }
        for cache in self
            .inner
            .subcaches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            cache.close()?;
        }
        Ok(())
    }

    /// The sub-cache `name`, a full [`Cache`] in `cache/<name>` (python's
    /// `FanoutCache.cache(name)`), opened once per name and shared. It uses this FanoutCache's
    /// disk and clock and python's default 60 s timeout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for a name with empty, `.` or `..` segments, a leading `/` or a
    /// backslash; any error of opening the cache.
    pub fn cache(&self, name: &str) -> Result<Cache<D>> {
        self.subcache("cache", name, None)
    }

    /// The persistent deque `name`, in `deque/<name>` (python's `FanoutCache.deque(name)`):
    /// its cache is opened once per name with eviction policy `none` and shared by every
    /// handle; `maxlen` belongs to the handle (python does not store it either).
    ///
    /// # Errors
    ///
    /// As [`cache`](Self::cache).
    ///
    /// # Examples
    ///
    /// ```
    /// let fanout = dcache_fanout::FanoutCache::temp()?;
    /// let jobs = fanout.deque::<String>("jobs")?;
    /// jobs.append("build")?;
    /// assert_eq!(fanout.deque::<String>("jobs")?.popleft()?, "build");
    /// # Ok::<(), dcache_fanout::Error>(())
    /// ```
    pub fn deque<T>(&self, name: &str) -> Result<Deque<T, D>> {
        self.deque_with_maxlen(name, None)
    }

    /// [`deque`](Self::deque) with a maximum length for this handle (trimmed from the
    /// opposite end on push, as python's).
    ///
    /// # Errors
    ///
    /// As [`cache`](Self::cache), and trimming errors.
    pub fn deque_with_maxlen<T>(&self, name: &str, maxlen: Option<u64>) -> Result<Deque<T, D>> {
        let cache = self.subcache("deque", name, Some(dcache_core::EvictionPolicy::None))?;
        Ok(Deque::from_cache(cache).with_maxlen(maxlen)?)
    }

    /// The persistent insertion-ordered mapping `name`, in `index/<name>` (python's
    /// `FanoutCache.index(name)`), its cache opened once per name with eviction policy `none`.
    ///
    /// # Errors
    ///
    /// As [`cache`](Self::cache).
    ///
    /// # Examples
    ///
    /// ```
    /// let fanout = dcache_fanout::FanoutCache::temp()?;
    /// let users = fanout.index::<String, u32>("users")?;
    /// users.insert("ada", &36)?;
    /// assert_eq!(users.get("ada")?, Some(36));
    /// # Ok::<(), dcache_fanout::Error>(())
    /// ```
    pub fn index<K, V>(&self, name: &str) -> Result<Index<K, V, D>> {
        let cache = self.subcache("index", name, Some(dcache_core::EvictionPolicy::None))?;
        Ok(Index::from_cache(cache))
    }

    /// Opens (once per kind and name) the cache under `<kind>/<name>`.
    pub(crate) fn subcache(
        &self,
        kind: &'static str,
        name: &str,
        policy: Option<dcache_core::EvictionPolicy>,
    ) -> Result<Cache<D>> {
        let dir = subdirectory(&self.inner.dir, kind, name)?;
        let mut map = self
            .inner
            .subcaches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cache) = map.get(&(kind, name.to_owned())) {
            return Ok(cache.clone());
        }
        let mut builder = self
            .inner
            .shard_builder
            .clone()
            .timeout(dcache_core::DEFAULT_TIMEOUT);
        if let Some(policy) = policy {
            builder = builder.eviction_policy(policy);
        }
        let cache = builder.open(dir)?;
        map.insert((kind, name.to_owned()), cache.clone());
        Ok(cache)
    }
}

/// Runs `f` inside a transaction on each of `shards`, nested in order.
fn nest<D: DiskFormat, T, E: From<Error>>(
    shards: &[Cache<D>],
    f: &mut dyn FnMut() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    match shards.split_first() {
        None => f(),
        Some((first, rest)) => first
            .transact(|_| -> std::result::Result<T, TxError<E>> {
                nest(rest, f).map_err(TxError::Body)
            })
            .map_err(|e| match e {
                TxError::Body(e) => e,
                TxError::Cache(e) => E::from(Error::Cache(e)),
            }),
    }
}

/// Errors inside a nested shard transaction: the body's, or a shard's.
enum TxError<E> {
    Body(E),
    Cache(dcache_core::Error),
}

impl<E> From<dcache_core::Error> for TxError<E> {
    fn from(e: dcache_core::Error) -> Self {
        TxError::Cache(e)
    }
}

impl<D: DiskFormat> Storage for FanoutCache<D> {
    fn get_entry<V: DeserializeOwned>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> dcache_core::Result<Option<Entry<V>>> {
        self.storage_shard(key)?.get_entry(key)
    }

    fn add<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> dcache_core::Result<bool> {
        self.storage_shard(key)?.add_with(key, value, opts)
    }

    fn set<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> dcache_core::Result<()> {
        self.storage_shard(key)?.set_with(key, value, opts)
    }

    fn delete(&self, key: &(impl Serialize + ?Sized)) -> dcache_core::Result<bool> {
        self.storage_shard(key)?.delete(key)
    }

    fn incr(
        &self,
        key: &(impl Serialize + ?Sized),
        delta: i64,
        default: Option<i64>,
        opts: SetOptions,
    ) -> dcache_core::Result<i64> {
        self.storage_shard(key)?
            .incr_with(key, delta, default, opts)
    }

    fn update<V, R, F>(
        &self,
        key: &(impl Serialize + ?Sized),
        opts: SetOptions,
        f: F,
    ) -> dcache_core::Result<R>
    where
        V: Serialize + DeserializeOwned,
        F: FnMut(Option<V>) -> (Update<V>, R),
    {
        Storage::update(self.storage_shard(key)?, key, opts, f)
    }

    fn now(&self) -> SystemTime {
        self.inner.shards[0].clock().now()
    }
}

impl<D: DiskFormat> FanoutCache<D> {
    /// The shard for a Storage operation: always a retrying handle (python's recipes pass
    /// `retry=True`), so locks and counters never mistake a busy shard for an answer.
    fn storage_shard(&self, key: &(impl Serialize + ?Sized)) -> dcache_core::Result<&Cache<D>> {
        let n = self.shard_index(key)?;
        Ok(&self.inner.retrying[n])
    }
}
