//! Measures what a read costs on each layer a faster read path could stand on, with one and two
//! threads, on a dcache `Cache` directory holding 1,000 entries of 100 bytes:
//!
//! ```text
//! cargo run --release -p benches --bin readpath -- [--scale F] [--only FIGURE] [--threads N]
//! ```
//!
//! - `cache_get`: `Cache::get` of a present key (today's read path);
//! - `shm_header`: one read of the WAL-index header (`benches::walhdr`), a positioned read
//!   of 136 bytes of `cache.db-shm`;
//! - `sqlite_autocommit`: a bare rusqlite `SELECT value FROM Cache WHERE key = ? AND raw = 1`,
//!   each read its own (implicit) transaction: the floor;
//! - `sqlite_in_txn`: the same SELECT with a read transaction kept open across 1,000 reads
//!   (`BEGIN; …; COMMIT`);
//! - `map_mutex` / `map_rwlock`: a `HashMap<String, Vec<u8>>` lookup (value cloned, as
//!   `Cache::get` returns an owned value) behind a `Mutex` / an `RwLock` shared by the threads;
//! - `shm_then_rwlock`: the header read followed by the `RwLock` lookup, what a hit in an
//!   in-process tier validated by the header would cost.
//!
//! - `getpid`: the cheapest system call (glibc does not cache it), the price of any syscall on
//!   this machine, for comparison with `shm_header`.
//!
//! Each figure is run five times. A line per figure and thread count:
//!
//! ```text
//! readpath op=cache_get threads=1 n=200000 us_per_op=2.811 median_us=2.902 mops_per_s=0.356
//! ```
//!
//! where `us_per_op` is the wall time one thread spends per read in the fastest run (other
//! jobs share the machine; the fastest run is the least disturbed), `median_us` the median run,
//! and `mops_per_s` the throughput of all threads together in the fastest run; then the ratios (`# ratio ...`). `--scale` multiplies
//! every operation count (0.1 for a quick look); `--only` measures one figure and `--threads` one
//! thread count (to count its system calls with `strace -f -c`, say).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::{Barrier, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use benches::data::{key, shuffled, value_100};
use benches::floor::default_pragmas;
use benches::walhdr::ShmReader;
use dcache::Cache;
use rusqlite::Connection;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Entries in the cache.
const ENTRIES: usize = 1_000;

/// Reads per open transaction for `sqlite_in_txn`.
const READS_PER_TXN: usize = 1_000;

/// Runs per figure; the fastest is reported (other jobs share the machine), with the median.
const RUNS: usize = 5;

/// Opens a connection as the SQLite floor does: dcache's per-connection pragmas.
fn connect(db: &Path) -> Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    for (pragma, value) in default_pragmas() {
        if ["cache_size", "mmap_size", "synchronous"].contains(&pragma) {
            conn.execute_batch(&format!("PRAGMA {pragma} = {value}"))?;
        }
    }
    Ok(conn)
}

/// What one thread does: `n` reads over the keys in `order`, returning an error on a miss.
type Body<'a> = dyn Fn(usize, &[usize]) -> Result<()> + Sync + 'a;

/// Runs `body` on `threads` threads started together; returns the slowest thread's wall time.
fn timed(threads: usize, n: usize, body: &Body<'_>) -> Result<Duration> {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || -> Result<Duration> {
                    let order = shuffled(ENTRIES, 7 + t as u64);
                    barrier.wait();
                    let start = Instant::now();
                    body(n, &order)?;
                    Ok(start.elapsed())
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for h in handles {
            let took = h.join().map_err(|_| "a measuring thread panicked")??;
            slowest = slowest.max(took);
        }
        Ok(slowest)
    })
}

/// The fastest and the median of [`RUNS`] runs, as microseconds per read per thread.
fn measure(threads: usize, n: usize, body: &Body<'_>) -> Result<(f64, f64)> {
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(timed(threads, n, body)?.as_secs_f64() * 1e6 / n as f64);
    }
    runs.sort_by(f64::total_cmp);
    Ok((runs[0], runs[RUNS / 2]))
}

fn missing(k: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("{k} missing: the cache was not populated").into()
}

struct Figures {
    rows: Vec<(&'static str, usize, f64)>,
    /// Measure only this figure (`--only`), for `strace -c` and the like.
    only: Option<String>,
}

impl Figures {
    fn run(&mut self, op: &'static str, threads: usize, n: usize, body: &Body<'_>) -> Result<()> {
        if self.only.as_deref().is_none_or(|only| only == op) {
            let us = measure(threads, n, body)?;
            self.record(op, threads, n, us);
        }
        Ok(())
    }

    fn record(&mut self, op: &'static str, threads: usize, n: usize, (us, median): (f64, f64)) {
        println!(
            "readpath op={op} threads={threads} n={n} us_per_op={us:.3} median_us={median:.3} \
             mops_per_s={:.3}",
            threads as f64 / us
        );
        self.rows.push((op, threads, us));
    }

    fn us(&self, op: &str, threads: usize) -> f64 {
        self.rows
            .iter()
            .find(|(o, t, _)| *o == op && *t == threads)
            .map_or(f64::NAN, |r| r.2)
    }

    /// Throughput with 2 threads over throughput with 1.
    fn scaling(&self, op: &str) -> f64 {
        2.0 * self.us(op, 1) / self.us(op, 2)
    }
}

fn main() -> Result<()> {
    let mut scale = 1.0f64;
    let mut only = None;
    let mut thread_counts = vec![1, 2];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => only = Some(args.next().ok_or("--only needs a figure name")?),
            "--threads" => {
                let t: usize = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|t| *t > 0)
                    .ok_or("--threads needs a positive number")?;
                thread_counts = vec![t];
            }
            "--scale" => {
                scale = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|s: &f64| *s > 0.0)
                    .ok_or("--scale needs a positive number")?;
            }
            other => {
                return Err(
                    format!("unknown argument {other}; usage: readpath [--scale F] [--only FIGURE] [--threads N]").into(),
                );
            }
        }
    }
    let count = |n: usize| ((n as f64 * scale) as usize).max(READS_PER_TXN);

    let dir = tempfile::tempdir()?;
    let cache = Cache::open(dir.path())?;
    cache.transact(|c| {
        for i in 0..ENTRIES {
            c.set(key(i).as_str(), value_100(i).as_slice())?;
        }
        Ok::<_, dcache::cache::Error>(())
    })?;
    let db = dir.path().join("cache.db");
    let keys: Vec<String> = (0..ENTRIES).map(key).collect();
    let map: HashMap<String, Vec<u8>> = (0..ENTRIES).map(|i| (key(i), value_100(i))).collect();
    let mutex = Mutex::new(map.clone());
    let rwlock = RwLock::new(map);
    let mut figures = Figures {
        rows: Vec::new(),
        only,
    };

    println!(
        "# readpath: {ENTRIES} entries of 100 bytes, {RUNS} runs per figure (fastest, and median), {} cores",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    for threads in thread_counts.iter().copied() {
        let n = count(200_000);
        figures.run("cache_get", threads, n, &|n, order| {
            let cache = cache.clone();
            for i in 0..n {
                let k = &keys[order[i % ENTRIES]];
                black_box(
                    cache
                        .get::<Vec<u8>>(k.as_str())?
                        .ok_or_else(|| missing(k))?,
                );
            }
            Ok(())
        })?;

        let n = count(1_000_000);
        figures.run("shm_header", threads, n, &|n, _| {
            let shm = ShmReader::open(&db)?;
            for _ in 0..n {
                black_box(shm.read()?.map_err(|why| why.to_string())?);
            }
            Ok(())
        })?;

        figures.run("getpid", threads, n, &|n, _| {
            for _ in 0..n {
                black_box(std::process::id());
            }
            Ok(())
        })?;

        let n = count(200_000);
        figures.run("sqlite_autocommit", threads, n, &|n, order| {
            let conn = connect(&db)?;
            let mut stmt = conn.prepare("SELECT value FROM Cache WHERE key = ? AND raw = 1")?;
            for i in 0..n {
                let k = &keys[order[i % ENTRIES]];
                let v: Vec<u8> = stmt.query_row([k], |r| r.get(0))?;
                black_box(v);
            }
            Ok(())
        })?;

        let n = count(200_000);
        figures.run("sqlite_in_txn", threads, n, &|n, order| {
            let conn = connect(&db)?;
            let mut stmt = conn.prepare("SELECT value FROM Cache WHERE key = ? AND raw = 1")?;
            for i in 0..n {
                if i % READS_PER_TXN == 0 {
                    if i > 0 {
                        conn.execute_batch("COMMIT")?;
                    }
                    conn.execute_batch("BEGIN")?;
                }
                let k = &keys[order[i % ENTRIES]];
                let v: Vec<u8> = stmt.query_row([k], |r| r.get(0))?;
                black_box(v);
            }
            conn.execute_batch("COMMIT")?;
            Ok(())
        })?;

        let n = count(2_000_000);
        figures.run("map_mutex", threads, n, &|n, order| {
            for i in 0..n {
                let k = &keys[order[i % ENTRIES]];
                let guard = mutex.lock().unwrap_or_else(PoisonError::into_inner);
                black_box(guard.get(k).cloned().ok_or_else(|| missing(k))?);
            }
            Ok(())
        })?;

        figures.run("map_rwlock", threads, n, &|n, order| {
            for i in 0..n {
                let k = &keys[order[i % ENTRIES]];
                let guard = rwlock.read().unwrap_or_else(PoisonError::into_inner);
                black_box(guard.get(k).cloned().ok_or_else(|| missing(k))?);
            }
            Ok(())
        })?;

        let n = count(1_000_000);
        figures.run("shm_then_rwlock", threads, n, &|n, order| {
            let shm = ShmReader::open(&db)?;
            for i in 0..n {
                black_box(shm.read()?.map_err(|why| why.to_string())?);
                let k = &keys[order[i % ENTRIES]];
                let guard = rwlock.read().unwrap_or_else(PoisonError::into_inner);
                black_box(guard.get(k).cloned().ok_or_else(|| missing(k))?);
            }
            Ok(())
        })?;
    }

    if figures.only.is_some() || thread_counts != [1, 2] {
        return Ok(());
    }
    let f = &figures;
    println!(
        "# ratio shm_header/cache_get (1 thread) = {:.3}",
        f.us("shm_header", 1) / f.us("cache_get", 1)
    );
    println!(
        "# ratio sqlite_in_txn/sqlite_autocommit (1 thread) = {:.3}, (2 threads) = {:.3}",
        f.us("sqlite_in_txn", 1) / f.us("sqlite_autocommit", 1),
        f.us("sqlite_in_txn", 2) / f.us("sqlite_autocommit", 2)
    );
    println!(
        "# ratio shm_then_rwlock/sqlite_autocommit (1 thread) = {:.3}",
        f.us("shm_then_rwlock", 1) / f.us("sqlite_autocommit", 1)
    );
    for op in [
        "cache_get",
        "shm_header",
        "getpid",
        "sqlite_autocommit",
        "sqlite_in_txn",
        "map_mutex",
        "map_rwlock",
        "shm_then_rwlock",
    ] {
        println!(
            "# scaling {op}: 2-thread/1-thread throughput = {:.3}",
            f.scaling(op)
        );
    }
    Ok(())
}
