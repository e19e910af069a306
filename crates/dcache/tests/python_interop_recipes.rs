//! python-diskcache's `throttle` and ours share a bucket: each side takes tokens from what
//! the other left, and waits for the same refill.
//!
//! python's side is `tests/interop/recipes_worker.py`; keys in the cache pace the two
//! processes, and both sides run on simulated time (an injected clock and sleep function).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use dcache::{Cache, Clock, EvictionPolicy, ManualClock, Throttle};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

use common::python::{finish, wait_for};

#[test]
fn python_throttle_and_ours_share_one_bucket() -> TestResult {
    let py = require_python!();
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let cache = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(dir.path())?;

    // python decorates at t = 1000, storing a full bucket of 4 calls per 100 s: `(1000.0, 4)`,
    // a float and an int, which we read as our (last, tally).
    let mut python = py.spawn_script("recipes_worker.py", &["throttle", path]);
    wait_for(&cache, "py-phase1", &mut python)?;
    assert_eq!(cache.get::<(f64, f64)>("shared")?, Some((1000.0, 4.0)));

    // Ours on the same key and the same simulated time: creating it does not refill, and it
    // takes 3 of python's tokens without waiting.
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(1000)));
    let slept = Arc::new(Mutex::new(Vec::new()));
    let throttle = Throttle::builder(cache.clone(), "shared", 4, Duration::from_secs(100))
        .clock(clock.clone())
        .sleep({
            let (clock, slept) = (clock.clone(), slept.clone());
            move |d| {
                slept.lock().expect("sleeps").push(d);
                clock.advance(d);
            }
        })
        .build()?;
    for _ in 0..3 {
        throttle.wait()?;
    }
    assert!(slept.lock().expect("sleeps").is_empty());
    assert_eq!(cache.get::<(f64, f64)>("shared")?, Some((1000.0, 1.0)));

    // python takes the last token, then waits 100 s / 4 for the next one.
    cache.set("go", 1)?;
    let out = finish(python)?;
    assert_eq!(out, "(1000.0, 4)\n[25.0]\n(1025.0, 0.0)\n");

    // We continue at python's time and find the bucket empty too.
    clock.set(UNIX_EPOCH + Duration::from_secs(1025));
    throttle.wait()?;
    assert_eq!(
        *slept.lock().expect("sleeps"),
        vec![Duration::from_secs(25)]
    );
    assert_eq!(cache.get::<(f64, f64)>("shared")?, Some((1050.0, 0.0)));
    assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1050));
    Ok(())
}
