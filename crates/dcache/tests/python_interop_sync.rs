//! python-diskcache's `Lock`, `RLock`, `BoundedSemaphore` and `Averager` and ours share keys:
//! each side sees, respects and reads what the other stores.
//!
//! python's side is `tests/interop/sync_worker.py`; keys in the cache pace the two processes.

mod common;

use std::time::Duration;

use dcache::sync::Error as SyncError;
use dcache::{Averager, BoundedSemaphore, Cache, EvictionPolicy, Lock, RLock, Storage, Value};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn open(dir: &std::path::Path) -> dcache::cache::Result<Cache> {
    Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(dir)
}

use common::in_threads;
use common::python::{finish, wait_for};

#[test]
fn python_lock_and_ours_exclude_each_other() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let cache = open(dir.path())?;
    let lock = Lock::new(cache.clone(), "lock");

    // We hold it: python's Lock sees it taken, and its acquire's `add` fails.
    let guard = lock.acquire()?;
    let out = py.script("sync_worker.py", &["lock-probe", path]);
    assert_eq!(out, "True\nFalse\n");
    guard.unlock()?;

    // python holds it (its value is None): we cannot take it until it releases.
    let mut python = py.spawn_script("sync_worker.py", &["lock-hold", path]);
    wait_for(&cache, "py-holds", &mut python)?;
    assert!(lock.locked()?);
    assert_eq!(cache.get::<Value>("lock")?, Some(Value::None));
    assert!(lock.try_acquire()?.is_none());
    assert!(
        lock.acquire_timeout(Duration::from_millis(100))
            .unwrap_err()
            .is_timeout()
    );
    cache.set("go", 1)?;
    let guard = lock.acquire_timeout(Duration::from_secs(60))?; // after python's release
    finish(python)?;
    guard.unlock()?;

    // Both sides increment a plain counter under their own Lock at the same time.
    cache.delete("go")?;
    let mut python = py.spawn_script("sync_worker.py", &["lock-count", path, "300"]);
    wait_for(&cache, "ready", &mut python)?;
    cache.set("start", 1)?;
    in_threads(2, |_| -> Result<(), SyncError> {
        for _ in 0..150 {
            let _guard = lock.acquire()?;
            let n = cache.get::<i64>("n")?.unwrap_or(0);
            cache.set("n", n + 1)?;
        }
        Ok(())
    })?;
    finish(python)?;
    assert_eq!(cache.get::<i64>("n")?, Some(600));
    assert!(!lock.locked()?);
    Ok(())
}

#[test]
fn python_and_rust_share_a_bounded_semaphore() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let cache = open(dir.path())?;
    let sem = BoundedSemaphore::new(cache.clone(), "sem", 2);

    // Stored as python's int of free permits.
    let permit = sem.acquire()?;
    assert_eq!(py.script("sync_worker.py", &["sem-value", path]), "1\n");
    permit.release()?;

    // Three python threads and three Rust threads, never more than two inside.
    let mut python = py.spawn_script("sync_worker.py", &["sem-work", path, "20"]);
    wait_for(&cache, "ready", &mut python)?;
    cache.set("start", 1)?;
    let retrying = cache.retrying();
    in_threads(3, |_| -> Result<(), SyncError> {
        for _ in 0..20 {
            let _permit = sem.acquire()?;
            if retrying.incr("inside", 1)? > 2 {
                retrying.incr("violations", 1)?;
            }
            std::thread::sleep(Duration::from_millis(1));
            retrying.decr("inside", 1)?;
        }
        Ok(())
    })?;
    finish(python)?;
    assert_eq!(cache.get::<i64>("violations")?, None);
    assert_eq!(cache.get::<i64>("inside")?, Some(0));
    assert_eq!(sem.available()?, 2);
    assert_eq!(py.script("sync_worker.py", &["sem-value", path]), "2\n");
    assert!(matches!(sem.release(), Err(SyncError::OverRelease { .. })));
    Ok(())
}

#[test]
fn python_and_rust_share_an_rlock() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let cache = open(dir.path())?;
    let rlock = RLock::new(cache.clone(), "rlock");
    let me = dcache::sync::owner_id();

    // We hold it twice: python reads our (owner, depth) tuple and its acquire blocks.
    let outer = rlock.acquire()?;
    let inner = rlock.acquire()?;
    let out = py.script("sync_worker.py", &["rlock-probe", path]);
    assert_eq!(out, format!("('{me}', 2)\nTrue\n"));
    drop(inner);
    drop(outer);
    assert!(!rlock.locked()?);

    // python holds it twice: we see its owner id, cannot enter, cannot release it.
    let mut python = py.spawn_script("sync_worker.py", &["rlock-hold", path]);
    wait_for(&cache, "py-holds", &mut python)?;
    let py_id: String = cache.get("py-holds")?.ok_or("python's id")?;
    assert_ne!(py_id, me, "owner ids collide");
    assert_eq!(rlock.owner()?, Some((py_id.clone(), 2)));
    assert!(rlock.try_acquire()?.is_none());
    match rlock.release() {
        Err(SyncError::NotOwner { holder, .. }) => assert_eq!(holder, Some(py_id)),
        other => return Err(format!("releasing python's rlock gave {other:?}").into()),
    }
    cache.set("go", 1)?;
    let guard = rlock.acquire_timeout(Duration::from_secs(60))?; // after python's releases
    let out = finish(python)?;
    assert_eq!(
        out, "AssertionError cannot release un-acquired lock\n",
        "python's extra release must fail while we hold it"
    );
    assert_eq!(rlock.owner()?, Some((me, 1)));
    guard.unlock()?;
    Ok(())
}

#[test]
fn python_and_rust_share_an_averager() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let cache = open(dir.path())?;
    let avg = Averager::new(cache.clone(), "avg");

    // python adds 1, 2, 3; we add 4 and 5.
    let out = py.script("sync_worker.py", &["avg-add", path, "1", "2", "3"]);
    assert_eq!(out, "(6.0, 3)\n2.0\n");
    avg.add(4.0)?;
    avg.add(5.0)?;
    assert_eq!(avg.get()?, Some(3.0));
    let out = py.script("sync_worker.py", &["avg-add", path]);
    assert_eq!(out, "(15.0, 5)\n3.0\n", "python reads our tuple");
    assert_eq!(py.script("sync_worker.py", &["avg-pop", path]), "3.0\n");
    assert_eq!(avg.get()?, None);

    // Concurrent adds from both sides lose nothing: 200 x 1.0 from python, 200 x 3.0 from us.
    let mut python = py.spawn_script("sync_worker.py", &["avg-concurrent", path, "200"]);
    wait_for(&cache, "ready", &mut python)?;
    cache.set("start", 1)?;
    for _ in 0..200 {
        avg.add(3.0)?;
    }
    finish(python)?;
    let stored = Storage::get_entry::<(f64, i64)>(&cache, "avg")?.ok_or("no average")?;
    assert_eq!(stored.value, (800.0, 400));
    assert_eq!(avg.pop()?, Some(2.0));
    assert_eq!(py.script("sync_worker.py", &["avg-pop", path]), "None\n");
    Ok(())
}
