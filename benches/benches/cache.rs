//! Micro-benchmarks of `Cache` operations, one per operation (`cargo bench -p benches --bench cache`).

mod common;

use std::hint::black_box;
use std::io::Read;

use criterion::{BatchSize, Criterion};
use dcache::EvictionPolicy;

use benches::data::{key, value_1mib, value_100};
use common::cache_with;

const KEYS: usize = 1_000;

fn single_key_ops(c: &mut Criterion) {
    let fixture = cache_with(KEYS, EvictionPolicy::LeastRecentlyStored);
    let cache = &fixture.cache;
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let value = value_100(0);
    let mut group = c.benchmark_group("cache");
    let mut at = 0;
    let mut next = || {
        at = (at + 7) % KEYS;
        &keys[at]
    };
    group.bench_function("get_hit", |b| {
        b.iter(|| black_box(cache.get::<Vec<u8>>(next().as_str()).expect("get")));
    });
    group.bench_function("get_hit_bytes", |b| {
        b.iter(|| black_box(cache.get_bytes(next().as_str()).expect("get_bytes")));
    });
    group.bench_function("get_miss", |b| {
        b.iter(|| black_box(cache.get::<Vec<u8>>("absent").expect("get")));
    });
    group.bench_function("contains", |b| {
        b.iter(|| black_box(cache.contains(next().as_str()).expect("contains")));
    });
    group.bench_function("set_overwrite", |b| {
        b.iter(|| cache.set(next().as_str(), value.as_slice()).expect("set"));
    });
    let mut fresh = 0u64;
    group.bench_function("set_insert", |b| {
        b.iter(|| {
            fresh += 1;
            cache
                .set(format!("new-{fresh:010}"), value.as_slice())
                .expect("set");
        });
    });
    group.bench_function("delete", |b| {
        b.iter_batched(
            || {
                let k = next().clone();
                cache.set(k.as_str(), value.as_slice()).expect("set");
                k
            },
            |k| assert!(cache.delete(k.as_str()).expect("delete")),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("incr", |b| {
        b.iter(|| black_box(cache.incr("counter", 1).expect("incr")));
    });
    group.bench_function("add_losing", |b| {
        b.iter(|| assert!(!cache.add(next().as_str(), value.as_slice()).expect("add")));
    });
    group.finish();
}

fn lru(c: &mut Criterion) {
    let fixture = cache_with(KEYS, EvictionPolicy::LeastRecentlyUsed);
    let mut at = 0;
    c.bench_function("cache_lru/get_hit", |b| {
        b.iter(|| {
            at = (at + 7) % KEYS;
            black_box(fixture.cache.get::<Vec<u8>>(key(at)).expect("get"))
        });
    });
}

fn large_values(c: &mut Criterion) {
    let fixture = cache_with(0, EvictionPolicy::LeastRecentlyStored);
    let cache = &fixture.cache;
    let value = value_1mib(1);
    cache.set("large", value.as_slice()).expect("set");
    let mut group = c.benchmark_group("cache_1mib");
    // The byte types a user may ask for: each moves the bytes whole (no per-byte serde).
    group.bench_function("get_vec_u8", |b| {
        b.iter(|| black_box(cache.get::<Vec<u8>>("large").expect("get")));
    });
    group.bench_function("get_box_u8", |b| {
        b.iter(|| black_box(cache.get::<Box<[u8]>>("large").expect("get")));
    });
    group.bench_function("get_serde_bytes", |b| {
        b.iter(|| black_box(cache.get::<serde_bytes::ByteBuf>("large").expect("get")));
    });
    group.bench_function("get_bytes_crate", |b| {
        b.iter(|| black_box(cache.get::<bytes::Bytes>("large").expect("get")));
    });
    group.bench_function("get_bytes", |b| {
        b.iter(|| black_box(cache.get_bytes("large").expect("get_bytes")));
    });
    let mut buf = vec![0u8; 1 << 16];
    group.bench_function("read_streamed", |b| {
        b.iter(|| {
            let mut reader = cache.read("large").expect("read").expect("present");
            let mut total = 0;
            loop {
                match reader.read(&mut buf).expect("read") {
                    0 => break total,
                    n => total += n,
                }
            }
        });
    });
    group.bench_function("set", |b| {
        b.iter(|| cache.set("large-set", value.as_slice()).expect("set"));
    });
    group.bench_function("set_vec_ref", |b| {
        b.iter(|| cache.set("large-set", &value).expect("set"));
    });
    group.bench_function("set_serde_bytes", |b| {
        b.iter(|| {
            cache
                .set("large-set", serde_bytes::Bytes::new(&value))
                .expect("set");
        });
    });
    let shared = bytes::Bytes::from(value.clone());
    group.bench_function("set_bytes_crate", |b| {
        b.iter(|| cache.set("large-set", &shared).expect("set"));
    });
    group.finish();
}

// Written out rather than `criterion_group!`, whose generated function has no docs.
fn main() {
    let mut c = common::config().configure_from_args();
    single_key_ops(&mut c);
    lru(&mut c);
    large_values(&mut c);
    c.final_summary();
}
