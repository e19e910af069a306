//! dcache's own pickle codec against serde-pickle, the alternative codec the design weighed
//! (`cargo bench -p benches --bench pickle_codecs`). dcache writes protocol 5 (python's
//! default); serde-pickle writes protocol 3. Both decode each other's output for these types.

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::Criterion;
use dcache::disk::pickle;

#[derive(serde::Serialize, serde::Deserialize)]
struct Session {
    user: String,
    visits: u32,
    roles: Vec<String>,
    score: Option<f64>,
}

fn session() -> Session {
    Session {
        user: "ada".into(),
        visits: 42,
        roles: vec!["admin".into(), "dev".into()],
        score: Some(0.5),
    }
}

fn map() -> BTreeMap<String, i64> {
    (0..1000).map(|i| (format!("key-{i:05}"), i * 7)).collect()
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("pickle_codec");
    let s = session();
    let m = map();
    let tuple = ("__main__.f", 1i64, (), "b", 3i64);
    g.bench_function("encode_struct/dcache", |b| {
        b.iter(|| black_box(pickle::to_vec(black_box(&s), 5).expect("encode")));
    });
    g.bench_function("encode_struct/serde-pickle", |b| {
        b.iter(|| {
            black_box(
                serde_pickle::to_vec(black_box(&s), serde_pickle::SerOptions::new())
                    .expect("encode"),
            )
        });
    });
    // A structure holding 1 MiB of bytes: the `Vec<u8>` field is collected in one pass.
    let with_bytes = (1i64, vec![7u8; 1 << 20]);
    g.bench_function("encode_nested_bytes_1mib/dcache", |b| {
        b.iter(|| black_box(pickle::to_vec(black_box(&with_bytes), 5).expect("encode")));
    });
    let with_byte_buf = (1i64, serde_bytes::ByteBuf::from(vec![7u8; 1 << 20]));
    g.bench_function("encode_nested_bytes_1mib_serde_bytes/dcache", |b| {
        b.iter(|| black_box(pickle::to_vec(black_box(&with_byte_buf), 5).expect("encode")));
    });
    g.bench_function("encode_tuple_key/dcache", |b| {
        b.iter(|| black_box(pickle::to_vec(black_box(&tuple), 5).expect("encode")));
    });
    g.bench_function("encode_tuple_key/serde-pickle", |b| {
        b.iter(|| {
            black_box(
                serde_pickle::to_vec(black_box(&tuple), serde_pickle::SerOptions::new())
                    .expect("encode"),
            )
        });
    });
    g.bench_function("encode_map_1000/dcache", |b| {
        b.iter(|| black_box(pickle::to_vec(black_box(&m), 5).expect("encode")));
    });
    g.bench_function("encode_map_1000/serde-pickle", |b| {
        b.iter(|| {
            black_box(
                serde_pickle::to_vec(black_box(&m), serde_pickle::SerOptions::new())
                    .expect("encode"),
            )
        });
    });
    // Decode the same bytes (python's protocol-5 output, which both read).
    let struct_bytes = pickle::to_vec(&s, 5).expect("encode");
    let map_bytes = pickle::to_vec(&m, 5).expect("encode");
    g.bench_function("decode_struct/dcache", |b| {
        b.iter(|| {
            black_box(pickle::from_slice::<Session>(black_box(&struct_bytes)).expect("decode"))
        });
    });
    g.bench_function("decode_struct/serde-pickle", |b| {
        b.iter(|| {
            black_box(
                serde_pickle::from_slice::<Session>(
                    black_box(&struct_bytes),
                    serde_pickle::DeOptions::new(),
                )
                .expect("decode"),
            )
        });
    });
    g.bench_function("decode_map_1000/dcache", |b| {
        b.iter(|| {
            black_box(
                pickle::from_slice::<BTreeMap<String, i64>>(black_box(&map_bytes)).expect("decode"),
            )
        });
    });
    g.bench_function("decode_map_1000/serde-pickle", |b| {
        b.iter(|| {
            black_box(
                serde_pickle::from_slice::<BTreeMap<String, i64>>(
                    black_box(&map_bytes),
                    serde_pickle::DeOptions::new(),
                )
                .expect("decode"),
            )
        });
    });
    g.finish();
}

// Written out rather than `criterion_group!`, whose generated function has no docs.
fn main() {
    let mut c = common::config().configure_from_args();
    codecs(&mut c);
    c.final_summary();
}
