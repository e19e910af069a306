//! The store types generic tests run on: each test is written once over [`Fixture`] and
//! instantiated for a `Cache` and a `FanoutCache`.

use std::path::Path;
use std::sync::Arc;

use dcache::{Cache, EvictionPolicy, FanoutCache, ManualClock, Storage};

/// How the tests open a store of one type.
pub type OpenResult<S> = Result<S, Box<dyn std::error::Error + Send + Sync>>;

/// A store type the generic tests run on.
pub trait Fixture: 'static {
    /// The store.
    type S: Storage;
    /// The store in `dir` (created if needed), never evicting, with the system clock.
    fn open(dir: &Path) -> OpenResult<Self::S>;
    /// The same with a manual clock.
    fn open_with_clock(dir: &Path, clock: Arc<ManualClock>) -> OpenResult<Self::S>;
}

/// A [`Cache`].
pub struct CacheFixture;

impl Fixture for CacheFixture {
    type S = Cache;
    fn open(dir: &Path) -> OpenResult<Cache> {
        Ok(Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open(dir)?)
    }
    fn open_with_clock(dir: &Path, clock: Arc<ManualClock>) -> OpenResult<Cache> {
        Ok(Cache::builder()
            .eviction_policy(EvictionPolicy::None)
            .clock(clock)
            .open(dir)?)
    }
}

/// A [`FanoutCache`] with python's defaults.
pub struct FanoutFixture;

impl Fixture for FanoutFixture {
    type S = FanoutCache;
    fn open(dir: &Path) -> OpenResult<FanoutCache> {
        Ok(FanoutCache::builder()
            .eviction_policy(EvictionPolicy::None)
            .open(dir)?)
    }
    fn open_with_clock(dir: &Path, clock: Arc<ManualClock>) -> OpenResult<FanoutCache> {
        Ok(FanoutCache::builder()
            .eviction_policy(EvictionPolicy::None)
            .clock(clock)
            .open(dir)?)
    }
}
