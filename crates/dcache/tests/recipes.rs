//! `Throttle`, `Barrier` and `MemoizeStampede` across threads and processes.
//!
//! Every test is generic over the store: `recipe_tests!(name, Fixture)` runs the whole set on
//! one store type: here a `Cache` and a `FanoutCache`.

mod common;

use common::stores::{CacheFixture, ClockFixture, FanoutFixture, Fixture, RedisFixture};
use common::{in_threads, spawn_child};

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dcache::recipes::Error as RecipeError;
use dcache::{
    Barrier, BarrierLock, Cache, Clock, FanoutCache, Lock, ManualClock, MemoizeStampede, RLock,
    SetOptions, Storage, Throttle,
};

/// The tests' error type.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A test's result, with a value for helpers.
type TestResult<T = ()> = Result<T, BoxError>;

macro_rules! recipe_tests {
    ($name:ident, $fixture:ty $(, $clock:ident)?) => {
        mod $name {
            use super::*;

            #[test]
            fn throttle_two_processes_take_at_least_the_theoretical_time() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::throttle_two_processes_take_at_least_the_theoretical_time::<$fixture>(
                    concat!(
                        stringify!($name),
                        "::throttle_two_processes_take_at_least_the_theoretical_time"
                    ),
                )
            }
            #[test]
            fn barrier_with_lock_eight_threads_one_inside() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::barrier_eight_threads_one_inside::<$fixture, Lock<_>>()
            }
            #[test]
            fn barrier_with_rlock_eight_threads_one_inside() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::barrier_eight_threads_one_inside::<$fixture, RLock<_>>()
            }
            #[test]
            fn barrier_with_lock_three_processes_one_inside() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::barrier_three_processes_one_inside::<$fixture, Lock<_>>(concat!(
                    stringify!($name),
                    "::barrier_with_lock_three_processes_one_inside"
                ))
            }
            #[test]
            fn barrier_with_rlock_three_processes_one_inside() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::barrier_three_processes_one_inside::<$fixture, RLock<_>>(concat!(
                    stringify!($name),
                    "::barrier_with_rlock_three_processes_one_inside"
                ))
            }
            #[test]
            fn stampede_cold_key_ten_threads_compute_once() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::stampede_cold_key_ten_threads_compute_once::<$fixture>()
            }
            #[test]
            fn stampede_argument_tuples_get_different_keys() -> TestResult {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::stampede_argument_tuples_get_different_keys::<$fixture>()
            }
            $(recipe_clock_tests!($name, $fixture, $clock);)?
        }
    };
}

/// The tests that set the store's clock (stores with a manual clock only).
macro_rules! recipe_clock_tests {
    ($name:ident, $fixture:ty, $clock:ident) => {
        #[test]
        fn throttle_admits_count_per_window_on_simulated_time() -> TestResult {
            super::throttle_admits_count_per_window_on_simulated_time::<$fixture>()
        }
        #[test]
        fn stampede_warm_key_ten_threads_one_background_recompute() -> TestResult {
            super::stampede_warm_key_ten_threads_one_background_recompute::<$fixture>()
        }
        #[test]
        fn stampede_warm_key_two_processes_one_background_recompute() -> TestResult {
            super::stampede_warm_key_two_processes_one_background_recompute::<$fixture>(concat!(
                stringify!($name),
                "::stampede_warm_key_two_processes_one_background_recompute"
            ))
        }
        #[test]
        fn throttled_memoized_function() -> TestResult {
            super::throttled_memoized_function::<$fixture>()
        }
    };
}

recipe_tests!(cache, CacheFixture, clock);
recipe_tests!(fanout, FanoutFixture, clock);
recipe_tests!(redis, RedisFixture);

// ----- helpers -----

/// Kills the children if the test fails before they finish.
struct KillOnDrop(Vec<Child>);

impl KillOnDrop {
    /// Waits for every child; all must succeed.
    fn wait_all(mut self) -> TestResult {
        for child in &mut self.0 {
            let status = child.wait()?;
            if !status.success() {
                return Err(format!("a child failed: {status}").into());
            }
        }
        Ok(())
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                if let Err(e) = child.kill() {
                    eprintln!("could not kill child {}: {e}", child.id());
                }
                if let Err(e) = child.wait() {
                    eprintln!("could not reap child {}: {e}", child.id());
                }
            }
        }
    }
}

fn spawn_children(test_name: &str, n: usize, var: &str, value: &str) -> TestResult<KillOnDrop> {
    let children = (0..n)
        .map(|i| {
            let index = i.to_string();
            spawn_child(test_name, &[(var, value), (CHILD_INDEX, &index)])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KillOnDrop(children))
}

/// Which child this is (0, 1, ...), set by `spawn_children`.
const CHILD_INDEX: &str = "DCACHE_TEST_RECIPES_CHILD";

fn counter<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<i64> {
    Ok(store.get_entry::<i64>(key)?.map_or(0, |e| e.value))
}

fn bump<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<i64> {
    store.incr(key, 1, Some(0), SetOptions::new())
}

/// Polls `done` until it holds; fails after a minute (a stuck peer).
fn wait_until(what: &str, mut done: impl FnMut() -> dcache::cache::Result<bool>) -> TestResult {
    let started = Instant::now();
    while !done()? {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("timed out waiting until {what}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

const BASE_SECS: u64 = 1_700_000_000;

fn base_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE_SECS)
}

// ----- Throttle -----

fn throttle_admits_count_per_window_on_simulated_time<F: ClockFixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(base_time()));
    let store = F::open_with_clock(dir.path(), clock.clone())?;
    let slept = Arc::new(Mutex::new(Vec::new()));
    // 4 calls per 2 s: a token every 0.5 s. The store's clock is the throttle's.
    let throttle = Throttle::builder(store.clone(), "api", 4, Duration::from_secs(2))
        .sleep({
            let (clock, slept) = (clock.clone(), slept.clone());
            move |d| {
                slept.lock().expect("sleeps").push(d);
                clock.advance(d);
            }
        })
        .build()?;
    let admitted = Mutex::new(Vec::new());
    let call = || {
        throttle.call(|| {
            admitted.lock().expect("admitted").push(clock.now());
            Ok::<_, RecipeError>(())
        })
    };
    let take_sleeps = || std::mem::take(&mut *slept.lock().expect("sleeps"));
    let half = Duration::from_millis(500);

    // The full bucket: a burst of 4, then one call every 0.5 s.
    for _ in 0..12 {
        call()?;
    }
    assert_eq!(take_sleeps(), vec![half; 8]);
    let times = std::mem::take(&mut *admitted.lock().expect("admitted"));
    let expected: Vec<SystemTime> = [0u32; 4]
        .into_iter()
        .chain(1..=8)
        .map(|n| base_time() + half * n)
        .collect();
    assert_eq!(times, expected);
    // Exactly 4 calls in every 2 s window that starts at a call after the burst.
    for &start in &times[4..=8] {
        let inside = times
            .iter()
            .filter(|&&t| t >= start && t < start + Duration::from_secs(2))
            .count();
        assert_eq!(inside, 4, "window from {start:?}");
    }

    // A long idle spell refills the bucket to 4, not more.
    clock.advance(Duration::from_secs(100));
    for _ in 0..5 {
        call()?;
    }
    assert_eq!(take_sleeps(), vec![half]);

    // Half a token's time idle: the next call waits the other half.
    clock.advance(Duration::from_millis(250));
    call()?;
    assert_eq!(take_sleeps(), vec![Duration::from_millis(250)]);
    let bucket = store.get_entry::<(f64, f64)>("api")?.map(|e| e.value);
    assert_eq!(bucket, Some((BASE_SECS as f64 + 105.0, 0.0)));
    Ok(())
}

const THROTTLE_CHILD: &str = "DCACHE_TEST_RECIPES_THROTTLE_DIR";
const THROTTLE_COUNT: u32 = 4;
const THROTTLE_PER: Duration = Duration::from_millis(400);
const THROTTLE_CALLS: i64 = 8;

fn throttle_two_processes_take_at_least_the_theoretical_time<F: Fixture>(
    test_name: &str,
) -> TestResult {
    if let Ok(dir) = std::env::var(THROTTLE_CHILD) {
        let store = F::open(Path::new(&dir))?;
        // Creating it again must not refill the bucket.
        let throttle = Throttle::new(store.clone(), "shared", THROTTLE_COUNT, THROTTLE_PER)?;
        for _ in 0..THROTTLE_CALLS {
            throttle.call(|| bump(&store, "calls").map_err(RecipeError::from))?;
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let started = Instant::now();
    let _throttle = Throttle::new(store.clone(), "shared", THROTTLE_COUNT, THROTTLE_PER)?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    spawn_children(test_name, 2, THROTTLE_CHILD, path)?.wait_all()?;
    let elapsed = started.elapsed();

    let total = 2 * THROTTLE_CALLS;
    assert_eq!(counter(&store, "calls")?, total);
    // A full bucket of 4, then 10 tokens a second: the last call waits for 12 tokens.
    let rate = f64::from(THROTTLE_COUNT) / THROTTLE_PER.as_secs_f64();
    let theoretical = Duration::from_secs_f64((total - i64::from(THROTTLE_COUNT)) as f64 / rate);
    assert!(
        elapsed >= theoretical,
        "{total} calls took {elapsed:?}, less than the theoretical {theoretical:?}"
    );
    Ok(())
}

// ----- Barrier -----

/// Counts the callers inside and remembers the most at once.
#[derive(Default)]
struct HighWater {
    inside: AtomicUsize,
    most: AtomicUsize,
}

impl HighWater {
    fn enter(&self) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A plain read-modify-write of a counter: loses updates unless serialized.
fn increment<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<()> {
    let n = counter(store, key)?;
    store.set(key, &(n + 1), SetOptions::new())
}

fn barrier_eight_threads_one_inside<F: Fixture, L>() -> TestResult
where
    L: BarrierLock<F::S> + Send + Sync,
{
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let barrier = Barrier::<_, L>::with_lock(store.clone(), "critical")
        .expire(Duration::from_secs(60))
        .tag("barriers");
    let high = HighWater::default();
    let step = barrier.wrap(|()| -> Result<(), RecipeError> {
        high.enter();
        let result = increment(&store, "counter");
        high.leave();
        Ok(result?)
    });
    in_threads(8, |_| (0..25).try_for_each(|_| step(())))?;
    assert_eq!(high.most.load(Ordering::SeqCst), 1);
    assert_eq!(counter(&store, "counter")?, 200);
    Ok(())
}

const BARRIER_CHILD: &str = "DCACHE_TEST_RECIPES_BARRIER_DIR";

fn barrier_three_processes_one_inside<F: Fixture, L>(test_name: &str) -> TestResult
where
    L: BarrierLock<F::S>,
{
    if let Ok(dir) = std::env::var(BARRIER_CHILD) {
        let store = F::open(Path::new(&dir))?;
        let barrier = Barrier::<_, L>::with_lock(store.clone(), "critical");
        for _ in 0..40 {
            barrier.call(|| -> Result<(), RecipeError> {
                if bump(&store, "inside")? > 1 {
                    bump(&store, "violations")?;
                }
                increment(&store, "counter")?;
                store.incr("inside", -1, Some(0), SetOptions::new())?;
                Ok(())
            })?;
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    spawn_children(test_name, 3, BARRIER_CHILD, path)?.wait_all()?;
    assert_eq!(counter(&store, "violations")?, 0, "two callers were inside");
    assert_eq!(counter(&store, "counter")?, 120, "an update was lost");
    assert_eq!(counter(&store, "inside")?, 0);
    Ok(())
}

// ----- MemoizeStampede -----

fn stampede_cold_key_ten_threads_compute_once<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let memo = MemoizeStampede::new(store.clone(), "slow_square", Duration::from_secs(60));
    let entered = Arc::new(AtomicUsize::new(0));
    let computed = Arc::new(AtomicUsize::new(0));
    let square = {
        let (entered, computed) = (entered.clone(), computed.clone());
        move |&(n,): &(i64,)| -> Result<i64, RecipeError> {
            computed.fetch_add(1, Ordering::SeqCst);
            // Finish only once every caller has started: a memoizer that let each miss
            // compute would compute ten times here.
            let started = Instant::now();
            while entered.load(Ordering::SeqCst) < 10 && started.elapsed() < Duration::from_secs(30)
            {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(50));
            Ok(n * n)
        }
    };
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    entered.fetch_add(1, Ordering::SeqCst);
                    memo.call((12,), square.clone())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "worker panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    for r in results {
        assert_eq!(r?, 144);
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    let (value, delta) = store
        .get_entry::<(i64, f64)>(&memo.key(&(12,)))?
        .ok_or("not cached")?
        .value;
    assert_eq!(value, 144);
    assert!(delta >= 0.05, "delta {delta}");
    Ok(())
}

/// Stores `("old", 1 s)` for the key `(7,)` of `memo`, expiring 100 s after `base_time()`.
fn seed_old<S: Storage>(store: &S, memo: &MemoizeStampede<S>) -> dcache::cache::Result<()> {
    store.set(
        &memo.key(&(7,)),
        &("old", 1.0),
        SetOptions::new().expire(Duration::from_secs(100)),
    )
}

fn stampede_warm_key_ten_threads_one_background_recompute<F: ClockFixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(base_time()));
    let store = F::open_with_clock(dir.path(), clock.clone())?;
    // -1 s * 1 * ln(0.25) = 1.39 s >= the 1 s left: every caller wants an early recompute.
    let memo = MemoizeStampede::new(store.clone(), "f", Duration::from_secs(100)).random(|| 0.25);
    seed_old(&store, &memo)?;
    clock.advance(Duration::from_secs(99));
    let computed = Arc::new(AtomicUsize::new(0));
    let f = {
        let computed = computed.clone();
        move |_: &(i32,)| -> Result<String, RecipeError> {
            computed.fetch_add(1, Ordering::SeqCst);
            Ok("new".into())
        }
    };
    std::thread::scope(|s| -> TestResult {
        let workers: Vec<_> = (0..10)
            .map(|_| s.spawn(|| memo.call((7,), f.clone())))
            .collect();
        for w in workers {
            let got = w.join().map_err(|_| "worker panicked")??;
            // The recompute may have finished for late callers; nobody waits for it.
            assert!(got == "old" || got == "new", "{got}");
        }
        Ok(())
    })?;
    memo.join_background();
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    assert_eq!(memo.call((7,), f)?, "new");
    Ok(())
}

const STAMPEDE_CHILD: &str = "DCACHE_TEST_RECIPES_STAMPEDE_DIR";

fn stampede_warm_key_two_processes_one_background_recompute<F: ClockFixture>(
    test_name: &str,
) -> TestResult {
    if let Ok(dir) = std::env::var(STAMPEDE_CHILD) {
        // Each child's clock stands 1 s before the result expires.
        let clock = Arc::new(ManualClock::new(base_time() + Duration::from_secs(99)));
        let store = F::open_with_clock(Path::new(&dir), clock)?;
        let memo =
            MemoizeStampede::new(store.clone(), "f", Duration::from_secs(100)).random(|| 0.25);
        let f = {
            let store = store.clone();
            move |_: &(i32,)| -> Result<String, BoxError> {
                bump(&store, "computed")?;
                // Finish only after both children got the stale result: both saw it and
                // both tried to start a recompute.
                wait_until("both children saw the stale result", || {
                    Ok(counter(&store, "stale")? >= 2)
                })?;
                Ok("new".into())
            }
        };
        bump(&store, "ready")?;
        wait_until("both children are ready", || {
            Ok(counter(&store, "ready")? >= 2)
        })?;
        let got = memo.call((7,), f)?;
        assert_eq!(got, "old");
        bump(&store, "stale")?;
        memo.join_background();
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(base_time()));
    let store = F::open_with_clock(dir.path(), clock)?;
    let memo = MemoizeStampede::new(store.clone(), "f", Duration::from_secs(100));
    seed_old(&store, &memo)?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    spawn_children(test_name, 2, STAMPEDE_CHILD, path)?.wait_all()?;
    assert_eq!(counter(&store, "stale")?, 2);
    assert_eq!(
        counter(&store, "computed")?,
        1,
        "one recompute across processes"
    );
    let entry = store
        .get_entry::<(String, f64)>(&memo.key(&(7,)))?
        .ok_or("no result")?;
    assert_eq!(entry.value.0, "new");
    assert_eq!(
        entry.expire_time,
        Some(base_time() + Duration::from_secs(99 + 100))
    );
    Ok(())
}

fn stampede_argument_tuples_get_different_keys<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let memo = MemoizeStampede::new(store.clone(), "describe", Duration::from_secs(60));
    let computed = Arc::new(AtomicUsize::new(0));
    let describe = {
        let computed = computed.clone();
        move |args: &(i64, i64)| -> Result<String, RecipeError> {
            computed.fetch_add(1, Ordering::SeqCst);
            Ok(format!("{args:?}"))
        }
    };
    assert_eq!(memo.call((1, 2), describe.clone())?, "(1, 2)");
    assert_eq!(memo.call((2, 1), describe.clone())?, "(2, 1)");
    assert_eq!(memo.call((1, 2), describe.clone())?, "(1, 2)");
    assert_eq!(computed.load(Ordering::SeqCst), 2);
    // Types are part of the key (python's typed=True): 1 and 1.0 differ.
    let as_float = memo.call((1.0, 2.0), |args: &(f64, f64)| {
        Ok::<_, RecipeError>(format!("float {args:?}"))
    })?;
    assert_eq!(as_float, "float (1.0, 2.0)");
    for (args, want) in [((1, 2), "(1, 2)"), ((2, 1), "(2, 1)")] {
        let (value, _delta) = store
            .get_entry::<(String, f64)>(&memo.key(&args))?
            .ok_or("not cached")?
            .value;
        assert_eq!(value, want);
    }
    // Another name is another function.
    let other = MemoizeStampede::new(store.clone(), "other", Duration::from_secs(60));
    assert_eq!(other.call((1, 2), describe)?, "(1, 2)");
    assert_eq!(computed.load(Ordering::SeqCst), 3);
    Ok(())
}

fn throttled_memoized_function<F: ClockFixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(base_time()));
    let store = F::open_with_clock(dir.path(), clock.clone())?;
    let slept = Arc::new(Mutex::new(Vec::new()));
    let api_calls = Arc::new(AtomicUsize::new(0));
    let api = {
        let api_calls = api_calls.clone();
        move |(query,): &(String,)| -> Result<String, RecipeError> {
            api_calls.fetch_add(1, Ordering::SeqCst);
            Ok(format!("API result for {query}"))
        }
    };
    let memoized = MemoizeStampede::new(store.clone(), "memoized_api", Duration::from_secs(300))
        .random(|| 1.0)
        .wrap(api);
    let api = Throttle::builder(store, "throttled_api", 2, Duration::from_secs(10))
        .sleep({
            let (clock, slept) = (clock.clone(), slept.clone());
            move |d| {
                slept.lock().expect("sleeps").push(d);
                clock.advance(d);
            }
        })
        .build()?
        .wrap(memoized);
    for _round in 0..2 {
        for i in 0..2 {
            assert_eq!(
                api((format!("query_{i}"),))?,
                format!("API result for query_{i}")
            );
        }
    }
    // Two real API calls; every call, cached or not, counted against the throttle.
    assert_eq!(api_calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        *slept.lock().expect("sleeps"),
        vec![Duration::from_secs(5); 2]
    );
    Ok(())
}

#[test]
fn recipe_types_are_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Throttle<Cache>>();
    check::<Barrier<Cache>>();
    check::<Barrier<FanoutCache, RLock<FanoutCache>>>();
    check::<MemoizeStampede<Cache>>();
    check::<MemoizeStampede<FanoutCache>>();
}
