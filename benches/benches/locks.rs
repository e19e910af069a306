//! Lock acquire/release cycles on a `Cache` and on a `RedisStore`, with the fencing token
//! and without it (`cargo bench -p benches --bench locks`; the Redis half needs
//! `DCACHE_REDIS_URL`, e.g. `redis://127.0.0.1:6380/`).
//!
//! `lock_cycle` is `Lock::acquire` then `unlock` (a read, an `add`, the fencing counter's
//! `incr`, a read checking the lock is still held, and the release's read-modify-write).
//! `unfenced_cycle` is the same with `Lock::without_fencing` (no counter, no check).

mod common;

use criterion::Criterion;
use dcache::{EvictionPolicy, Lock, Storage};

fn cycles<S: Storage>(c: &mut Criterion, name: &str, store: &S) {
    let mut group = c.benchmark_group(format!("lock_{name}"));
    let lock = Lock::new(store.clone(), "bench-lock");
    group.bench_function("lock_cycle", |b| {
        b.iter(|| lock.acquire().expect("acquire").unlock().expect("unlock"));
    });
    let unfenced = Lock::new(store.clone(), "bench-unfenced").without_fencing();
    group.bench_function("unfenced_cycle", |b| {
        b.iter(|| {
            unfenced
                .acquire()
                .expect("acquire")
                .unlock()
                .expect("unlock");
        });
    });
    group.finish();
}

// Written out rather than `criterion_group!`, whose generated function has no docs.
fn main() {
    let mut c = common::config().configure_from_args();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = dcache::Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(dir.path())
        .expect("a cache");
    cycles(&mut c, "cache", &cache);
    match std::env::var("DCACHE_REDIS_URL") {
        Ok(url) => {
            let store = dcache::RedisStore::builder(&url)
                .prefix(format!("dcache-bench:{}:", std::process::id()))
                .open()
                .expect("the Redis server at DCACHE_REDIS_URL");
            cycles(&mut c, "redis", &store);
            store.clear().expect("clear the bench keys");
        }
        Err(_) => eprintln!(
            "\n!!!!!!!! DCACHE_REDIS_URL is not set: the Redis lock cycles were not measured\n"
        ),
    }
    c.final_summary();
}
