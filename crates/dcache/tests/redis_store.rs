//! `RedisStore` against a real server (`DCACHE_REDIS_URL`): the `Storage` contract, leases on
//! real time (the generic suites move a manual clock, which a Redis server does not follow),
//! fencing tokens on every store, and what python reads.

mod common;

use common::stores::{CacheFixture, Fixture, RedisFixture, redis_prefix};
use common::{in_threads, spawn_child};

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dcache::cache::Error;
use dcache::sync::Error as SyncError;
use dcache::{BoundedSemaphore, Lock, MemoizeStampede, SetOptions, Storage, Tag, Update};
use dcache_redis::RedisStore;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn open(dir: &Path) -> Result<Option<RedisStore>, Box<dyn std::error::Error + Send + Sync>> {
    if !RedisFixture::available() {
        return Ok(None);
    }
    Ok(Some(RedisFixture::open(dir)?))
}

macro_rules! store {
    ($dir:expr) => {
        match open($dir)? {
            Some(store) => store,
            None => return Ok(()),
        }
    };
}

fn close(a: SystemTime, b: SystemTime, within: Duration) -> bool {
    a.duration_since(b).or_else(|e| Ok::<_, ()>(e.duration())) <= Ok(within)
}

#[test]
fn storage_contract() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    let now = store.server_time()?;
    assert!(close(store.now(), now, Duration::from_millis(200)));

    // set / get_entry with expiry and tag.
    let opts = SetOptions::new().expire(Duration::from_secs(60)).tag("t");
    store.set("k", &("a", 1), opts.clone())?;
    let e = store.get_entry::<(String, i64)>("k")?.ok_or("missing")?;
    assert_eq!(e.value, ("a".to_owned(), 1));
    assert_eq!(e.tag, Some(Tag::from("t")));
    let expires = e.expire_time.ok_or("no expiry")?;
    assert!(close(
        expires,
        now + Duration::from_secs(60),
        Duration::from_secs(1)
    ));
    store.set("plain", "v", SetOptions::new())?;
    let e = store.get_entry::<String>("plain")?.ok_or("missing")?;
    assert_eq!((e.value.as_str(), e.expire_time, e.tag), ("v", None, None));

    // add: only when absent; expired entries do not exist.
    assert!(!store.add("k", &2, SetOptions::new())?);
    assert!(store.add(
        "short",
        &1,
        SetOptions::new().expire(Duration::from_millis(50))
    )?);
    assert!(!store.add("short", &2, SetOptions::new())?);
    std::thread::sleep(Duration::from_millis(120));
    assert!(store.get_entry::<i64>("short")?.is_none());
    assert!(store.add("short", &3, SetOptions::new())?);
    assert!(store.add("zero", &1, SetOptions::new().expire(Duration::ZERO))?);
    assert!(store.get_entry::<i64>("zero")?.is_none());

    // delete.
    assert!(store.delete("short")?);
    assert!(!store.delete("short")?);

    // incr: default, missing, keeps expiry and tag, refuses non-integers and overflow.
    assert!(matches!(
        store.incr("n", 1, None, SetOptions::new()),
        Err(Error::KeyNotFound)
    ));
    let o = SetOptions::new().expire(Duration::from_secs(30)).tag(7);
    assert_eq!(store.incr("n", 5, Some(10), o)?, 15);
    assert_eq!(store.incr("n", -3, Some(0), SetOptions::new())?, 12);
    let e = store.get_entry::<i64>("n")?.ok_or("missing")?;
    assert_eq!((e.value, e.tag), (12, Some(Tag::Integer(7))));
    assert!(e.expire_time.is_some(), "incr keeps the expiry");
    assert!(matches!(
        store.incr("k", 1, Some(0), SetOptions::new()),
        Err(Error::NotAnInteger { .. })
    ));
    store.set("max", &i64::MAX, SetOptions::new())?;
    assert!(matches!(
        store.incr("max", 1, Some(0), SetOptions::new()),
        Err(Error::Overflow)
    ));

    // update: set, keep, delete.
    let r = store.update::<i64, _, _>("u", SetOptions::new(), |cur| {
        (Update::Set(cur.unwrap_or(0) + 1), "set")
    })?;
    assert_eq!(r, "set");
    let r = store.update::<i64, _, _>("u", SetOptions::new(), |cur| (Update::Keep, cur))?;
    assert_eq!(r, Some(1));
    store.update::<i64, _, _>("u", SetOptions::new(), |_| (Update::Delete, ()))?;
    assert!(store.get_entry::<i64>("u")?.is_none());

    // Stores with different prefixes do not see each other's keys.
    let other = RedisStore::builder(&common::stores::redis_url().ok_or("url")?)
        .prefix(format!("{}other:", redis_prefix(dir.path())))
        .open()?;
    assert!(other.get_entry::<String>("plain")?.is_none());
    assert!(store.clear()? >= 4);
    assert!(store.get_entry::<String>("plain")?.is_none());
    Ok(())
}

#[test]
fn update_reruns_its_closure_when_the_key_changed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    let other = RedisFixture::open(dir.path())?;
    store.set("x", &0i64, SetOptions::new())?;
    let calls = Cell::new(0);
    let seen = store.update::<i64, _, _>("x", SetOptions::new(), |cur| {
        calls.set(calls.get() + 1);
        if calls.get() == 1 {
            // Another client writes between this read and the EXEC: the EXEC aborts.
            other
                .set("x", &100i64, SetOptions::new())
                .expect("concurrent write");
        }
        let cur = cur.unwrap_or(-1);
        (Update::Set(cur + 1), cur)
    })?;
    assert_eq!(calls.get(), 2, "the closure ran again on the new value");
    assert_eq!(seen, 100);
    assert_eq!(store.get_entry::<i64>("x")?.map(|e| e.value), Some(101));

    // Many writers, no lost update.
    in_threads(8, |_| -> dcache::cache::Result<()> {
        for _ in 0..100 {
            store.update::<i64, _, _>("y", SetOptions::new(), |cur| {
                (Update::Set(cur.unwrap_or(0) + 1), ())
            })?;
        }
        Ok(())
    })?;
    assert_eq!(store.get_entry::<i64>("y")?.map(|e| e.value), Some(800));
    Ok(())
}

#[test]
fn a_lost_lease_is_reported_and_its_fence_is_older() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    let lease = Duration::from_millis(300);
    let first = Lock::new(store.clone(), "lease").expire(lease);
    let second = Lock::new(store.clone(), "lease").expire(lease);
    let a = first.acquire()?;
    assert!(second.try_acquire()?.is_none());
    let entry = store.get_entry::<String>("lease")?.ok_or("no lock key")?;
    let left = entry
        .expire_time
        .ok_or("no expiry")?
        .duration_since(store.now())
        .unwrap_or_default();
    // The local estimate of the server clock is within a round trip of it.
    assert!(left <= lease + Duration::from_millis(50), "{left:?}");
    std::thread::sleep(lease + Duration::from_millis(100));
    assert!(!a.is_held()?);
    let b = second
        .acquire_timeout(Duration::from_secs(5))
        .map_err(|e| format!("free after the lease: {e}"))?;
    assert!(b.fencing_token() > a.fencing_token());
    assert!(matches!(a.unlock(), Err(SyncError::LockLost { .. })));
    assert!(b.is_held()?, "a's release must not remove b's lock");
    b.unlock()?;

    // A semaphore's permits come back when its key expires.
    let sem = BoundedSemaphore::new(store.clone(), "sem", 2).expire(Duration::from_millis(300));
    let p1 = sem.acquire()?;
    let _p2 = sem.acquire()?;
    assert!(sem.try_acquire()?.is_none());
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(sem.available()?, 2);
    assert!(matches!(p1.release(), Err(SyncError::OverRelease { .. })));
    Ok(())
}

#[test]
fn a_lost_fence_counter_restarts_above_the_old_tokens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    let lock = Lock::new(store.clone(), "fenced");
    let t1 = lock.acquire()?.fencing_token();
    let t2 = lock.acquire()?.fencing_token();
    assert_eq!(t2, t1 + 1);
    // The counter is lost (a server restarted without persistence, say).
    assert!(store.delete(&("fenced", dcache::sync::FENCE_SUFFIX))?);
    let t3 = lock.acquire()?.fencing_token();
    assert!(t3 > t2, "{t3} after {t2}");
    // Without fencing: no counter, token 0, the same exclusion.
    let plain = Lock::new(store.clone(), "plain").without_fencing();
    let g = plain.acquire()?;
    assert_eq!(g.fencing_token(), 0);
    assert!(plain.try_acquire()?.is_none());
    assert!(
        store
            .get_entry::<i64>(&("plain", dcache::sync::FENCE_SUFFIX))?
            .is_none()
    );
    g.unlock()?;
    Ok(())
}

#[test]
fn warm_stampede_recomputes_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    // -5 s * ln(0.25) = 6.9 s >= the 5 s left: every caller wants an early recompute.
    let memo = MemoizeStampede::new(store.clone(), "f", Duration::from_secs(60)).random(|| 0.25);
    store.set(
        &memo.key(&(7,)),
        &("old", 5.0),
        SetOptions::new().expire(Duration::from_secs(5)),
    )?;
    let computed = Arc::new(AtomicUsize::new(0));
    let f = {
        let computed = computed.clone();
        move |_: &(i32,)| -> Result<String, dcache::recipes::Error> {
            computed.fetch_add(1, Ordering::SeqCst);
            Ok("new".into())
        }
    };
    in_threads(10, |_| -> TestResult {
        let got = memo.call((7,), f.clone())?;
        assert!(got == "old" || got == "new", "{got}");
        Ok(())
    })?;
    memo.join_background();
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn memoized_computes_once_and_expires() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    let square = dcache::Memoized::new(store.clone(), "square").expire(Duration::from_millis(300));
    let calls = AtomicUsize::new(0);
    let compute = || -> dcache::cache::Result<i64> {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(144)
    };
    for _ in 0..3 {
        assert_eq!(square.call(&(12,), compute)?, 144);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(store.get_entry::<i64>(&square.key(&(12,)))?.is_some());
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(square.call(&(12,), compute)?, 144);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "recomputed after expiry");
    Ok(())
}

// ----- fencing tokens: 10,000 acquisitions by 8 threads in 2 processes -----

const FENCE_CHILD: &str = "DCACHE_TEST_REDIS_FENCE_DIR";
const FENCE_THREADS: usize = 4;
const FENCE_PER_THREAD: usize = 1250;

/// Under the lock, each holder checks that its token is larger than the last holder's and
/// records it; a non-atomic counter checks the exclusion.
fn fence_worker<S: Storage>(store: &S) -> TestResult {
    let lock = Lock::new(store.clone(), "fence-lock").expire(Duration::from_secs(60));
    in_threads(FENCE_THREADS, |_| -> TestResult {
        for _ in 0..FENCE_PER_THREAD {
            let guard = lock.acquire()?;
            let token = guard.fencing_token();
            let last = store.get_entry::<u64>("last-token")?.map_or(0, |e| e.value);
            if token <= last {
                return Err(format!("token {token} after {last}").into());
            }
            store.set("last-token", &token, SetOptions::new())?;
            let n = store.get_entry::<i64>("count")?.map_or(0, |e| e.value);
            store.set("count", &(n + 1), SetOptions::new())?;
            guard.unlock()?;
        }
        Ok(())
    })
}

fn fencing_tokens_strictly_increase<F: Fixture>(test_name: &str) -> TestResult {
    if !F::available() {
        return Ok(());
    }
    if let Ok(dir) = std::env::var(FENCE_CHILD) {
        return fence_worker(&F::open(Path::new(&dir))?);
    }
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let started = Instant::now();
    let mut children = (0..2)
        .map(|_| spawn_child(test_name, &[(FENCE_CHILD, path)]))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ok = true;
    for child in &mut children {
        ok &= child.wait()?.success();
    }
    assert!(
        ok,
        "a child failed (a token did not increase, or a store error)"
    );
    let total = 2 * FENCE_THREADS * FENCE_PER_THREAD;
    assert_eq!(total, 10_000);
    assert_eq!(
        store.get_entry::<i64>("count")?.map(|e| e.value),
        Some(10_000)
    );
    eprintln!("10,000 fenced acquisitions took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn fencing_tokens_strictly_increase_on_redis() -> TestResult {
    fencing_tokens_strictly_increase::<RedisFixture>("fencing_tokens_strictly_increase_on_redis")
}

#[test]
fn fencing_tokens_strictly_increase_on_a_cache() -> TestResult {
    fencing_tokens_strictly_increase::<CacheFixture>("fencing_tokens_strictly_increase_on_a_cache")
}

// ----- python reads what the store writes -----

#[test]
fn python_reads_an_entry() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store!(dir.path());
    let py = require_python!();
    let url = common::stores::redis_url().ok_or("url")?;
    store.set(
        &("user", 42),
        &("Ada", 1815, vec![1.5, 2.5]),
        SetOptions::new().tag("people"),
    )?;
    store.set("greeting", "hello", SetOptions::new())?;
    // The raw Redis strings, read with a plain client, decoded by python-diskcache's Disk.
    let client = redis::Client::open(url.as_str())?;
    let mut conn = client.get_connection()?;
    let prefix = redis_prefix(dir.path());
    let mut raw = Vec::new();
    for key in [dcache::disk::pickle::to_vec(&("greeting", true), 5)?, {
        let pickled_key = dcache::disk::pickle::to_vec(&("user", 42), 5)?;
        dcache::disk::pickle::value_to_vec(
            &dcache::Value::Tuple(vec![
                dcache::Value::Bytes(pickled_key),
                dcache::Value::Bool(false),
            ]),
            5,
        )?
    }] {
        let mut full = prefix.as_bytes().to_vec();
        full.extend_from_slice(&key);
        let bytes: Vec<u8> = redis::cmd("GET").arg(full).query(&mut conn)?;
        raw.push(bytes);
    }
    let hex: Vec<String> = raw
        .iter()
        .map(|b| {
            b.iter().fold(String::new(), |mut s, x| {
                let _ = write!(s, "{x:02x}");
                s
            })
        })
        .collect();
    let out = py.run(
        "import sys, pickle, tempfile, diskcache\n\
         disk = diskcache.Disk(tempfile.mkdtemp())\n\
         for h in sys.argv[1:]:\n\
         \x20   column, mode, tag = pickle.loads(bytes.fromhex(h))\n\
         \x20   print(repr((disk.fetch(mode, None, column, False), tag)))\n",
        &[&hex[0], &hex[1]],
        "",
    );
    assert_eq!(
        out,
        "('hello', None)\n(('Ada', 1815, [1.5, 2.5]), 'people')\n"
    );
    Ok(())
}
