//! Iteration over all shards: shard 0's keys first (in insertion order), then shard 1's, …

use dcache_core::{Cache, Keys};
use dcache_disk::DiskFormat;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::fanout::FanoutCache;

/// Keys of every shard, shard by shard (python's `iter(fanout_cache)`); reversed, the last
/// shard comes first and each shard is read newest first. Yields `Result`s.
pub struct FanoutKeys<K, D: DiskFormat> {
    shards: Vec<Cache<D>>,
    reverse: bool,
    current: Option<Keys<K, D>>,
}

impl<K, D: DiskFormat> std::fmt::Debug for FanoutKeys<K, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutKeys")
            .field("shards_left", &self.shards.len())
            .field("reverse", &self.reverse)
            .finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned, D: DiskFormat> Iterator for FanoutKeys<K, D> {
    type Item = Result<K>;

    fn next(&mut self) -> Option<Result<K>> {
        loop {
            if let Some(keys) = &mut self.current {
                match keys.next() {
                    Some(item) => return Some(item.map_err(Error::from)),
                    None => self.current = None,
                }
            }
            // `shards` holds the shards still to read, next one last.
            let shard = self.shards.pop()?;
            let keys = if self.reverse {
                shard.keys_rev()
            } else {
                shard.keys()
            };
            match keys {
                Ok(keys) => self.current = Some(keys),
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

impl<D: DiskFormat> FanoutCache<D> {
    /// The keys of every shard, shard 0 first, each in insertion order. Errors (reading a
    /// page, decoding a key) come through the iterator.
    #[must_use]
    pub fn keys<K: DeserializeOwned>(&self) -> FanoutKeys<K, D> {
        let mut shards = self.shards().to_vec();
        shards.reverse();
        FanoutKeys {
            shards,
            reverse: false,
            current: None,
        }
    }

    /// The keys of every shard, last shard first, each newest first.
    #[must_use]
    pub fn keys_rev<K: DeserializeOwned>(&self) -> FanoutKeys<K, D> {
        FanoutKeys {
            shards: self.shards().to_vec(),
            reverse: true,
            current: None,
        }
    }
}
