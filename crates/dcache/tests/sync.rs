//! `Lock`, `RLock`, `BoundedSemaphore` and `Averager` across threads and processes.
//!
//! Every test is generic over the store: `sync_tests!(name, Fixture)` runs the whole set on
//! one store type: here a `Cache` and a `FanoutCache`.

mod common;

use common::stores::{CacheFixture, ClockFixture, FanoutFixture, Fixture, RedisFixture};
use common::{in_threads, spawn_child};

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, UNIX_EPOCH};

use dcache::sync::Error as SyncError;
use dcache::{
    Averager, BoundedSemaphore, Cache, Lock, ManualClock, RLock, SetOptions, Storage, Value,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

macro_rules! sync_tests {
    ($name:ident, $fixture:ty $(, $clock:ident)?) => {
        mod $name {
            use super::*;

            #[test]
            fn lock_counter_eight_threads() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::lock_counter_eight_threads::<$fixture>()
            }
            #[test]
            fn lock_counter_four_processes() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::lock_counter_four_processes::<$fixture>(concat!(
                    stringify!($name),
                    "::lock_counter_four_processes"
                ))
            }
            #[test]
            fn acquire_timeout_on_a_held_lock() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::acquire_timeout_on_a_held_lock::<$fixture>()
            }
            #[test]
            fn lock_guards_release_and_tokens_are_owned() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::lock_guards_release_and_tokens_are_owned::<$fixture>()
            }
            #[test]
            fn semaphore_of_three_with_ten_threads() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::semaphore_of_three_with_ten_threads::<$fixture>()
            }
            #[test]
            fn rlock_nests_excludes_and_checks_its_owner() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::rlock_nests_excludes_and_checks_its_owner::<$fixture>()
            }
            #[test]
            fn rlock_counter_four_threads() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::rlock_counter_four_threads::<$fixture>()
            }
            #[test]
            fn averager_five_threads_exact_mean() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::averager_five_threads_exact_mean::<$fixture>()
            }
            $(sync_clock_tests!($name, $fixture, $clock);)?
        }
    };
}

/// The tests that set the store's clock (stores with a manual clock only).
macro_rules! sync_clock_tests {
    ($name:ident, $fixture:ty, $clock:ident) => {
        #[test]
        fn lock_of_a_killed_process_frees_at_its_expiry() -> TestResult {
            super::lock_of_a_killed_process_frees_at_its_expiry::<$fixture>(concat!(
                stringify!($name),
                "::lock_of_a_killed_process_frees_at_its_expiry"
            ))
        }
        #[test]
        fn a_lost_lock_is_reported_and_not_removed() -> TestResult {
            super::a_lost_lock_is_reported_and_not_removed::<$fixture>()
        }
        #[test]
        fn semaphore_over_release_and_expiry() -> TestResult {
            super::semaphore_over_release_and_expiry::<$fixture>()
        }
    };
}

sync_tests!(cache, CacheFixture, clock);
sync_tests!(fanout, FanoutFixture, clock);
sync_tests!(redis, RedisFixture);

// ----- helpers -----

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            if let Err(e) = self.0.kill() {
                eprintln!("could not kill child {}: {e}", self.0.id());
            }
            if let Err(e) = self.0.wait() {
                eprintln!("could not reap child {}: {e}", self.0.id());
            }
        }
    }
}

/// A plain read-modify-write of a counter in the store: loses updates unless serialized.
fn increment<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<()> {
    let n = store.get_entry::<i64>(key)?.map_or(0, |e| e.value);
    store.set(key, &(n + 1), SetOptions::new())
}

fn read_counter<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<i64> {
    Ok(store.get_entry::<i64>(key)?.map_or(0, |e| e.value))
}

/// Asserts that nobody else is inside while the returned guard lives.
struct Inside<'a>(&'a AtomicBool);

impl<'a> Inside<'a> {
    fn enter(flag: &'a AtomicBool) -> Inside<'a> {
        assert!(!flag.swap(true, Ordering::SeqCst), "two holders at once");
        Inside(flag)
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

const BASE_SECS: u64 = 1_700_000_000;

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(BASE_SECS),
    ))
}

// ----- Lock -----

fn lock_counter_eight_threads<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let lock = Lock::new(store.clone(), "counter-lock");
    let inside = AtomicBool::new(false);
    in_threads(8, |_| -> Result<(), SyncError> {
        for _ in 0..200 {
            let _guard = lock.acquire()?;
            let _inside = Inside::enter(&inside);
            increment(&store, "counter")?;
        }
        Ok(())
    })?;
    assert_eq!(read_counter(&store, "counter")?, 1600);
    assert!(!lock.locked()?);
    Ok(())
}

const COUNTER_CHILD: &str = "DCACHE_TEST_SYNC_COUNTER_DIR";

fn lock_counter_four_processes<F: Fixture>(test_name: &str) -> TestResult {
    if let Ok(dir) = std::env::var(COUNTER_CHILD) {
        let store = F::open(Path::new(&dir))?;
        let lock = Lock::new(store.clone(), "counter-lock");
        for _ in 0..200 {
            let guard = lock.acquire()?;
            increment(&store, "counter")?;
            guard.unlock()?;
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let children = (0..4)
        .map(|_| spawn_child(test_name, &[(COUNTER_CHILD, path)]))
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a child failed");
    }
    assert_eq!(read_counter(&store, "counter")?, 800);
    assert!(!Lock::new(store, "counter-lock").locked()?);
    Ok(())
}

const KILLED_CHILD: &str = "DCACHE_TEST_SYNC_KILLED_DIR";
const KILLED_EXPIRE: Duration = Duration::from_secs(10);

fn lock_of_a_killed_process_frees_at_its_expiry<F: ClockFixture>(test_name: &str) -> TestResult {
    if let Ok(dir) = std::env::var(KILLED_CHILD) {
        // The child: take the lock (its clock stands at BASE_SECS), then hang until killed.
        let store = F::open_with_clock(Path::new(&dir), manual_clock())?;
        let lock = Lock::new(store, "job").expire(KILLED_EXPIRE);
        let _token = lock.acquire()?.forget();
        // Killed long before this; the bound only keeps a stray child from living forever.
        std::thread::sleep(Duration::from_secs(300));
        return Err("the child was not killed".into());
    }
    let dir = tempfile::tempdir()?;
    let clock = manual_clock();
    let store = F::open_with_clock(dir.path(), clock.clone())?;
    let lock = Lock::new(store.clone(), "job").expire(KILLED_EXPIRE);
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let mut child = KillOnDrop(spawn_child(test_name, &[(KILLED_CHILD, path)])?);
    let started = Instant::now();
    while !lock.locked()? {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child never took the lock"
        );
        assert!(child.0.try_wait()?.is_none(), "the child exited");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.0.kill()?; // SIGKILL: no destructor runs, the lock stays
    child.0.wait()?;

    let entry = store
        .get_entry::<Value>("job")?
        .ok_or("the lock key is gone")?;
    let expires = UNIX_EPOCH + Duration::from_secs(BASE_SECS) + KILLED_EXPIRE;
    assert_eq!(entry.expire_time, Some(expires));
    assert!(entry.value.as_str().is_some(), "a token: {:?}", entry.value);

    // Not before the expiry...
    assert!(lock.try_acquire()?.is_none());
    let err = lock.acquire_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    clock.set(expires - Duration::from_millis(1));
    assert!(lock.try_acquire()?.is_none());
    // ...(python's rule: live while expire_time > now)...
    clock.set(expires);
    let guard = lock
        .try_acquire()?
        .ok_or("the lock did not free at its expiry")?;
    assert!(guard.is_held()?);
    guard.unlock()?;
    // ...and a blocking acquire gets it too.
    clock.set(expires + Duration::from_secs(1));
    drop(lock.acquire()?);
    Ok(())
}

fn acquire_timeout_on_a_held_lock<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let lock = Lock::new(store.clone(), "held");
    let _held = lock.acquire()?;
    let other = Lock::new(F::open(dir.path())?, "held");
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = std::thread::scope(|s| s.spawn(|| other.acquire_timeout(timeout)).join())
        .map_err(|_| "waiter panicked")?
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        SyncError::Timeout { key, waited } => {
            assert_eq!(key, "\"held\"");
            assert!(*waited >= timeout, "waited {waited:?}");
            assert!(*waited <= elapsed);
        }
        other => return Err(format!("expected a timeout, got {other}").into()),
    }
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
    assert!(err.to_string().contains("\"held\""), "{err}");
    Ok(())
}

fn a_lost_lock_is_reported_and_not_removed<F: ClockFixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = manual_clock();
    let store = F::open_with_clock(dir.path(), clock.clone())?;
    let first = Lock::new(store.clone(), "lease").expire(Duration::from_secs(5));
    let second = Lock::new(store.clone(), "lease").expire(Duration::from_secs(5));
    let a = first.acquire()?;
    assert!(second.try_acquire()?.is_none());
    clock.advance(Duration::from_secs(6)); // a's acquisition expires...
    assert!(!a.is_held()?);
    let b = second.try_acquire()?.ok_or("free after the expiry")?; // ...and b takes it
    assert!(matches!(a.unlock(), Err(SyncError::LockLost { .. })));
    assert!(b.is_held()?, "a's release must not remove b's lock");
    assert!(first.locked()?);
    b.unlock()?;
    assert!(!first.locked()?);
    Ok(())
}

fn lock_guards_release_and_tokens_are_owned<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let lock = Lock::new(store.clone(), "guarded").tag("locks");
    {
        let guard = lock.acquire()?;
        let entry = store.get_entry::<String>("guarded")?.ok_or("no lock key")?;
        assert_eq!(entry.value, guard.token());
        assert_eq!(entry.tag, Some("locks".into()));
        assert!(
            guard
                .token()
                .starts_with(&format!("{}-", std::process::id()))
        );
    }
    assert!(!lock.locked()?, "dropping the guard releases");
    // Two acquisitions never share a token.
    let t1 = lock.acquire()?.forget();
    lock.release(&t1)?;
    let t2 = lock.acquire()?.forget();
    assert_ne!(t1, t2);
    assert!(matches!(lock.release(&t1), Err(SyncError::LockLost { .. })));
    assert!(lock.locked()?, "a stale token removes nothing");
    // A lock taken in one thread is released from another with its token.
    std::thread::scope(|s| s.spawn(|| lock.release(&t2)).join())
        .map_err(|_| "releaser panicked")??;
    assert!(!lock.locked()?);
    // python's Lock stores None; its presence excludes us too.
    store.set("guarded", &(), SetOptions::new())?;
    assert!(lock.locked()?);
    assert!(lock.try_acquire()?.is_none());
    assert!(lock.force_release()?);
    assert!(lock.try_acquire()?.is_some());
    Ok(())
}

// ----- BoundedSemaphore -----

fn semaphore_of_three_with_ten_threads<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let semaphore = BoundedSemaphore::new(store.clone(), "pool", 3);
    let inside = AtomicUsize::new(0);
    let high_water = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    in_threads(10, |_| -> Result<(), SyncError> {
        for _ in 0..5 {
            let _permit = semaphore.acquire()?;
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            high_water.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            inside.fetch_sub(1, Ordering::SeqCst);
        }
        finished.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })?;
    assert_eq!(finished.load(Ordering::SeqCst), 10);
    let high = high_water.load(Ordering::SeqCst);
    assert!((1..=3).contains(&high), "high-water mark {high}");
    assert_eq!(semaphore.available()?, 3);
    assert_eq!(store.get_entry::<i64>("pool")?.map(|e| e.value), Some(3));

    // Three holders at once are allowed: each waits at a barrier while holding its permit.
    let barrier = Barrier::new(3);
    std::thread::scope(|s| -> TestResult {
        let holders: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| -> Result<(), SyncError> {
                    let _permit = semaphore.acquire_timeout(Duration::from_secs(30))?;
                    barrier.wait();
                    Ok(())
                })
            })
            .collect();
        for h in holders {
            h.join().map_err(|_| "holder panicked")??;
        }
        Ok(())
    })?;
    Ok(())
}

fn semaphore_over_release_and_expiry<F: ClockFixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = manual_clock();
    let store = F::open_with_clock(dir.path(), clock.clone())?;
    let semaphore = BoundedSemaphore::new(store.clone(), "sem", 2).expire(Duration::from_secs(10));
    assert!(matches!(
        semaphore.release(),
        Err(SyncError::OverRelease { value: 2, .. })
    ));
    let a = semaphore.acquire()?;
    let b = semaphore.try_acquire()?.ok_or("second permit")?;
    assert!(semaphore.try_acquire()?.is_none());
    let err = semaphore
        .acquire_timeout(Duration::from_millis(20))
        .unwrap_err();
    assert!(err.is_timeout());
    a.release()?;
    assert_eq!(semaphore.available()?, 1);
    // The key expires: every permit is free again, and the held one cannot be given back.
    clock.advance(Duration::from_secs(11));
    assert_eq!(semaphore.available()?, 2);
    assert!(matches!(b.release(), Err(SyncError::OverRelease { .. })));
    Ok(())
}

// ----- RLock -----

fn rlock_nests_excludes_and_checks_its_owner<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let rlock = RLock::new(store.clone(), "reentrant");
    let me = dcache::sync::owner_id();

    let other_thread_cannot_enter = || -> TestResult {
        std::thread::scope(|s| {
            s.spawn(|| -> TestResult {
                assert!(rlock.try_acquire()?.is_none());
                let err = rlock
                    .acquire_timeout(Duration::from_millis(20))
                    .unwrap_err();
                assert!(err.is_timeout(), "{err}");
                match rlock.release() {
                    Err(SyncError::NotOwner { holder, caller, .. }) => {
                        assert_eq!(holder.as_deref(), Some(me.as_str()));
                        assert_ne!(caller, me);
                    }
                    other => return Err(format!("non-owner release gave {other:?}").into()),
                }
                Ok(())
            })
            .join()
            .map_err(|_| "other thread panicked")?
        })
    };

    for depth in 1..=3 {
        rlock.acquire()?.forget();
        assert_eq!(rlock.owner()?, Some((me.clone(), depth)));
        other_thread_cannot_enter()?;
    }
    // Stored as python stores it.
    let stored = store
        .get_entry::<(String, i64)>("reentrant")?
        .ok_or("no key")?;
    assert_eq!(stored.value, (me.clone(), 3));
    for depth in (0..3).rev() {
        assert!(rlock.locked()?);
        rlock.release()?;
        assert_eq!(rlock.owner()?.map(|(_, d)| d), (depth > 0).then_some(depth));
    }
    assert!(!rlock.locked()?);
    // At depth 0 the key stays, as in python, with count 0.
    let stored = store
        .get_entry::<(String, i64)>("reentrant")?
        .ok_or("no key")?;
    assert_eq!(stored.value, (me.clone(), 0));
    // One release too many.
    assert!(matches!(
        rlock.release(),
        Err(SyncError::NotOwner { holder: None, .. })
    ));
    // Now another thread can enter.
    std::thread::scope(|s| s.spawn(|| rlock.try_acquire().map(|g| g.is_some())).join())
        .map_err(|_| "other thread panicked")?
        .map(|entered| assert!(entered))?;
    // Guards release their level on drop.
    {
        let _a = rlock.acquire()?;
        let _b = rlock.acquire()?;
        assert_eq!(rlock.owner()?.map(|(_, d)| d), Some(2));
    }
    assert!(!rlock.locked()?);
    Ok(())
}

fn rlock_counter_four_threads<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let rlock = RLock::new(store.clone(), "reentrant-counter");
    let inside = AtomicBool::new(false);
    in_threads(4, |_| -> Result<(), SyncError> {
        for _ in 0..50 {
            let _outer = rlock.acquire()?;
            let _inside = Inside::enter(&inside);
            let _inner = rlock.acquire()?;
            increment(&store, "counter")?;
        }
        Ok(())
    })?;
    assert_eq!(read_counter(&store, "counter")?, 200);
    assert!(!rlock.locked()?);
    Ok(())
}

// ----- Averager -----

fn averager_five_threads_exact_mean<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let avg = Averager::new(store.clone(), "mean");
    assert_eq!(avg.get()?, None);
    in_threads(5, |t| -> Result<(), SyncError> {
        let t = u32::try_from(t).unwrap_or(u32::MAX);
        for i in 0..10 {
            avg.add(f64::from(t * 100 + i * 3))?;
        }
        Ok(())
    })?;
    // Sum: 10 * 100 * (0+1+2+3+4) + 5 * 3 * (0+...+9) = 10000 + 675; 50 values.
    let expected = 10_675.0 / 50.0;
    let stored = store.get_entry::<(f64, i64)>("mean")?.ok_or("no key")?;
    assert_eq!(stored.value, (10_675.0, 50));
    assert_eq!(avg.get()?, Some(expected));
    assert_eq!(avg.pop()?, Some(expected));
    assert_eq!(avg.get()?, None);
    assert!(
        store.get_entry::<Value>("mean")?.is_none(),
        "pop removes the key"
    );
    assert_eq!(avg.pop()?, None);
    Ok(())
}

#[test]
fn sync_types_are_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    check::<Lock<Cache>>();
    check::<RLock<Cache>>();
    check::<BoundedSemaphore<Cache>>();
    check::<Averager<Cache>>();
    send::<dcache::sync::LockGuard<'static, Cache, String>>();
    send::<dcache::sync::SemaphoreGuard<'static, Cache, String>>();
}
