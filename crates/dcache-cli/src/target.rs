//! Finding out what a directory holds (a Cache or a FanoutCache) and opening it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dcache::{Cache, DiskFormat, FanoutCache, Value};

use crate::error::CliError;

/// What kind of cache a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `cache.db` in the directory.
    Cache,
    /// Shard directories `000`, `001`, … and no `cache.db` of its own.
    Fanout,
}

/// Whether a command may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Opened read-only: nothing is written, not even statistics or access times.
    Read,
    /// Opened for writing (a directory that cannot be written still opens read-only, and
    /// writes then fail with an error naming it).
    Write,
}

/// An open cache directory: a Cache, or a FanoutCache and its shards.
pub(crate) struct Target<D: DiskFormat> {
    pub(crate) dir: PathBuf,
    pub(crate) kind: Kind,
    fanout: Option<FanoutCache<D>>,
    /// The one cache, or the shards in order.
    pub(crate) shards: Vec<Cache<D>>,
}

/// Decides what `dir` holds without opening anything. For a writing command (`access`), a
/// missing cache's message says how to create one.
pub(crate) fn detect(dir: &Path, access: Access) -> Result<Kind, CliError> {
    let create = match access {
        Access::Read => String::new(),
        Access::Write => format!(
            "; to create a cache there, run `dcache init {}`",
            dir.display()
        ),
    };
    let meta = std::fs::metadata(dir).map_err(|e| CliError::NotACache {
        dir: dir.to_path_buf(),
        why: if e.kind() == std::io::ErrorKind::NotFound {
            format!("it does not exist; check the path{create}")
        } else {
            format!("{e}; check the path and its permissions")
        },
    })?;
    if !meta.is_dir() {
        return Err(CliError::NotACache {
            dir: dir.to_path_buf(),
            why: "it is not a directory; give the cache's directory, not its cache.db".to_owned(),
        });
    }
    if dir.join("cache.db").exists() {
        Ok(Kind::Cache)
    } else if dir.join("000").is_dir() {
        Ok(Kind::Fanout)
    } else {
        Err(CliError::NotACache {
            dir: dir.to_path_buf(),
            why: format!(
                "it has no cache.db and no shard directories (000, 001, ...); check the path{}",
                if create.is_empty() {
                    " (this command does not create caches: `dcache init DIR` does)"
                } else {
                    &create
                }
            ),
        })
    }
}

impl<D: DiskFormat> Target<D> {
    /// Opens the cache in `dir` with its stored settings (never changing them).
    pub(crate) fn open(
        dir: &Path,
        disk: D,
        access: Access,
        timeout: Duration,
    ) -> Result<Self, CliError> {
        let kind = detect(dir, access)?;
        let read_only = access == Access::Read;
        let opened = |e: CliError| e.context(format!("cannot open the cache in {}", dir.display()));
        match kind {
            Kind::Cache => {
                let cache = Cache::builder()
                    .disk(disk)
                    .read_only(read_only)
                    .timeout(timeout)
                    .open(dir)
                    .map_err(|e| opened(e.into()))?;
                Ok(Target {
                    dir: dir.to_path_buf(),
                    kind,
                    fanout: None,
                    shards: vec![cache],
                })
            }
            Kind::Fanout => {
                // The directory's own count, checked strictly (no gaps, no stray entries).
                let shards = dcache::fanout::detect_shards(dir).map_err(|e| opened(e.into()))?;
                let fanout = FanoutCache::builder()
                    .shards(shards)
                    .timeout(timeout)
                    .cache(Cache::builder().disk(disk).read_only(read_only))
                    .open(dir)
                    .map_err(|e| opened(e.into()))?;
                Ok(Target {
                    dir: dir.to_path_buf(),
                    kind,
                    shards: fanout.shards().to_vec(),
                    fanout: Some(fanout),
                })
            }
        }
    }

    /// The cache that holds `key`: the cache itself, or the key's shard (python's choice).
    pub(crate) fn cache_for(&self, key: &Value) -> Result<(Option<usize>, &Cache<D>), CliError> {
        match &self.fanout {
            None => Ok((None, &self.shards[0])),
            Some(fanout) => {
                let n = fanout.shard_of(key)?;
                let shard = self
                    .shards
                    .get(n)
                    .ok_or_else(|| CliError::Usage(format!("shard {n} is out of range")))?;
                Ok((Some(n), shard))
            }
        }
    }

    /// The shard number to print with an entry (`None` for a plain Cache).
    pub(crate) fn shard_number(&self, index: usize) -> Option<usize> {
        (self.kind == Kind::Fanout).then_some(index)
    }

    /// How `index` names its shard in messages: `shard 003: ` (empty for a plain Cache).
    pub(crate) fn shard_prefix(&self, index: usize) -> String {
        match self.kind {
            Kind::Cache => String::new(),
            Kind::Fanout => format!("shard {index:03}: "),
        }
    }
}
