//! What a workload runs against: a [`Target`] (an implementation opened on a directory) and
//! the per-thread [`Ops`] it hands out.
//!
//! Every implementation stores the same keys (`key-%08d` strings) and values (bytes) through
//! the API a user would call; the workloads time those calls.

use std::io::Read;
use std::path::Path;

use dcache::{Cache, EvictionPolicy, FanoutCache};

use crate::Result;
use crate::floor::{FormatFloor, SqliteFloor};

/// The eviction policy a workload opens its target with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// python-diskcache's default, `least-recently-stored` (reads never write).
    LeastRecentlyStored,
    /// `least-recently-used` (W2): every hit updates the row's access time.
    LeastRecentlyUsed,
}

/// The operations of one thread on a [`Target`].
///
/// `get` and `get_large` return owned bytes, as every cache API does; the floors copy the
/// column (or read the file) into a `Vec` exactly once.
pub trait Ops {
    /// Stores `value` under `key`.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()>;
    /// The value of `key`, if present.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Removes `key`; whether it was present.
    fn delete(&mut self, key: &str) -> Result<bool>;
    /// Stores a large value (W3: 1 MiB, kept in a file by every implementation).
    fn set_large(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.set(key, value)
    }
    /// Reads a large value whole.
    fn get_large(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get(key)
    }
    /// Streams a large value through `buf` without holding it whole; the bytes read.
    fn read_large(&mut self, key: &str, buf: &mut [u8]) -> Result<Option<u64>>;
    /// Other ways this implementation offers to store a large value, by `op=` name (dcache:
    /// `set_large_reader`, its `set_reader`, which streams from an `io::Read`).
    fn set_large_variants(&self) -> &'static [&'static str] {
        &[]
    }
    /// Stores a large value the way `variant` (one of
    /// [`set_large_variants`](Self::set_large_variants)) names.
    fn set_large_variant(&mut self, variant: &str, _key: &str, _value: &[u8]) -> Result<()> {
        Err(format!("no set_large variant {variant}").into())
    }
    /// Other ways this implementation offers to read a large value whole, by `op=` name
    /// (dcache: `get_large_bytes`, its `get_bytes`).
    fn get_large_variants(&self) -> &'static [&'static str] {
        &[]
    }
    /// Reads a large value whole the way `variant` (one of
    /// [`get_large_variants`](Self::get_large_variants)) names.
    fn get_large_variant(&mut self, variant: &str, _key: &str) -> Result<Option<Vec<u8>>> {
        Err(format!("no get_large variant {variant}").into())
    }
}

/// An implementation opened on a directory.
pub trait Target: Send + Sync {
    /// Runs `f` with this thread's operations (a connection of its own for the floors, a
    /// clone of the handle for dcache). Opening connections happens here, outside the timing.
    fn with_ops(&self, f: &mut dyn FnMut(&mut dyn Ops) -> Result<()>) -> Result<()>;

    /// Stores `keys` with `value(i)` as fast as the implementation can (large transactions):
    /// the untimed set-up of the scale workload.
    fn populate(&self, keys: &mut dyn Iterator<Item = (String, Vec<u8>)>) -> Result<()>;
}

/// An implementation the harness knows, with the labels of its figure lines.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// `impl=`: `dcache`, `sqlite-floor`, `sqlite-format-floor`.
    pub implementation: &'static str,
    /// `kind=`: `cache` (FanoutCache adds `fanout`).
    pub kind: &'static str,
    /// Whether it keeps eviction bookkeeping, so W2 (`least-recently-used`) means something.
    pub eviction: bool,
    /// Whether it runs only the concurrent workload W4 (FanoutCache: sharding is about
    /// concurrency; its single-thread figures are its shards').
    pub concurrent_only: bool,
    /// Opens the implementation on a directory (created if needed).
    pub open: fn(&Path, Policy) -> Result<Box<dyn Target>>,
}

impl Registration {
    /// Opens the implementation on `dir`.
    ///
    /// # Errors
    ///
    /// Whatever the implementation reports when opening fails.
    pub fn open(&self, dir: &Path, policy: Policy) -> Result<Box<dyn Target>> {
        (self.open)(dir, policy)
    }
}

/// Every implementation the Rust harness measures, in the order figures are printed.
///
/// FanoutCache is `implementation: "dcache", kind: "fanout"`, measured on W4 only.
#[must_use]
pub fn targets() -> Vec<Registration> {
    vec![
        Registration {
            implementation: "dcache",
            kind: "cache",
            eviction: true,
            concurrent_only: false,
            open: DcacheCache::open,
        },
        Registration {
            implementation: "dcache",
            kind: "fanout",
            eviction: true,
            concurrent_only: true,
            open: DcacheFanout::open,
        },
        Registration {
            implementation: "sqlite-floor",
            kind: "cache",
            eviction: false,
            concurrent_only: false,
            open: SqliteFloor::open,
        },
        Registration {
            implementation: "sqlite-format-floor",
            kind: "cache",
            eviction: true,
            concurrent_only: false,
            open: FormatFloor::open,
        },
    ]
}

/// Finds a registration by its labels.
#[must_use]
pub fn find(implementation: &str, kind: &str) -> Option<Registration> {
    targets()
        .into_iter()
        .find(|r| r.implementation == implementation && r.kind == kind)
}

/// dcache's [`Cache`] with default settings (and the workload's eviction policy).
#[derive(Debug)]
pub struct DcacheCache {
    cache: Cache,
}

impl DcacheCache {
    /// Opens a cache in `dir`.
    ///
    /// # Errors
    ///
    /// [`dcache::cache::Error`] from opening.
    pub fn open(dir: &Path, policy: Policy) -> Result<Box<dyn Target>> {
        let policy = match policy {
            Policy::LeastRecentlyStored => EvictionPolicy::LeastRecentlyStored,
            Policy::LeastRecentlyUsed => EvictionPolicy::LeastRecentlyUsed,
        };
        let cache = Cache::builder().eviction_policy(policy).open(dir)?;
        Ok(Box::new(DcacheCache { cache }))
    }
}

impl Target for DcacheCache {
    fn with_ops(&self, f: &mut dyn FnMut(&mut dyn Ops) -> Result<()>) -> Result<()> {
        f(&mut DcacheOps {
            cache: self.cache.clone(),
        })
    }

    fn populate(&self, keys: &mut dyn Iterator<Item = (String, Vec<u8>)>) -> Result<()> {
        let mut batch = Vec::with_capacity(POPULATE_BATCH);
        loop {
            batch.clear();
            batch.extend((&mut *keys).take(POPULATE_BATCH));
            if batch.is_empty() {
                return Ok(());
            }
            self.cache.transact(|c| {
                for (k, v) in &batch {
                    c.set(k.as_str(), v.as_slice())?;
                }
                Ok::<_, dcache::cache::Error>(())
            })?;
        }
    }
}

/// Rows per transaction when populating.
pub(crate) const POPULATE_BATCH: usize = 10_000;

struct DcacheOps {
    cache: Cache,
}

impl Ops for DcacheOps {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        Ok(self.cache.set(key, value)?)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.cache.get::<Vec<u8>>(key)?)
    }

    fn delete(&mut self, key: &str) -> Result<bool> {
        Ok(self.cache.delete(key)?)
    }

    fn read_large(&mut self, key: &str, buf: &mut [u8]) -> Result<Option<u64>> {
        self.cache.read(key)?.map(|r| drain(r, buf)).transpose()
    }

    fn set_large_variants(&self) -> &'static [&'static str] {
        &["set_large_reader"]
    }

    fn set_large_variant(&mut self, variant: &str, key: &str, mut value: &[u8]) -> Result<()> {
        match variant {
            "set_large_reader" => {
                Ok(self
                    .cache
                    .set_reader(key, &mut value, dcache::SetOptions::new())?)
            }
            other => Err(format!("no set_large variant {other}").into()),
        }
    }

    fn get_large_variants(&self) -> &'static [&'static str] {
        &["get_large_bytes"]
    }

    fn get_large_variant(&mut self, variant: &str, key: &str) -> Result<Option<Vec<u8>>> {
        match variant {
            "get_large_bytes" => Ok(self.cache.get_bytes(key)?),
            other => Err(format!("no get_large variant {other}").into()),
        }
    }
}

/// Reads `reader` to its end through `buf`; the bytes read.
fn drain(mut reader: impl Read, buf: &mut [u8]) -> Result<u64> {
    let mut total = 0u64;
    loop {
        match reader.read(buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// dcache's [`FanoutCache`] with python's defaults (8 shards, 10 ms shard timeout). A write
/// that finds its shard busy past the timeout returns `false` and counts as done, as in
/// python-diskcache's own benchmark.
#[derive(Debug)]
pub struct DcacheFanout {
    cache: FanoutCache,
}

impl DcacheFanout {
    /// Opens a FanoutCache in `dir`.
    ///
    /// # Errors
    ///
    /// [`dcache::fanout::Error`] from opening.
    pub fn open(dir: &Path, policy: Policy) -> Result<Box<dyn Target>> {
        let policy = match policy {
            Policy::LeastRecentlyStored => EvictionPolicy::LeastRecentlyStored,
            Policy::LeastRecentlyUsed => EvictionPolicy::LeastRecentlyUsed,
        };
        let cache = FanoutCache::builder()
            .cache(dcache::Cache::builder().eviction_policy(policy))
            .open(dir)?;
        Ok(Box::new(DcacheFanout { cache }))
    }
}

impl Target for DcacheFanout {
    fn with_ops(&self, f: &mut dyn FnMut(&mut dyn Ops) -> Result<()>) -> Result<()> {
        f(&mut FanoutOps {
            cache: self.cache.clone(),
        })
    }

    fn populate(&self, keys: &mut dyn Iterator<Item = (String, Vec<u8>)>) -> Result<()> {
        let retrying = self.cache.retrying();
        for (k, v) in keys {
            retrying.set(k.as_str(), v.as_slice())?;
        }
        Ok(())
    }
}

struct FanoutOps {
    cache: FanoutCache,
}

impl Ops for FanoutOps {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.cache.set(key, value)?;
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.cache.get::<Vec<u8>>(key)?)
    }

    fn delete(&mut self, key: &str) -> Result<bool> {
        Ok(self.cache.delete(key)?)
    }

    fn read_large(&mut self, key: &str, buf: &mut [u8]) -> Result<Option<u64>> {
        self.cache.read(key)?.map(|r| drain(r, buf)).transpose()
    }
}
