//! [`RedisStore`]: dcache's [`Storage`] on a Redis or Valkey server.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dcache_core::disk::{Mode, SqlValue};
use dcache_core::{Disk, DiskFormat, Entry, Error, Result, SetOptions, Storage, Update};
use redis::{RedisResult, Value as Reply};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Record};
use crate::error::other;
use crate::pool::{Pool, PoolConfig, Session};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "dcache:";
/// The default time to wait for a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default time to wait for a reply.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The default number of idle connections kept.
pub const DEFAULT_MAX_IDLE: usize = 16;
/// The default age after which the server clock is read again.
pub const DEFAULT_CLOCK_REFRESH: Duration = Duration::from_secs(1);
/// The default number of times a read-modify-write is re-run when the key changed under it.
pub const DEFAULT_MAX_CONFLICTS: u32 = 10_000;

/// dcache's [`Storage`] on a Redis (6.2 or later) or Valkey server, so that [`Lock`], `RLock`,
/// `BoundedSemaphore`, `Averager`, `Throttle`, `Barrier`, `MemoizeStampede` and `Memoized`
/// work across machines, unchanged.
///
/// - Keys and values are encoded by a dcache disk ([`Disk`], python-diskcache's pickle
///   format, by default) and stored as one Redis string per key, the tag with the value (see
///   the crate docs for the layout, which python reads with its standard library). Every key
///   starts with the store's [prefix](RedisStoreBuilder::prefix) (`"dcache:"` by default).
/// - Expiry is Redis' own (`PX`); [`get_entry`](Storage::get_entry) reports the remaining
///   time to live as an expiry time on the server's clock.
/// - [`now`](Storage::now) is the server's clock (`TIME`), read again every
///   [`clock_refresh`](RedisStoreBuilder::clock_refresh) and followed in between with the
///   local monotonic clock, so every machine sharing the server agrees on lock and throttle
///   times to within a network round trip.
/// - `add` is `SET NX PX`; `update` and `incr` are `WATCH`/`MULTI`/`EXEC` transactions,
///   re-run (the `update` closure included) when the key changed underneath.
///
/// The store is a cheap handle (clone it into threads); clones share one connection pool.
///
/// [`Lock`]: https://docs.rs/dcache-sync
///
/// # Examples
///
/// ```no_run
/// use dcache_redis::RedisStore;
/// use dcache_core::{SetOptions, Storage};
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/").prefix("myapp:").open()?;
/// store.set("greeting", "hello", SetOptions::new())?;
/// let entry = store.get_entry::<String>("greeting")?.expect("just set");
/// assert_eq!(entry.value, "hello");
/// # Ok::<(), dcache_core::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisStore<D: DiskFormat = Disk> {
    inner: Arc<Inner<D>>,
}

struct Inner<D> {
    pool: Pool,
    codec: Codec<D>,
    clock: ServerClock,
    max_conflicts: u32,
}

impl<D: DiskFormat> std::fmt::Debug for RedisStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.inner.pool.address())
            .field(
                "prefix",
                &String::from_utf8_lossy(self.inner.codec.prefix()),
            )
            .finish_non_exhaustive()
    }
}

/// Options of a [`RedisStore`], from [`RedisStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder<D: DiskFormat = Disk> {
    url: String,
    prefix: Vec<u8>,
    disk: D,
    pool: PoolConfig,
    clock_refresh: Duration,
    max_conflicts: u32,
}

impl RedisStore {
    /// Opens a store on the server at `url` (`redis://[user:password@]host:port/db`) with
    /// the default options.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::open`].
    pub fn open(url: &str) -> Result<RedisStore> {
        RedisStore::builder(url).open()
    }

    /// Options for a store on the server at `url`: key prefix `"dcache:"`, connect and
    /// response timeouts of 2 s, up to 16 idle connections, the server clock read every
    /// second, the default [`Disk`].
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            prefix: DEFAULT_PREFIX.as_bytes().to_vec(),
            disk: Disk::default(),
            pool: PoolConfig {
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                response_timeout: DEFAULT_RESPONSE_TIMEOUT,
                max_idle: DEFAULT_MAX_IDLE,
            },
            clock_refresh: DEFAULT_CLOCK_REFRESH,
            max_conflicts: DEFAULT_MAX_CONFLICTS,
        }
    }
}

impl<D: DiskFormat> RedisStoreBuilder<D> {
    /// Every key of the store starts with `prefix` (default `"dcache:"`): stores with
    /// different prefixes share a server without seeing each other's keys.
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.prefix = prefix.as_ref().to_vec();
        self
    }

    /// How long to wait for a new connection (default 2 s); an unreachable server is reported
    /// after this long.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connect_timeout = timeout;
        self
    }

    /// How long to wait for each reply (default 2 s); a server that stops answering is
    /// reported after this long.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.pool.response_timeout = timeout;
        self
    }

    /// How many idle connections to keep for reuse (default 16); busier threads open more
    /// and close them after use.
    pub fn max_idle(mut self, connections: usize) -> Self {
        self.pool.max_idle = connections;
        self
    }

    /// How often [`now`](Storage::now) reads the server clock again (default 1 s); zero reads
    /// it on every call.
    pub fn clock_refresh(mut self, every: Duration) -> Self {
        self.clock_refresh = every;
        self
    }

    /// How many times an `update` or `incr` is re-run because the key changed underneath
    /// before giving up with an error (default 10,000).
    pub fn max_conflicts(mut self, times: u32) -> Self {
        self.max_conflicts = times.max(1);
        self
    }

    /// Encodes keys and values with `disk` (default: [`Disk`], python's pickle format).
    pub fn disk<D2: DiskFormat>(self, disk: D2) -> RedisStoreBuilder<D2> {
        RedisStoreBuilder {
            url: self.url,
            prefix: self.prefix,
            disk,
            pool: self.pool,
            clock_refresh: self.clock_refresh,
            max_conflicts: self.max_conflicts,
        }
    }

    /// Connects to the server, checks that it answers and reads its clock.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the URL is invalid, or the server cannot be reached within the
    /// connect timeout or does not answer within the response timeout.
    pub fn open(self) -> Result<RedisStore<D>> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| Error::Backend {
            backend: crate::error::BACKEND,
            kind: dcache_core::BackendErrorKind::Other,
            message: format!("invalid server URL {:?}", self.url),
            check: "write it as redis://[user:password@]host:port/db".to_owned(),
            source: Box::new(e),
        })?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                pool: Pool::new(client, self.pool),
                codec: Codec::new(self.disk, self.prefix)?,
                clock: ServerClock::new(self.clock_refresh),
                max_conflicts: self.max_conflicts,
            }),
        };
        store.inner.clock.measure(&store.inner.pool)?;
        Ok(store)
    }
}

impl<D: DiskFormat> RedisStore<D> {
    /// The server clock, read now (one round trip), corrected by half the round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the server cannot be reached.
    pub fn server_time(&self) -> Result<SystemTime> {
        self.inner.clock.measure(&self.inner.pool)?;
        Ok(self.inner.clock.now())
    }

    /// Deletes every key under this store's prefix (with `SCAN` and `UNLINK`, in batches);
    /// returns how many there were. Keys written meanwhile may survive.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the server fails.
    pub fn clear(&self) -> Result<u64> {
        let mut pattern = Vec::new();
        for &b in self.inner.codec.prefix() {
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        let mut cursor = 0u64;
        let mut removed = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self.inner.pool.run("SCAN", |s| {
                s.query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                )
            })?;
            if !keys.is_empty() {
                let n: u64 = self
                    .inner
                    .pool
                    .run("UNLINK", |s| s.query(redis::cmd("UNLINK").arg(&keys)))?;
                removed += n;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(removed);
            }
        }
    }

    /// Runs a read-modify-write of `key` as a `WATCH`/`MULTI`/`EXEC` transaction, re-running
    /// `decide` when the key changed before `EXEC`.
    fn transact<R>(
        &self,
        what: &str,
        key: &[u8],
        mut decide: impl FnMut(Option<Record>) -> Result<(Write, R)>,
    ) -> Result<R> {
        let pool = &self.inner.pool;
        for attempt in 0..self.inner.max_conflicts {
            if attempt > 16 {
                // Many writers on one key: step aside briefly so one of them gets through.
                std::thread::sleep(Duration::from_micros(50 * u64::from(attempt.min(100))));
            }
            let outcome = pool.run(what, |s: &mut Session| -> RedisResult<Option<Result<R>>> {
                // WATCH and GET in one round trip (a plain pipeline, not a transaction).
                let (current,): (Option<Vec<u8>>,) = s.pipe(
                    redis::pipe()
                        .cmd("WATCH")
                        .arg(key)
                        .ignore()
                        .cmd("GET")
                        .arg(key),
                )?;
                let decided = current
                    .as_deref()
                    .map(Codec::<D>::decode)
                    .transpose()
                    .and_then(&mut decide);
                let (write, result) = match decided {
                    Ok(d) => d,
                    Err(e) => {
                        s.query::<()>(&redis::cmd("UNWATCH"))?;
                        return Ok(Some(Err(e)));
                    }
                };
                let mut pipe = redis::pipe();
                pipe.atomic();
                match write {
                    Write::Keep => {
                        s.query::<()>(&redis::cmd("UNWATCH"))?;
                        return Ok(Some(Ok(result)));
                    }
                    Write::Set { bytes, px } => {
                        let cmd = pipe.cmd("SET").arg(key).arg(bytes);
                        if let Some(ms) = px {
                            cmd.arg("PX").arg(ms);
                        }
                        cmd.ignore();
                    }
                    Write::SetKeepTtl(bytes) => {
                        pipe.cmd("SET").arg(key).arg(bytes).arg("KEEPTTL").ignore();
                    }
                    Write::Delete => {
                        pipe.cmd("DEL").arg(key).ignore();
                    }
                }
                let done: Option<Reply> = s.pipe(&pipe)?;
                Ok(done.map(|_| Ok(result)))
            })?;
            if let Some(result) = outcome {
                return result;
            }
        }
        Err(other(
            pool.address(),
            format!(
                "{what} gave up after {} conflicting writes to the same key",
                self.inner.max_conflicts
            ),
            "too many clients write this key at once: retry, or raise `max_conflicts`",
        ))
    }

    /// The write of `value` with `opts` in a transaction.
    fn write_for<V: Serialize + ?Sized>(&self, value: &V, opts: &SetOptions) -> Result<Write> {
        let bytes = self.inner.codec.value(value, opts.tag.as_ref())?;
        Ok(match opts.expire {
            Some(ttl) if ttl.is_zero() => Write::Delete,
            expire => Write::Set {
                bytes,
                px: expire.map(ttl_ms),
            },
        })
    }
}

/// What a transaction writes.
enum Write {
    /// Nothing (the `WATCH` is released).
    Keep,
    /// The value, with an expiry in milliseconds or none.
    Set { bytes: Vec<u8>, px: Option<u64> },
    /// The value, keeping the key's expiry.
    SetKeepTtl(Vec<u8>),
    /// The key is deleted.
    Delete,
}

/// A time to live in whole milliseconds, rounded up (Redis' `PX` takes at least 1).
fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

impl<D: DiskFormat> Storage for RedisStore<D> {
    fn get_entry<V: DeserializeOwned>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Option<Entry<V>>> {
        let key = self.inner.codec.key(key)?;
        let (bytes, pttl, (secs, micros)): (Option<Vec<u8>>, i64, (u64, u64)) =
            self.inner.pool.run("GET", |s| {
                s.pipe(
                    redis::pipe()
                        .atomic()
                        .cmd("GET")
                        .arg(&key)
                        .cmd("PTTL")
                        .arg(&key)
                        .cmd("TIME"),
                )
            })?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let record = Codec::<D>::decode(&bytes)?;
        let value = self.inner.codec.fetch(&record)?;
        let server_now = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
        let expire_time = u64::try_from(pttl)
            .ok()
            .map(|ms| server_now + Duration::from_millis(ms));
        Ok(Some(Entry {
            value,
            expire_time,
            tag: record.tag,
        }))
    }

    fn add<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> Result<bool> {
        let key = self.inner.codec.key(key)?;
        let bytes = self.inner.codec.value(value, opts.tag.as_ref())?;
        if opts.expire.is_some_and(|d| d.is_zero()) {
            // An entry that expires as it is written: added if the key is free, never seen.
            let exists: i64 = self
                .inner
                .pool
                .run("EXISTS", |s| s.query(redis::cmd("EXISTS").arg(&key)))?;
            return Ok(exists == 0);
        }
        let mut attempts = 0u32;
        self.inner.pool.run("SET NX", |s| {
            attempts += 1;
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(&bytes).arg("NX");
            if let Some(ttl) = opts.expire {
                cmd.arg("PX").arg(ttl_ms(ttl));
            }
            let reply: Option<String> = s.query(&cmd)?;
            if reply.is_some() {
                return Ok(true);
            }
            if attempts > 1 {
                // A re-run after a broken connection: the first attempt may have written.
                let current: Option<Vec<u8>> = s.query(redis::cmd("GET").arg(&key))?;
                return Ok(current.as_deref() == Some(bytes.as_slice()));
            }
            Ok(false)
        })
    }

    fn set<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> Result<()> {
        let key = self.inner.codec.key(key)?;
        let bytes = self.inner.codec.value(value, opts.tag.as_ref())?;
        let mut cmd = redis::cmd("SET");
        match opts.expire {
            Some(ttl) if ttl.is_zero() => cmd = redis::cmd("DEL").arg(&key).clone(),
            Some(ttl) => {
                cmd.arg(&key).arg(&bytes).arg("PX").arg(ttl_ms(ttl));
            }
            None => {
                cmd.arg(&key).arg(&bytes);
            }
        }
        self.inner.pool.run("SET", |s| s.query::<()>(&cmd))
    }

    fn delete(&self, key: &(impl Serialize + ?Sized)) -> Result<bool> {
        let key = self.inner.codec.key(key)?;
        let n: i64 = self
            .inner
            .pool
            .run("DEL", |s| s.query(redis::cmd("DEL").arg(&key)))?;
        Ok(n > 0)
    }

    fn incr(
        &self,
        key: &(impl Serialize + ?Sized),
        delta: i64,
        default: Option<i64>,
        opts: SetOptions,
    ) -> Result<i64> {
        let key = self.inner.codec.key(key)?;
        self.transact("INCR", &key, |current| match current {
            None => {
                let value = default
                    .ok_or(Error::KeyNotFound)?
                    .checked_add(delta)
                    .ok_or(Error::Overflow)?;
                Ok((self.write_for(&value, &opts)?, value))
            }
            Some(record) => {
                let SqlValue::Integer(n) = record.column else {
                    return Err(Error::NotAnInteger {
                        found: describe(&record),
                    });
                };
                if record.mode != Mode::RAW {
                    return Err(Error::NotAnInteger {
                        found: describe(&record),
                    });
                }
                let value = n.checked_add(delta).ok_or(Error::Overflow)?;
                let bytes =
                    Codec::<D>::record(SqlValue::Integer(value), Mode::RAW, record.tag.as_ref())?;
                Ok((Write::SetKeepTtl(bytes), value))
            }
        })
    }

    fn update<V, R, F>(
        &self,
        key: &(impl Serialize + ?Sized),
        opts: SetOptions,
        mut f: F,
    ) -> Result<R>
    where
        V: Serialize + DeserializeOwned,
        F: FnMut(Option<V>) -> (Update<V>, R),
    {
        let key = self.inner.codec.key(key)?;
        self.transact("UPDATE", &key, |current| {
            let current = current
                .map(|record| self.inner.codec.fetch::<V>(&record))
                .transpose()?;
            let (update, result) = f(current);
            let write = match update {
                Update::Set(v) => self.write_for(&v, &opts)?,
                Update::Delete => Write::Delete,
                Update::Keep => Write::Keep,
            };
            Ok((write, result))
        })
    }

    fn now(&self) -> SystemTime {
        self.inner.clock.refresh(&self.inner.pool);
        self.inner.clock.now()
    }
}

/// What a stored record is, for `NotAnInteger`.
fn describe(record: &Record) -> String {
    match (record.mode, &record.column) {
        (Mode::RAW, SqlValue::Text(_)) => "raw text".to_owned(),
        (Mode::RAW, SqlValue::Blob(_)) => "raw blob".to_owned(),
        (Mode::RAW, SqlValue::Real(_)) => "raw real".to_owned(),
        (Mode::PICKLE, _) => "pickled value".to_owned(),
        (Mode::MSGPACK, _) => "MessagePack value".to_owned(),
        (mode, _) => format!("value of mode {}", mode.0),
    }
}

/// The server's clock: an offset from the local clock, measured with `TIME` and corrected
/// by half the round trip, refreshed when older than `refresh`.
struct ServerClock {
    /// Server time minus local time, in microseconds.
    offset_us: AtomicI64,
    measured: Mutex<Option<Instant>>,
    refresh: Duration,
}

impl ServerClock {
    fn new(refresh: Duration) -> Self {
        ServerClock {
            offset_us: AtomicI64::new(0),
            measured: Mutex::new(None),
            refresh,
        }
    }

    /// Reads the server clock.
    fn measure(&self, pool: &Pool) -> Result<()> {
        let sent = Instant::now();
        let local_sent = SystemTime::now();
        let (secs, micros): (i64, i64) = pool.run("TIME", |s| s.query(&redis::cmd("TIME")))?;
        let rtt = sent.elapsed();
        let local_mid = local_sent + rtt / 2;
        let local_us = match local_mid.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        let server_us = secs.saturating_mul(1_000_000).saturating_add(micros);
        self.offset_us
            .store(server_us.saturating_sub(local_us), Ordering::Relaxed);
        *self.measured.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        Ok(())
    }

    /// Reads the server clock again when the last reading is older than `refresh`; a failure
    /// keeps the last offset (logged).
    fn refresh(&self, pool: &Pool) {
        let stale = self
            .measured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= self.refresh);
        if stale && let Err(e) = self.measure(pool) {
            // Tried again after `refresh`, not on every call of a server that is down.
            *self.measured.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            log::warn!("reading the Redis server clock failed, using the last offset: {e}");
        }
    }

    /// Local time plus the offset.
    fn now(&self) -> SystemTime {
        let offset = self.offset_us.load(Ordering::Relaxed);
        let local = SystemTime::now();
        if offset >= 0 {
            local + Duration::from_micros(offset.unsigned_abs())
        } else {
            local - Duration::from_micros(offset.unsigned_abs())
        }
    }
}
