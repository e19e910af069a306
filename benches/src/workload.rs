//! The standard workloads W1–W5 (docs/benchmarks.md, "Workloads"), written once against [`Target`].
//!
//! - W1: default settings, one thread, 20,000 keys `key-%08d`, 100-byte values: `set`
//!   (inserts into an empty cache), `get_hit`, `get_miss`, `delete`, each over all keys in a
//!   random order.
//! - W2: the same keys with `least-recently-used`: `get_hit_lru`.
//! - W3: 200 values of 1 MiB: `set_large`, `get_large` (whole value), `read_large` (streamed
//!   through a 64 KiB buffer); for dcache also `set_large_reader` (`set_reader`) and
//!   `get_large_bytes` (`get_bytes`), its whole-buffer paths (`set_large_reader` stores 200
//!   more values under keys of its own).
//! - W4: python's benchmark mix (90% get, 9% set, 1% delete over 100 hot keys, values of
//!   1–100 bytes) on 1 and 2 threads: `mix_1t`, `mix_2t`; pure reads `get_1t`, `get_2t`; pure
//!   writes of distinct keys on 1, 2 and 8 threads: `set_1t`, `set_2t`, `set_8t`. Wall-clock
//!   µs per op over all threads; each thread warms up (1,000 untimed ops) first.
//! - W5: `get_hit` on caches of 10,000 and 1,000,000 keys (`get_hit_10k`, `get_hit_1m`;
//!   100,000 keys with `--quick`), each in a fresh process that reports its anonymous RSS.
//!   Their figures carry the number of keys as `n`; each run times 200,000 hits (100,000 with
//!   `--quick`) on keys drawn at random.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::data::{self, Rng};
use crate::figure::Figure;
use crate::target::{Ops, Policy, Registration, Target};
use crate::{Result, rss};

/// How much work each workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// W1/W2 keys (20,000).
    pub keys: usize,
    /// W3 values of 1 MiB (200).
    pub large_values: usize,
    /// W3 passes of reads over all large values.
    pub large_read_passes: usize,
    /// W4 operations per workload, over all threads.
    pub concurrent_ops: usize,
    /// W5 cache sizes: the small and the large one.
    pub scale_keys: [usize; 2],
    /// W5 hits timed per run, on keys drawn at random.
    pub scale_gets: usize,
}

impl Sizes {
    /// The full run (`cargo xtask bench`).
    pub const FULL: Sizes = Sizes {
        keys: 20_000,
        large_values: 200,
        large_read_passes: 3,
        concurrent_ops: 100_000,
        scale_keys: [10_000, 1_000_000],
        scale_gets: 200_000,
    };

    /// The quick run (`cargo xtask bench --quick`).
    pub const QUICK: Sizes = Sizes {
        keys: 20_000,
        large_values: 200,
        large_read_passes: 1,
        concurrent_ops: 20_000,
        scale_keys: [10_000, 100_000],
        scale_gets: 100_000,
    };
}

/// A workload run on one registration in a fresh directory, with its figures.
pub type Run = fn(&Registration, &Path, &Sizes) -> Result<Vec<Figure>>;

/// The `op=` name of a scale run.
#[must_use]
pub fn scale_op(keys: usize) -> &'static str {
    if keys <= 10_000 {
        "get_hit_10k"
    } else {
        "get_hit_1m"
    }
}

/// Labels figures of one registration.
struct Out<'a> {
    reg: &'a Registration,
    figures: Vec<Figure>,
}

impl Out<'_> {
    fn time(&mut self, op: &str, n: usize, took: Duration) {
        self.figures.push(Figure::elapsed(
            self.reg.implementation,
            self.reg.kind,
            op,
            n as u64,
            took,
        ));
    }
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn expect(cond: bool, what: &str) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(format!("benchmark check failed: {what}").into())
    }
}

/// W1 and W2 (for targets with eviction bookkeeping) on a fresh directory each.
///
/// # Errors
///
/// Any failed operation, or a result that is not what the workload stored.
pub fn single_thread(reg: &Registration, work: &Path, sizes: &Sizes) -> Result<Vec<Figure>> {
    let mut out = Out {
        reg,
        figures: Vec::new(),
    };
    let n = sizes.keys;
    let keys = data::keys(0..n);
    let missing = data::keys(n..2 * n);
    let values: Vec<Vec<u8>> = (0..n).map(data::value_100).collect();

    let target = reg.open(&work.join("w1"), Policy::LeastRecentlyStored)?;
    target.with_ops(&mut |ops| {
        expect(ops.get("warm-up")?.is_none(), "warm-up key absent")?;
        let order = data::shuffled(n, 1);
        let took = timed(|| {
            for &i in &order {
                ops.set(&keys[i], &values[i])?;
            }
            Ok(())
        })?;
        out.time("set", n, took);
        let order = data::shuffled(n, 2);
        let took = timed(|| {
            for &i in &order {
                let v = ops.get(&keys[i])?;
                expect(v.is_some_and(|v| v.len() == 100), "get_hit finds the value")?;
            }
            Ok(())
        })?;
        out.time("get_hit", n, took);
        let took = timed(|| {
            for &i in &order {
                expect(ops.get(&missing[i])?.is_none(), "get_miss misses")?;
            }
            Ok(())
        })?;
        out.time("get_miss", n, took);
        let order = data::shuffled(n, 3);
        let took = timed(|| {
            for &i in &order {
                expect(ops.delete(&keys[i])?, "delete finds the key")?;
            }
            Ok(())
        })?;
        out.time("delete", n, took);
        Ok(())
    })?;
    drop(target);
    if !reg.eviction {
        return Ok(out.figures);
    }

    let target = reg.open(&work.join("w2"), Policy::LeastRecentlyUsed)?;
    target.with_ops(&mut |ops| {
        for (k, v) in keys.iter().zip(&values) {
            ops.set(k, v)?;
        }
        let order = data::shuffled(n, 4);
        let took = timed(|| {
            for &i in &order {
                expect(ops.get(&keys[i])?.is_some(), "get_hit_lru finds the value")?;
            }
            Ok(())
        })?;
        out.time("get_hit_lru", n, took);
        Ok(())
    })?;
    Ok(out.figures)
}

/// W3 on a fresh directory.
///
/// # Errors
///
/// As [`single_thread`].
pub fn large(reg: &Registration, work: &Path, sizes: &Sizes) -> Result<Vec<Figure>> {
    let mut out = Out {
        reg,
        figures: Vec::new(),
    };
    let n = sizes.large_values;
    let keys: Vec<String> = (0..n).map(|i| format!("large-{i:08}")).collect();
    let mut value = data::value_1mib(0);
    let target = reg.open(&work.join("w3"), Policy::LeastRecentlyStored)?;
    target.with_ops(&mut |ops| {
        let took = timed(|| {
            for (i, k) in keys.iter().enumerate() {
                value[..8].copy_from_slice(&(i as u64).to_le_bytes());
                ops.set_large(k, &value)?;
            }
            Ok(())
        })?;
        out.time("set_large", n, took);
        for &variant in ops.set_large_variants() {
            let variant_keys: Vec<String> = (0..n).map(|i| format!("{variant}-{i:08}")).collect();
            let took = timed(|| {
                for (i, k) in variant_keys.iter().enumerate() {
                    value[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    ops.set_large_variant(variant, k, &value)?;
                }
                Ok(())
            })?;
            out.time(variant, n, took);
        }
        let reads = n * sizes.large_read_passes;
        let check = |i: usize, v: Option<Vec<u8>>| {
            expect(
                v.is_some_and(|v| v.len() == 1 << 20 && v[..8] == (i as u64).to_le_bytes()),
                "get_large reads the value back",
            )
        };
        let took = timed(|| {
            for _ in 0..sizes.large_read_passes {
                for (i, k) in keys.iter().enumerate() {
                    check(i, ops.get_large(k)?)?;
                }
            }
            Ok(())
        })?;
        out.time("get_large", reads, took);
        for &variant in ops.get_large_variants() {
            let took = timed(|| {
                for _ in 0..sizes.large_read_passes {
                    for (i, k) in keys.iter().enumerate() {
                        check(i, ops.get_large_variant(variant, k)?)?;
                    }
                }
                Ok(())
            })?;
            out.time(variant, reads, took);
        }
        let mut buf = vec![0u8; 1 << 16];
        let took = timed(|| {
            for _ in 0..sizes.large_read_passes {
                for k in &keys {
                    expect(
                        ops.read_large(k, &mut buf)? == Some(1 << 20),
                        "read_large streams the value",
                    )?;
                }
            }
            Ok(())
        })?;
        out.time("read_large", reads, took);
        Ok(())
    })?;
    Ok(out.figures)
}

/// Runs `body` on `threads` threads at once, each with its own [`Ops`], after each ran
/// `warm_up`; returns the wall-clock time from the common start to the last thread's end.
///
/// # Errors
///
/// The first error of any thread.
pub fn parallel(
    target: &dyn Target,
    threads: usize,
    warm_up: &(dyn Fn(usize, &mut dyn Ops) -> Result<()> + Sync),
    body: &(dyn Fn(usize, &mut dyn Ops) -> Result<()> + Sync),
) -> Result<Duration> {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let waited = Cell::new(0);
                    let wait = || {
                        barrier.wait();
                        waited.set(waited.get() + 1);
                    };
                    let result = target.with_ops(&mut |ops| {
                        let warm = warm_up(t, ops);
                        wait();
                        let run = if warm.is_ok() { body(t, ops) } else { Ok(()) };
                        wait();
                        warm.and(run)
                    });
                    // Never leave the others waiting, whatever failed.
                    while waited.get() < 2 {
                        wait();
                    }
                    result
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        let took = start.elapsed();
        for h in handles {
            h.join().map_err(|_| "a benchmark thread panicked")??;
        }
        Ok(took)
    })
}

/// Ops of W4's warm-up per thread.
const WARM_UP_OPS: usize = 1_000;

/// python's benchmark mix on the hot keys: 90% get, 9% set, 1% delete.
fn mix_op(rng: &mut Rng, ops: &mut dyn Ops, hot: &[String], values: &[Vec<u8>]) -> Result<()> {
    let action = rng.below(100);
    let key = &hot[rng.below(hot.len())];
    if action < 90 {
        ops.get(key)?;
    } else if action < 99 {
        ops.set(key, &values[rng.below(values.len())])?;
    } else {
        ops.delete(key)?;
    }
    Ok(())
}

/// W4 on fresh directories.
///
/// # Errors
///
/// As [`single_thread`].
pub fn concurrent(reg: &Registration, work: &Path, sizes: &Sizes) -> Result<Vec<Figure>> {
    let mut out = Out {
        reg,
        figures: Vec::new(),
    };
    let hot = data::keys(0..100);
    let values = data::mix_values();
    let total = sizes.concurrent_ops;

    let target = reg.open(&work.join("w4-mix"), Policy::LeastRecentlyStored)?;
    target.with_ops(&mut |ops| {
        for (i, k) in hot.iter().enumerate() {
            ops.set(k, &values[i])?;
        }
        Ok(())
    })?;
    for threads in [1, 2] {
        let per_thread = total / threads;
        let warm_up = |t: usize, ops: &mut dyn Ops| {
            let mut rng = Rng::new(1_000 + t as u64);
            (0..WARM_UP_OPS).try_for_each(|_| mix_op(&mut rng, ops, &hot, &values))
        };
        let body = |t: usize, ops: &mut dyn Ops| {
            let mut rng = Rng::new(2_000 + t as u64 + 100 * threads as u64);
            (0..per_thread).try_for_each(|_| mix_op(&mut rng, ops, &hot, &values))
        };
        let took = parallel(&*target, threads, &warm_up, &body)?;
        out.time(&format!("mix_{threads}t"), per_thread * threads, took);
    }
    // Pure reads: every hot key present again (the mix deleted some).
    target.with_ops(&mut |ops| {
        for (i, k) in hot.iter().enumerate() {
            ops.set(k, &values[i])?;
        }
        Ok(())
    })?;
    for threads in [1, 2] {
        let per_thread = total / threads;
        let get = |seed: u64, count: usize, ops: &mut dyn Ops| -> Result<()> {
            let mut rng = Rng::new(seed);
            for _ in 0..count {
                expect(
                    ops.get(&hot[rng.below(hot.len())])?.is_some(),
                    "get finds the hot key",
                )?;
            }
            Ok(())
        };
        let warm_up = |t: usize, ops: &mut dyn Ops| get(3_000 + t as u64, WARM_UP_OPS, ops);
        let body = |t: usize, ops: &mut dyn Ops| get(4_000 + t as u64, per_thread, ops);
        let took = parallel(&*target, threads, &warm_up, &body)?;
        out.time(&format!("get_{threads}t"), per_thread * threads, took);
    }
    drop(target);

    for threads in [1, 2, 8] {
        let per_thread = total / threads;
        let target = reg.open(
            &work.join(format!("w4-set{threads}")),
            Policy::LeastRecentlyStored,
        )?;
        let set = |prefix: &str, t: usize, count: usize, ops: &mut dyn Ops| -> Result<()> {
            let mut rng = Rng::new(5_000 + t as u64);
            let mut key = String::new();
            for i in 0..count {
                key.clear();
                write!(key, "{prefix}-{t:02}-{i:08}")?;
                ops.set(&key, &values[rng.below(values.len())])?;
            }
            Ok(())
        };
        let warm_up = |t: usize, ops: &mut dyn Ops| set("warm", t, WARM_UP_OPS / threads, ops);
        let body = |t: usize, ops: &mut dyn Ops| set("set", t, per_thread, ops);
        let took = parallel(&*target, threads, &warm_up, &body)?;
        out.time(&format!("set_{threads}t"), per_thread * threads, took);
    }
    Ok(out.figures)
}

/// W5's set-up: a cache of `keys` 100-byte values in `dir` (untimed, large transactions).
///
/// # Errors
///
/// As [`single_thread`].
pub fn populate_scale(reg: &Registration, dir: &Path, keys: usize) -> Result<()> {
    let target = reg.open(dir, Policy::LeastRecentlyStored)?;
    target.populate(&mut (0..keys).map(|i| (data::key(i), data::value_100(i))))
}

/// W5's measurement, run in a fresh process on a populated `dir`: `gets` hits on random keys,
/// then the process's anonymous RSS.
///
/// # Errors
///
/// As [`single_thread`].
pub fn scale_gets(reg: &Registration, dir: &Path, keys: usize, gets: usize) -> Result<Vec<Figure>> {
    let target = reg.open(dir, Policy::LeastRecentlyStored)?;
    let mut took = Duration::ZERO;
    let mut heap = None;
    target.with_ops(&mut |ops| {
        expect(ops.get(&data::key(0))?.is_some(), "the cache is populated")?;
        let mut rng = Rng::new(6_000 + keys as u64);
        let mut key = String::with_capacity(16);
        took = timed(|| {
            for _ in 0..gets {
                key.clear();
                write!(key, "key-{:08}", rng.below(keys))?;
                expect(ops.get(&key)?.is_some(), "get_hit finds the value")?;
            }
            Ok(())
        })?;
        // Measured while the connection is open: its page cache is part of the run's heap.
        heap = rss::heap_rss_mib();
        Ok(())
    })?;
    let op = scale_op(keys);
    let mut figures = vec![Figure::time(
        reg.implementation,
        reg.kind,
        op,
        keys as u64,
        took.as_secs_f64() * keys as f64 / gets as f64,
    )];
    if let Some(mib) = heap {
        figures.push(Figure {
            implementation: reg.implementation.to_owned(),
            kind: reg.kind.to_owned(),
            op: op.to_owned(),
            n: keys as u64,
            metric: crate::figure::Metric::HeapRssMib(mib),
        });
    }
    Ok(figures)
}
