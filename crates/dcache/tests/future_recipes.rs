//! The async recipes (`dcache::future`): throttle rate, barrier serialization, memoization
//! computing once for many concurrent tasks, errors not cached, cancellation.
//!
//! Every test is generic over the store: `future_recipe_tests!(name, Fixture)` runs the set
//! on a `Cache`, a `FanoutCache` and a `RedisStore`. They use the `future` module of
//! dcache-recipes (enabled by the facade's dev-dependencies), so they run without the
//! facade's `tokio` feature.

mod common;

use common::stores::{CacheFixture, FanoutFixture, Fixture, RedisFixture};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dcache::Storage;
use dcache::recipes::Error as RecipeError;
use dcache_recipes::future::{Barrier, MemoizeStampede, Memoized, Throttle};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

macro_rules! future_recipe_tests {
    ($name:ident, $fixture:ty) => {
        mod $name {
            use super::*;

            macro_rules! case {
                ($test:ident) => {
                    #[test]
                    fn $test() -> TestResult {
                        if !<$fixture as Fixture>::available() {
                            return Ok(());
                        }
                        super::$test::<$fixture>()
                    }
                };
            }

            case!(throttle_holds_tasks_to_its_rate);
            case!(barrier_runs_one_call_at_a_time);
            case!(reentrant_barrier_lets_its_task_enter_again);
            case!(memoize_stampede_computes_once_for_many_tasks);
            case!(memoized_computes_once_for_many_tasks);
            case!(errors_are_not_cached);
            case!(a_dropped_computation_stores_nothing_and_the_next_caller_computes);
            case!(early_recomputation_runs_in_the_background);
            case!(async_and_blocking_memoizers_share_results);
        }
    };
}

future_recipe_tests!(cache, CacheFixture);
future_recipe_tests!(fanout, FanoutFixture);
future_recipe_tests!(redis, RedisFixture);

fn multi_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
}

fn throttle_holds_tasks_to_its_rate<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        // 10 calls per 200 ms: a burst of 10, then 50 a second.
        let throttle = Throttle::new(store, "api", 10, Duration::from_millis(200)).await?;
        let started = Instant::now();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (throttle, calls) = (throttle.clone(), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    throttle
                        .call(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, RecipeError>(())
                        })
                        .await?;
                }
                Ok::<_, RecipeError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let elapsed = started.elapsed();
        assert_eq!(calls.load(Ordering::SeqCst), 40);
        // 30 calls past the burst at 50 a second: 600 ms at least (less a little rounding).
        assert!(elapsed >= Duration::from_millis(580), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        Ok(())
    })
}

fn barrier_runs_one_call_at_a_time<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let barrier = Barrier::new(store, "serial").expire(Duration::from_secs(60));
        let inside = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (barrier, inside, calls) =
                (barrier.clone(), Arc::clone(&inside), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    barrier
                        .call(|| async {
                            assert!(!inside.swap(true, Ordering::SeqCst), "two calls at once");
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            inside.store(false, Ordering::SeqCst);
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, RecipeError>(())
                        })
                        .await?;
                }
                Ok::<_, RecipeError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 24);
        Ok(())
    })
}

fn reentrant_barrier_lets_its_task_enter_again<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let barrier = Barrier::reentrant(store.clone(), "nested");
        let inner = barrier.clone();
        let depth = tokio::time::timeout(
            Duration::from_secs(30),
            barrier.call(|| async move { inner.call(|| async { Ok::<_, RecipeError>(2) }).await }),
        )
        .await??;
        assert_eq!(depth, 2);
        assert!(!dcache::RLock::new(store, "nested".to_owned()).locked()?);
        Ok(())
    })
}

/// Runs `memo`'s call on 16 tasks at once: the function runs once, and all get its result.
fn memoize_stampede_computes_once_for_many_tasks<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let memo = MemoizeStampede::new(store, "square", Duration::from_secs(60));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (memo, calls) = (memo.clone(), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                memo.call((12_i64,), move |&(n,): &(i64,)| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, RecipeError>(n * n)
                })
                .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await??, 144);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        Ok(())
    })
}

fn memoized_computes_once_for_many_tasks<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let memo = Memoized::new(store.clone(), "page").expire(Duration::from_secs(60));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (memo, calls) = (memo.clone(), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                memo.call(("/index".to_owned(),), |(path,): &(String,)| {
                    let path = path.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, RecipeError>(format!("<{path}>"))
                    }
                })
                .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await??, "</index>");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Stored as the blocking memoizer stores it.
        let blocking = dcache::cache::Memoized::new(store, "page");
        let cached: String = blocking.call(&("/index".to_owned(),), || {
            Err::<String, _>(dcache::cache::Error::KeyNotFound)
        })?;
        assert_eq!(cached, "</index>");
        Ok(())
    })
}

/// A failing computation is returned to its caller only; the next caller computes again.
fn errors_are_not_cached<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let memo = MemoizeStampede::new(store, "flaky", Duration::from_secs(60));
        let calls = Arc::new(AtomicUsize::new(0));
        // Eight tasks at once; the first computation fails.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (memo, calls) = (memo.clone(), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                memo.call((1_u8,), move |_: &(u8,)| async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if n == 0 {
                        Err(RecipeError::Lock {
                            key: "flaky".into(),
                            source: "the backend is down".into(),
                        })
                    } else {
                        Ok(n)
                    }
                })
                .await
            }));
        }
        let mut failed = 0;
        let mut values = Vec::new();
        for task in tasks {
            match task.await? {
                Ok(v) => values.push(v),
                Err(e) => {
                    assert!(e.to_string().contains("the backend is down"), "{e}");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 1);
        // The second computation succeeded and the remaining seven share it.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(values.iter().all(|&v| v == 1), "{values:?}");
        Ok(())
    })
}

fn a_dropped_computation_stores_nothing_and_the_next_caller_computes<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let memo = Memoized::new(store.clone(), "slow");
        let slow = |&(n,): &(u32,)| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, RecipeError>(n + 1)
        };
        let dropped = tokio::time::timeout(Duration::from_millis(20), memo.call((1,), slow)).await;
        assert!(dropped.is_err(), "the computation takes 200 ms");
        assert_eq!(
            store
                .get_entry::<u32>(&memo.key(&(1_u32,)))?
                .map(|e| e.value),
            None
        );
        let started = Instant::now();
        assert_eq!(memo.call((1,), slow).await?, 2);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "computed again"
        );
        assert_eq!(memo.call((1,), slow).await?, 2);
        Ok(())
    })
}

fn early_recomputation_runs_in_the_background<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        // A random number near 0 and a computation of 100 ms: python's test finds every hit
        // about to expire (-0.1 * ln(1e-300) = 69 s > 60 s).
        let memo =
            MemoizeStampede::new(store, "counter", Duration::from_secs(60)).random(|| 1e-300);
        let calls = Arc::new(AtomicUsize::new(0));
        let next = |calls: Arc<AtomicUsize>| {
            move |(): &()| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, RecipeError>(calls.fetch_add(1, Ordering::SeqCst))
            }
        };
        assert_eq!(memo.call((), next(Arc::clone(&calls))).await?, 0); // a miss
        assert_eq!(memo.call((), next(Arc::clone(&calls))).await?, 0); // stale: recomputes
        memo.join_background().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The next hit gets the recomputed value (and may start another recomputation).
        let value = memo.call((), next(Arc::clone(&calls))).await?;
        assert_eq!(value, 1);
        memo.join_background().await;
        Ok(())
    })
}

fn async_and_blocking_memoizers_share_results<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let memo = MemoizeStampede::new(store.clone(), "shared", Duration::from_secs(60));
        let v = memo
            .call((3_i64,), |&(n,): &(i64,)| async move {
                Ok::<_, RecipeError>(n * 10)
            })
            .await?;
        assert_eq!(v, 30);
        let blocking = dcache::MemoizeStampede::new(store, "shared", Duration::from_secs(60));
        let cached = tokio::task::spawn_blocking(move || {
            blocking.call((3_i64,), |_: &(i64,)| {
                Err::<i64, _>(RecipeError::Lock {
                    key: "shared".into(),
                    source: "must not run".into(),
                })
            })
        })
        .await??;
        assert_eq!(cached, 30);
        Ok(())
    })
}
