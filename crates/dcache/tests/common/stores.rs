//! The store types generic tests run on: each test is written once over [`Fixture`] (or
//! [`ClockFixture`], for tests that move a manual clock) and instantiated for a `Cache`, a
//! `FanoutCache` and a `RedisStore`.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use dcache::{Cache, EvictionPolicy, FanoutCache, ManualClock, Storage};
use dcache_redis::RedisStore;

/// How the tests open a store of one type.
pub type OpenResult<S> = Result<S, Box<dyn std::error::Error + Send + Sync>>;

/// A store type the generic tests run on.
pub trait Fixture: 'static {
    /// The store.
    type S: Storage;
    /// The store for `dir` (created if needed), never evicting, with the store's own clock.
    /// Every call with the same `dir` (in any process) opens the same store.
    fn open(dir: &Path) -> OpenResult<Self::S>;
    /// Whether the store can be used here; when it cannot, this has said so loudly (and
    /// panicked in CI), and the test returns early.
    fn available() -> bool {
        true
    }
}

/// A store type whose clock a test can set.
pub trait ClockFixture: Fixture {
    /// [`Fixture::open`] with a manual clock.
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
}

impl ClockFixture for CacheFixture {
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
            .cache(Cache::builder().eviction_policy(EvictionPolicy::None))
            .open(dir)?)
    }
}

impl ClockFixture for FanoutFixture {
    fn open_with_clock(dir: &Path, clock: Arc<ManualClock>) -> OpenResult<FanoutCache> {
        Ok(FanoutCache::builder()
            .cache(
                Cache::builder()
                    .eviction_policy(EvictionPolicy::None)
                    .clock(clock),
            )
            .open(dir)?)
    }
}

/// The environment variable naming the test Redis server.
pub const REDIS_URL_VAR: &str = "DCACHE_REDIS_URL";

/// The test server's URL, when `DCACHE_REDIS_URL` is set and the server answers. Panics in
/// CI (`CI=true`) otherwise; elsewhere says loudly that the test is skipped.
pub fn redis_url() -> Option<String> {
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let url =
            std::env::var(REDIS_URL_VAR).map_err(|_| format!("{REDIS_URL_VAR} is not set"))?;
        RedisStore::builder(&url)
            .connect_timeout(std::time::Duration::from_secs(2))
            .open()
            .map_err(|e| format!("the server at {url} does not answer: {e}"))?;
        Ok(url)
    });
    match found {
        Ok(url) => Some(url.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("a Redis server is required in CI: {why}")
        }
        Err(why) => {
            let message = format!(
                "\n!!!!!!!! SKIPPING a Redis test: {why}\n!!!!!!!! start one with: apt-get \
                 install -y redis-server && redis-server --port 6380 --bind 127.0.0.1 --save '' \
                 --daemonize yes && export {REDIS_URL_VAR}=redis://127.0.0.1:6380/\n"
            );
            std::io::stderr()
                .write_all(message.as_bytes())
                .expect("write to stderr");
            None
        }
    }
}

/// Returns early from a test when no Redis server is available outside CI.
#[macro_export]
macro_rules! require_redis {
    () => {
        match $crate::common::stores::redis_url() {
            Some(url) => url,
            None => return Ok(()),
        }
    };
}

/// The key prefix of the Redis store standing for `dir`: unique per temporary directory, the
/// same in every process given the directory.
pub fn redis_prefix(dir: &Path) -> String {
    format!("dcache-test:{}:", dir.display())
}

/// A [`RedisStore`] on the test server, under a prefix of its own per directory.
pub struct RedisFixture;

impl Fixture for RedisFixture {
    type S = RedisStore;
    fn open(dir: &Path) -> OpenResult<RedisStore> {
        let url = redis_url().ok_or("no Redis server")?;
        Ok(RedisStore::builder(&url).prefix(redis_prefix(dir)).open()?)
    }
    fn available() -> bool {
        redis_url().is_some()
    }
}
