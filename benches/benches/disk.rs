//! Micro-benchmarks of the disk layer: keys and values to columns and back, without SQLite
//! (`cargo bench -p benches --bench disk`).

mod common;

use std::hint::black_box;

use criterion::Criterion;
use dcache::disk::{Disk, DiskFormat, FileStore, MsgpackDisk, SqlRef, classify, from_sql, pickle};

use benches::data::{value_1mib, value_100};

#[derive(serde::Serialize, serde::Deserialize)]
struct Session {
    user: String,
    visits: u32,
    roles: Vec<String>,
}

fn session() -> Session {
    Session {
        user: "ada".into(),
        visits: 42,
        roles: vec!["admin".into(), "dev".into()],
    }
}

fn keys(c: &mut Criterion) {
    let disk = Disk::default();
    let mut g = c.benchmark_group("disk_key");
    g.bench_function("put_str", |b| {
        b.iter(|| black_box(disk.put(black_box("key-00000042")).expect("put")));
    });
    g.bench_function("put_tuple_pickled", |b| {
        b.iter(|| black_box(disk.put(black_box(&("user", 42))).expect("put")));
    });
    g.finish();
}

fn values(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = FileStore::new(dir.path());
    let disk = Disk::default();
    let small = value_100(1);
    let large = value_1mib(1);
    let mut g = c.benchmark_group("disk_value");
    g.bench_function("store_bytes_100", |b| {
        b.iter(|| {
            black_box(
                disk.store(black_box(small.as_slice()), &files)
                    .expect("store"),
            )
        });
    });
    g.bench_function("fetch_vec_u8_100", |b| {
        b.iter(|| black_box(from_sql::<Vec<u8>>(SqlRef::Blob(&small)).expect("fetch")));
    });
    g.bench_function("fetch_vec_u8_1mib_serde", |b| {
        b.iter(|| black_box(from_sql::<Vec<u8>>(SqlRef::Blob(&large)).expect("fetch")));
    });
    g.bench_function("classify_bytes_1mib", |b| {
        b.iter(|| black_box(classify(black_box(large.as_slice()))));
    });
    g.bench_function("copy_1mib_memcpy", |b| {
        b.iter(|| black_box(large.clone()));
    });
    let stored = disk.store(&session(), &files).expect("store");
    g.bench_function("store_struct_pickle", |b| {
        b.iter(|| black_box(disk.store(&session(), &files).expect("store")));
    });
    g.bench_function("fetch_struct_pickle", |b| {
        b.iter(|| {
            black_box(
                disk.fetch::<Session>(stored.as_ref(), &files)
                    .expect("fetch"),
            )
        });
    });
    let msgpack = MsgpackDisk::default();
    let packed = msgpack.store(&session(), &files).expect("store");
    g.bench_function("fetch_struct_msgpack", |b| {
        b.iter(|| {
            black_box(
                msgpack
                    .fetch::<Session>(packed.as_ref(), &files)
                    .expect("fetch"),
            )
        });
    });
    g.bench_function("pickle_to_vec_struct", |b| {
        b.iter(|| black_box(pickle::to_vec(&session(), 5).expect("pickle")));
    });
    g.finish();
}

// Written out rather than `criterion_group!`, whose generated function has no docs.
fn main() {
    let mut c = common::config().configure_from_args();
    keys(&mut c);
    values(&mut c);
    c.final_summary();
}
