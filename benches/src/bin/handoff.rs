//! Measures a `Lock` hand-off: the time from a release in one process to the acquisition
//! returning in another process that was waiting for it (and, for comparison, between two
//! threads of one process, and between two tasks of one process with the async
//! `dcache::future::Lock` on a multi-threaded tokio runtime).
//!
//! ```text
//! cargo run --release -p benches --bin handoff -- [--handoffs N] [--hold-us US]
//! ```
//!
//! Two participants take turns: each holds the lock for `--hold-us` (default 2000) while the
//! other waits in `acquire`, then releases it. A participant stamps the wall clock just
//! before calling `unlock` and just after `acquire` returns; the hand-off latency is the
//! waiter's stamp minus the releaser's. It prints a figure line (docs/benchmarks.md, the median as
//! `us_per_op`) and a comment with the tail for each setting; `cargo xtask bench` runs it:
//!
//! ```text
//! impl=dcache kind=lock op=handoff_processes n=300 us_per_op=...
//! # handoff_processes hold_us=2000 p99_us=... max_us=...
//! ```
//!
//! It also prints, as a comment, what a short store read costs on a tokio worker inline and
//! through `spawn_blocking` (the async API's rule sends every store operation to the blocking
//! pool): `# async_get inline_us=... spawn_blocking_us=...`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dcache::{Cache, EvictionPolicy, Lock};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One stamped event: `(acquisition number, released?, wall-clock ns)`.
type Event = (u64, bool, u128);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn open(dir: &Path) -> Result<Cache> {
    Ok(Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(dir)?)
}

/// One participant: take turns with the other until `handoffs` acquisitions were made.
fn participate(dir: &Path, handoffs: u64, hold: Duration) -> Result<Vec<Event>> {
    let cache = open(dir)?.retrying();
    let lock = Lock::new(cache.clone(), "handoff");
    // Start together, so that nobody's first wait includes the other's start-up.
    cache.incr("ready", 1)?;
    while cache.get::<i64>("ready")?.unwrap_or(0) < 2 {
        std::thread::sleep(Duration::from_micros(50));
    }
    let mut events = Vec::new();
    loop {
        let guard = lock.acquire()?;
        let acquired = now_ns();
        let seq = cache.get::<u64>("seq")?.unwrap_or(0);
        cache.set("seq", seq + 1)?;
        if seq >= handoffs {
            guard.unlock()?;
            return Ok(events);
        }
        events.push((seq, false, acquired));
        std::thread::sleep(hold);
        events.push((seq, true, now_ns()));
        guard.unlock()?;
        // Let the other participant take the next turn; then wait for the one after it.
        while cache.get::<u64>("seq")?.unwrap_or(0) < seq + 2 {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

/// Latencies (µs) from each release to the next acquisition.
fn latencies(events: &[Event]) -> Vec<f64> {
    let mut released = std::collections::HashMap::new();
    let mut acquired = std::collections::HashMap::new();
    for &(seq, is_release, t) in events {
        if is_release {
            released.insert(seq, t);
        } else {
            acquired.insert(seq, t);
        }
    }
    let mut out: Vec<f64> = released
        .iter()
        .filter_map(|(seq, rel)| {
            let acq = acquired.get(&(seq + 1))?;
            Some(acq.saturating_sub(*rel) as f64 / 1000.0)
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

fn report(op: &str, hold: Duration, mut lat: Vec<f64>) {
    lat.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
        lat.get(i).copied().unwrap_or(f64::NAN)
    };
    println!(
        "impl=dcache kind=lock op={op} n={} us_per_op={:.1}",
        lat.len(),
        pick(0.5)
    );
    println!(
        "# {op} hold_us={} p99_us={:.1} max_us={:.1}",
        hold.as_micros(),
        pick(0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
}

fn parse_events(text: &str) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(seq), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if kind == "acq" || kind == "rel" {
            events.push((seq.parse()?, kind == "rel", t.parse()?));
        }
    }
    Ok(events)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let (Some(dir), Some(n), Some(hold)) = (args.get(2), args.get(3), args.get(4)) else {
            return Err("usage: handoff child DIR HANDOFFS HOLD_US".into());
        };
        let events = participate(
            Path::new(dir),
            n.parse()?,
            Duration::from_micros(hold.parse()?),
        )?;
        for (seq, is_release, t) in events {
            println!("{} {seq} {t}", if is_release { "rel" } else { "acq" });
        }
        return Ok(());
    }
    let mut handoffs: u64 = 300;
    let mut hold_us: u64 = 2000;
    let mut it = args.iter().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or("a flag without a value")?;
        match flag.as_str() {
            "--handoffs" => handoffs = value.parse()?,
            "--hold-us" => hold_us = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let hold = Duration::from_micros(hold_us);

    // Two processes.
    let dir = tempfile::tempdir()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["child", &dir.path().to_string_lossy()])
        .args([handoffs.to_string(), hold_us.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut events = participate(dir.path(), handoffs, hold)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("the child failed: {}", out.status).into());
    }
    let child_events = parse_events(&String::from_utf8_lossy(&out.stdout))?;
    let mine: std::collections::HashSet<u64> = events.iter().map(|e| e.0).collect();
    let theirs: std::collections::HashSet<u64> = child_events.iter().map(|e| e.0).collect();
    if mine.intersection(&theirs).next().is_some() {
        return Err("both processes recorded the same acquisition".into());
    }
    events.extend(child_events);
    report("handoff_processes", hold, latencies(&events));

    // Two threads of one process.
    let dir = tempfile::tempdir()?;
    let events = std::thread::scope(|s| -> Result<Vec<Event>> {
        let other = s.spawn(|| participate(dir.path(), handoffs, hold));
        let mut events = participate(dir.path(), handoffs, hold)?;
        events.extend(other.join().map_err(|_| "thread panicked")??);
        Ok(events)
    })?;
    report("handoff_threads", hold, latencies(&events));

    // Two tasks of one process, on a multi-threaded runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    let dir = tempfile::tempdir()?;
    let events = runtime.block_on(async {
        let cache = open(dir.path())?;
        let other = tokio::spawn(participate_async(cache.clone(), handoffs, hold));
        let mut events = participate_async(cache, handoffs, hold).await?;
        events.extend(other.await??);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(events)
    })?;
    report("handoff_tasks", hold, latencies(&events));

    let dir = tempfile::tempdir()?;
    let (inline, pooled) = runtime.block_on(store_read_costs(open(dir.path())?))?;
    println!("# async_get inline_us={inline:.2} spawn_blocking_us={pooled:.2}");
    Ok(())
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// [`participate`] as a task: the async lock, the store reads and writes on the blocking
/// pool, async sleeps.
async fn participate_async(cache: Cache, handoffs: u64, hold: Duration) -> Result<Vec<Event>> {
    let lock = dcache::future::Lock::new(cache.clone(), "handoff".to_owned());
    let seq_now = |cache: &Cache| {
        let cache = cache.clone();
        blocking(move || cache.get::<u64>("seq").map(|s| s.unwrap_or(0)))
    };
    let c = cache.clone();
    blocking(move || c.incr("ready", 1)).await??;
    loop {
        let c = cache.clone();
        if blocking(move || c.get::<i64>("ready")).await??.unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_micros(50)).await;
    }
    let mut events = Vec::new();
    loop {
        let guard = lock.acquire().await?;
        let acquired = now_ns();
        let seq = seq_now(&cache).await??;
        let c = cache.clone();
        blocking(move || c.set("seq", seq + 1)).await??;
        if seq >= handoffs {
            guard.unlock().await?;
            return Ok(events);
        }
        events.push((seq, false, acquired));
        tokio::time::sleep(hold).await;
        events.push((seq, true, now_ns()));
        guard.unlock().await?;
        while seq_now(&cache).await?? < seq + 2 {
            tokio::time::sleep(Duration::from_micros(20)).await;
        }
    }
}

/// The mean cost (µs) of a read of a small cached value from a task: inline on the worker,
/// and through `spawn_blocking`.
async fn store_read_costs(cache: Cache) -> Result<(f64, f64)> {
    const READS: u32 = 20_000;
    cache.set("small", 42_u64)?;
    let started = std::time::Instant::now();
    for _ in 0..READS {
        std::hint::black_box(cache.get::<u64>("small")?);
    }
    let inline = started.elapsed().as_secs_f64() * 1e6 / f64::from(READS);
    let started = std::time::Instant::now();
    for _ in 0..READS {
        let c = cache.clone();
        std::hint::black_box(blocking(move || c.get::<u64>("small")).await??);
    }
    let pooled = started.elapsed().as_secs_f64() * 1e6 / f64::from(READS);
    Ok((inline, pooled))
}
