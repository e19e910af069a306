//! Concurrency: 4 processes × 2 threads run a random mix of set, get, add, delete, incr, push
//! and pull on 1,000 keys through retrying handles for a bounded time, on a `Cache` and on a
//! `FanoutCache` (its queue is a deque sub-collection). Then the parent checks every
//! acknowledged write against a model:
//!
//! - each thread owns 124 keys and a counter: their final values are exactly what it last
//!   wrote (and every get, add and delete it made agreed with its model as it went);
//! - 8 counters are shared by all threads: each ends at the sum of every acknowledged
//!   increment;
//! - one queue is shared by all threads: every pushed item was pulled exactly once or is
//!   still queued, nothing else is;
//! - any value read from another thread's key is one that thread wrote, whole;
//! - `check(false)` is clean and `len()` counts exactly the entries expected.
//!
//! Any error reaching a caller (a `database is locked`, a timeout: every handle retries)
//! fails the test. `DCACHE_CONCURRENCY_SECS` sets how long the workers run (default 3;
//! `cargo xtask soak` runs 60); `DCACHE_CONCURRENCY_SEED` replays a run.

mod reliability;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use dcache::CheckMode;
use dcache::{Cache, Deque, FanoutCache, Side, Value};
use reliability::{Rng, child_command, env_count, figure, payload};
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const CHILD_DIR: &str = "DCACHE_CONCURRENCY_CHILD_DIR";
const CHILD_REPORT: &str = "DCACHE_CONCURRENCY_CHILD_REPORT";
const CHILD_PROC: &str = "DCACHE_CONCURRENCY_CHILD_PROC";
const CHILD_SEED: &str = "DCACHE_CONCURRENCY_CHILD_SEED";
const CHILD_MILLIS: &str = "DCACHE_CONCURRENCY_CHILD_MILLIS";
const SECS: &str = "DCACHE_CONCURRENCY_SECS";
const SEED: &str = "DCACHE_CONCURRENCY_SEED";

const PROCESSES: u64 = 4;
const THREADS: u64 = 2;
/// Keys each thread owns: 4 × 2 × 124 = 992, plus 8 shared counters = 1,000 keys.
const OWN_KEYS: u64 = 124;
const SHARED_COUNTERS: u64 = 8;
const MIN_FILE_SIZE: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cache,
    Fanout,
}

/// A value that names its key and version, so that any reader can tell it is whole and
/// belongs where it was found: `[key length][key][version][payload(len, seed(key, version))]`.
fn encode(key: &str, version: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len() + 8 + len);
    out.push(u8::try_from(key.len()).expect("short keys"));
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&payload(len, seed_of(key, version)));
    out
}

fn seed_of(key: &str, version: u64) -> u64 {
    key.bytes().fold(version ^ 0x5151, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The version of a value read under `key`; an error if the value is torn or misplaced.
fn decode(key: &str, bytes: &[u8]) -> Result<(u64, usize), String> {
    let bad = || format!("a value read under {key:?} is not one written there whole");
    let (&n, rest) = bytes.split_first().ok_or_else(bad)?;
    let (name, rest) = rest.split_at_checked(usize::from(n)).ok_or_else(bad)?;
    if name != key.as_bytes() {
        return Err(bad());
    }
    let (version, data) = rest.split_at_checked(8).ok_or_else(bad)?;
    let version = u64::from_le_bytes(version.try_into().map_err(|_| bad())?);
    if data != payload(data.len(), seed_of(key, version)) {
        return Err(bad());
    }
    Ok((version, data.len()))
}

fn own_key(proc: u64, thread: u64, n: u64) -> String {
    format!("o{proc}-{thread}-{n}")
}

fn own_counter(proc: u64, thread: u64) -> String {
    format!("n{proc}-{thread}")
}

fn shared_counter(n: u64) -> String {
    format!("s{n}")
}

// ----- the store -----

#[derive(Clone)]
enum Store {
    Cache(Cache),
    Fanout(FanoutCache, Deque<Vec<u8>>),
}

type StoreResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Store {
    fn open(kind: Kind, dir: &Path) -> StoreResult<Store> {
        Ok(match kind {
            Kind::Cache => Store::Cache(
                Cache::builder()
                    .disk_min_file_size(MIN_FILE_SIZE)
                    .open(dir)?
                    .retrying(),
            ),
            Kind::Fanout => {
                let fanout = FanoutCache::builder()
                    .shards(4)
                    .cache(Cache::builder().disk_min_file_size(MIN_FILE_SIZE))
                    .open(dir)?
                    .retrying();
                let deque = fanout.deque("queue")?;
                Store::Fanout(fanout, deque)
            }
        })
    }

    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        match self {
            Store::Cache(c) => c.set(key, value)?,
            Store::Fanout(f, _) => {
                if !f.set(key, value)? {
                    return Err("a retrying FanoutCache's set returned false".into());
                }
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(match self {
            Store::Cache(c) => c.get_bytes(key)?,
            Store::Fanout(f, _) => f.get_bytes(key)?,
        })
    }

    fn add(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        Ok(match self {
            Store::Cache(c) => c.add(key, value)?,
            Store::Fanout(f, _) => f.add(key, value)?,
        })
    }

    fn delete(&self, key: &str) -> StoreResult<bool> {
        Ok(match self {
            Store::Cache(c) => c.delete(key)?,
            Store::Fanout(f, _) => f.delete(key)?,
        })
    }

    fn incr(&self, key: &str, delta: i64) -> StoreResult<i64> {
        match self {
            Store::Cache(c) => Ok(c.incr(key, delta)?),
            Store::Fanout(f, _) => f
                .incr(key, delta)?
                .ok_or_else(|| "a retrying FanoutCache's incr returned None".into()),
        }
    }

    fn push(&self, value: &[u8]) -> StoreResult<()> {
        match self {
            Store::Cache(c) => {
                c.push(value)?;
            }
            Store::Fanout(_, d) => d.push_back(value)?,
        }
        Ok(())
    }

    fn pull(&self) -> StoreResult<Option<Vec<u8>>> {
        match self {
            Store::Cache(c) => Ok(c.pull::<Vec<u8>>(None, Side::Front)?.map(|(_, e)| e.value)),
            Store::Fanout(_, d) => Ok(d.pop_front()?),
        }
    }
}

// ----- the workers -----

/// What one thread did and what it expects to find.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Report {
    /// Operations acknowledged, by name.
    ops: BTreeMap<String, u64>,
    /// Own keys present at the end: version and payload length.
    own: BTreeMap<String, (u64, usize)>,
    /// Own counters' final values.
    own_counters: BTreeMap<String, i64>,
    /// Acknowledged increments of each shared counter.
    shared: BTreeMap<String, i64>,
    /// Queue items pushed and pulled (their ids).
    pushed: Vec<u64>,
    pulled: Vec<u64>,
    /// Reads of other threads' keys, each verified whole.
    foreign_reads: u64,
}

impl Report {
    fn merge(&mut self, other: Report) {
        for (k, v) in other.ops {
            *self.ops.entry(k).or_default() += v;
        }
        self.own.extend(other.own);
        self.own_counters.extend(other.own_counters);
        for (k, v) in other.shared {
            *self.shared.entry(k).or_default() += v;
        }
        self.pushed.extend(other.pushed);
        self.pulled.extend(other.pulled);
        self.foreign_reads += other.foreign_reads;
    }
}

fn count(report: &mut Report, op: &str) {
    *report.ops.entry(op.to_owned()).or_default() += 1;
}

fn value_len(rng: &mut Rng) -> usize {
    if rng.chance(2, 3) {
        rng.below(100) as usize
    } else {
        rng.range(MIN_FILE_SIZE, 8 * 1024) as usize
    }
}

fn worker(store: &Store, proc: u64, thread: u64, seed: u64, until: Instant) -> StoreResult<Report> {
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    // Own keys: version and length of the current value (absent: not stored).
    let mut own: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    let counter = own_counter(proc, thread);
    let mut counter_value = 0i64;
    let mut counter_used = false;
    let mut version = 0u64;
    let mut seq = 0u64;
    while Instant::now() < until {
        let key = own_key(proc, thread, rng.below(OWN_KEYS));
        match rng.below(16) {
            0..=3 => {
                version += 1;
                let len = value_len(&mut rng);
                store.set(&key, &encode(&key, version, len))?;
                own.insert(key, (version, len));
                count(&mut report, "set");
            }
            4 | 5 => {
                let got = store.get(&key)?;
                let got = got.map(|b| decode(&key, &b)).transpose()?;
                assert_eq!(
                    got,
                    own.get(&key).copied(),
                    "get {key} disagrees with its only writer"
                );
                count(&mut report, "get");
            }
            6 | 7 => {
                let other = own_key(
                    rng.below(PROCESSES),
                    rng.below(THREADS),
                    rng.below(OWN_KEYS),
                );
                if let Some(bytes) = store.get(&other)? {
                    decode(&other, &bytes)?;
                    report.foreign_reads += 1;
                }
                count(&mut report, "get");
            }
            8 => {
                version += 1;
                let len = value_len(&mut rng);
                let added = store.add(&key, &encode(&key, version, len))?;
                assert_eq!(
                    added,
                    !own.contains_key(&key),
                    "add {key} disagrees with its only writer"
                );
                if added {
                    own.insert(key, (version, len));
                }
                count(&mut report, "add");
            }
            9 => {
                let deleted = store.delete(&key)?;
                assert_eq!(
                    deleted,
                    own.remove(&key).is_some(),
                    "delete {key} disagrees with its only writer"
                );
                count(&mut report, "delete");
            }
            10 => {
                let delta = rng.range(0, 21) as i64 - 10;
                counter_value += delta;
                counter_used = true;
                assert_eq!(
                    store.incr(&counter, delta)?,
                    counter_value,
                    "incr {counter}"
                );
                count(&mut report, "incr");
            }
            11 | 12 => {
                let name = shared_counter(rng.below(SHARED_COUNTERS));
                let delta = rng.range(1, 10) as i64;
                store.incr(&name, delta)?;
                *report.shared.entry(name).or_default() += delta;
                count(&mut report, "incr");
            }
            13 | 14 => {
                seq += 1;
                let id = (proc << 48) | (thread << 40) | seq;
                store.push(&encode("queue", id, value_len(&mut rng)))?;
                report.pushed.push(id);
                count(&mut report, "push");
            }
            _ => {
                if let Some(bytes) = store.pull()? {
                    report.pulled.push(decode("queue", &bytes)?.0);
                }
                count(&mut report, "pull");
            }
        }
    }
    report.own = own;
    if counter_used {
        report.own_counters.insert(counter, counter_value);
    }
    Ok(report)
}

fn child_main(kind: Kind) -> TestResult {
    let dir = std::env::var(CHILD_DIR)?;
    let proc: u64 = std::env::var(CHILD_PROC)?.parse()?;
    let seed: u64 = std::env::var(CHILD_SEED)?.parse()?;
    let millis: u64 = std::env::var(CHILD_MILLIS)?.parse()?;
    let store = Store::open(kind, Path::new(&dir))?;
    let until = Instant::now() + Duration::from_millis(millis);
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = store.clone();
            let seed = seed ^ (thread + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            std::thread::spawn(move || worker(&store, proc, thread, seed, until))
        })
        .collect();
    let mut report = Report::default();
    for h in handles {
        report.merge(h.join().map_err(|_| "a worker panicked")??);
    }
    std::fs::write(std::env::var(CHILD_REPORT)?, serde_json::to_vec(&report)?)?;
    Ok(())
}

/// Keys with their values, and the queue's items, front first.
type Contents = (BTreeMap<String, Value>, Vec<Vec<u8>>);

/// Everything in the store at the end.
fn contents(store: &Store) -> StoreResult<Contents> {
    let mut entries = BTreeMap::new();
    let mut queue = Vec::new();
    match store {
        Store::Cache(c) => {
            for item in c.items::<Value, Value>()? {
                match item? {
                    (Value::Str(k), v) => {
                        entries.insert(k, v);
                    }
                    (Value::Int(_), Value::Bytes(b)) => queue.push(b),
                    other => return Err(format!("unexpected entry {other:?}").into()),
                }
            }
        }
        Store::Fanout(f, d) => {
            for key in f.keys::<String>() {
                let key = key?;
                let value = f
                    .get::<Value>(&key)?
                    .ok_or_else(|| format!("{key} listed but not readable"))?;
                entries.insert(key, value);
            }
            for item in d {
                queue.push(item?);
            }
        }
    }
    Ok((entries, queue))
}

fn run(kind: Kind, test_name: &str) -> TestResult {
    if std::env::var_os(CHILD_DIR).is_some() {
        return child_main(kind);
    }
    let secs = env_count(SECS, 3);
    let mut rng = Rng::new(Rng::seed_from_env(SEED));
    let dir = tempfile::tempdir()?;
    let reports = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temporary path is not UTF-8")?;
    let millis = (secs * 1000).to_string();
    let started = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|proc| {
            let report = reports.path().join(format!("{proc}.json"));
            let seed = rng.next_u64().to_string();
            let proc = proc.to_string();
            child_command(
                test_name,
                &[
                    (CHILD_DIR, path),
                    (CHILD_PROC, &proc),
                    (CHILD_SEED, &seed),
                    (CHILD_MILLIS, &millis),
                    (CHILD_REPORT, report.to_str().expect("UTF-8 path")),
                ],
                None,
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .map(reliability::KillOnDrop)
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        let status = child.0.wait()?;
        assert!(status.success(), "a worker process failed: {status}");
    }
    let elapsed = started.elapsed();
    let mut all = Report::default();
    for proc in 0..PROCESSES {
        let bytes = std::fs::read(reports.path().join(format!("{proc}.json")))?;
        all.merge(serde_json::from_slice(&bytes)?);
    }

    let store = Store::open(kind, dir.path())?;
    let (mut entries, queue) = contents(&store)?;
    let mut verified = 0u64;
    // Own keys: exactly the last acknowledged write of their only writer.
    for (key, &(version, len)) in &all.own {
        let value = entries
            .remove(key)
            .ok_or_else(|| format!("{key} was lost"))?;
        let Value::Bytes(bytes) = value else {
            return Err(format!("{key} holds {value:?}").into());
        };
        assert_eq!(
            decode(key, &bytes)?,
            (version, len),
            "{key} is not its last write"
        );
        verified += 1;
    }
    for (key, &expected) in &all.own_counters {
        let value = entries
            .remove(key)
            .ok_or_else(|| format!("{key} was lost"))?;
        assert_eq!(value, Value::Int(expected), "counter {key}");
        verified += 1;
    }
    for (key, &expected) in &all.shared {
        let value = entries
            .remove(key)
            .ok_or_else(|| format!("{key} was lost"))?;
        assert_eq!(
            value,
            Value::Int(expected),
            "shared counter {key} lost increments"
        );
        verified += 1;
    }
    assert!(
        entries.is_empty(),
        "entries nobody acknowledged: {:?}",
        entries.keys()
    );
    // The queue: pushed = pulled + still queued, each exactly once.
    let mut remaining = Vec::new();
    for item in &queue {
        remaining.push(decode("queue", item)?.0);
    }
    let pushed: BTreeSet<u64> = all.pushed.iter().copied().collect();
    assert_eq!(pushed.len(), all.pushed.len(), "a push id repeated");
    let mut out: Vec<u64> = all.pulled.iter().chain(&remaining).copied().collect();
    out.sort_unstable();
    let unique: BTreeSet<u64> = out.iter().copied().collect();
    assert_eq!(
        unique.len(),
        out.len(),
        "an item was pulled twice (or pulled and still queued)"
    );
    assert_eq!(unique, pushed, "queue items lost or invented");
    verified += remaining.len() as u64;

    let caches: Vec<Cache> = match &store {
        Store::Cache(c) => vec![c.clone()],
        Store::Fanout(f, d) => {
            let mut all = f.shards().to_vec();
            all.push(d.cache().clone());
            all
        }
    };
    let mut rows = 0;
    for cache in &caches {
        let warnings = cache.check(CheckMode::Report)?;
        assert!(warnings.is_empty(), "check found {warnings:?}");
        rows += cache.len()?;
    }
    let expected_rows = all.own.len() + all.own_counters.len() + all.shared.len() + remaining.len();
    assert_eq!(
        rows as usize, expected_rows,
        "len() counts other entries than expected"
    );

    let suite = format!(
        "concurrency-{}",
        if kind == Kind::Cache {
            "cache"
        } else {
            "fanout"
        }
    );
    let total: u64 = all.ops.values().sum();
    figure(
        &suite,
        "processes_x_threads",
        format!("{PROCESSES}x{THREADS}"),
    );
    figure(&suite, "seconds", format!("{:.1}", elapsed.as_secs_f64()));
    figure(&suite, "operations", total);
    for (op, n) in &all.ops {
        figure(&suite, &format!("op_{op}"), n);
    }
    figure(&suite, "foreign_reads_verified", all.foreign_reads);
    figure(&suite, "queue_items_pushed", all.pushed.len());
    figure(&suite, "entries_verified", verified);
    Ok(())
}

#[test]
fn processes_and_threads_sharing_a_cache_lose_nothing() -> TestResult {
    run(
        Kind::Cache,
        "processes_and_threads_sharing_a_cache_lose_nothing",
    )
}

#[test]
fn processes_and_threads_sharing_a_fanout_cache_lose_nothing() -> TestResult {
    run(
        Kind::Fanout,
        "processes_and_threads_sharing_a_fanout_cache_lose_nothing",
    )
}

/// A key that always has a value never reads as a miss while another thread overwrites it
/// (values in files: the writer unlinks the old file after its commit, possibly between a
/// reader's row read and its file read).
#[test]
fn a_key_overwritten_concurrently_never_reads_as_a_miss() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cache = Cache::builder()
        .disk_min_file_size(16)
        .open(dir.path())?
        .retrying();
    cache.set("k", vec![0u8; 100])?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || -> dcache::cache::Result<u64> {
            let mut writes = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                writes += 1;
                cache.set("k", vec![writes as u8; 100])?;
            }
            Ok(writes)
        })
    };
    let started = Instant::now();
    let mut reads = 0u64;
    let mut misses = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        reads += 1;
        match cache.get_bytes("k")? {
            Some(v) => assert_eq!(v.len(), 100),
            None => misses += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().map_err(|_| "the writer panicked")??;
    assert_eq!(
        misses, 0,
        "{misses} of {reads} reads missed during {writes} overwrites"
    );
    figure("concurrency", "reads_during_overwrites", reads);
    Ok(())
}
