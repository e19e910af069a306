//! Fixtures and settings shared by the micro-benchmarks (`cache.rs`, `disk.rs`).

use std::time::Duration;

use criterion::Criterion;
use dcache::{Cache, EvictionPolicy};
use tempfile::TempDir;

/// A cache in a temporary directory, removed on drop.
// Each bench target compiles this module on its own; `disk.rs` needs no cache.
#[allow(dead_code)]
pub(crate) struct Fixture {
    pub(crate) cache: Cache,
    _dir: TempDir,
}

/// A cache holding `keys` keys `key-%08d` with 100-byte values (W1's shape).
#[allow(dead_code)]
pub(crate) fn cache_with(keys: usize, policy: EvictionPolicy) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = Cache::builder()
        .eviction_policy(policy)
        .open(dir.path())
        .expect("a cache");
    cache
        .transact(|c| {
            for i in 0..keys {
                c.set(
                    benches::data::key(i),
                    benches::data::value_100(i).as_slice(),
                )?;
            }
            Ok::<_, dcache::cache::Error>(())
        })
        .expect("populated");
    Fixture { cache, _dir: dir }
}

/// Short runs: these benches compare operations with each other, the comparison harness
/// (`cargo xtask bench`) is the reference for absolute figures.
pub(crate) fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
