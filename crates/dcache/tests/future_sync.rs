//! The async `Lock`, `RLock`, `BoundedSemaphore` and `Averager` (`dcache::future`): waits that
//! never block a runtime worker, in-process wake-ups, cancellation, task ownership.
//!
//! Every test is generic over the store: `future_sync_tests!(name, Fixture)` runs the set on
//! a `Cache`, a `FanoutCache` and a `RedisStore`. They use the `future` modules of the
//! crates the facade re-exports (enabled by its dev-dependencies), so they run without the
//! facade's `tokio` feature.

mod common;

use common::spawn_child;
use common::stores::{CacheFixture, FanoutFixture, Fixture, RedisFixture};

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::path::Path;
use std::pin::pin;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use dcache::sync::Error as SyncError;
use dcache::{Cache, SetOptions, Storage};
use dcache_sync::future::{Averager, BoundedSemaphore, Lock, RLock, task_owner_id};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

macro_rules! future_sync_tests {
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

            #[test]
            fn a_waiter_on_a_lock_held_by_another_process_does_not_stall_its_runtime() -> TestResult
            {
                if !<$fixture as Fixture>::available() {
                    return Ok(());
                }
                super::a_waiter_on_a_lock_held_by_another_process_does_not_stall_its_runtime::<
                    $fixture,
                >(concat!(
                    stringify!($name),
                    "::a_waiter_on_a_lock_held_by_another_process_does_not_stall_its_runtime"
                ))
            }
            case!(a_release_in_this_process_wakes_an_async_waiter_at_once);
            case!(lock_counter_sixty_four_tasks);
            case!(cancelled_lock_acquires_leave_the_lock_free);
            case!(cancelled_semaphore_acquires_give_every_permit_back);
            case!(cancelled_rlock_acquires_leave_it_free);
            case!(rlock_is_owned_by_a_task);
            case!(semaphore_bounds_tasks);
            case!(async_and_blocking_locks_exclude_each_other_and_fence);
            case!(averager_of_many_tasks);
        }
    };
}

future_sync_tests!(cache, CacheFixture);
future_sync_tests!(fanout, FanoutFixture);
future_sync_tests!(redis, RedisFixture);

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

fn multi_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

/// A xorshift generator seeded by the OS (through std's hasher keys).
fn random_below(n: u64) -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(1u8) | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x % n
    })
}

/// A tiny random duration, 0 to 3 ms, in microseconds steps.
fn tiny() -> Duration {
    Duration::from_micros(random_below(3_000))
}

/// Waits (polling) until `check` holds, up to `limit`.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Result<(), SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, SyncError>>,
{
    let started = Instant::now();
    while !check().await? {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn increment<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<()> {
    let n = store.get_entry::<i64>(key)?.map_or(0, |e| e.value);
    store.set(key, &(n + 1), SetOptions::new())
}

fn read_counter<S: Storage>(store: &S, key: &str) -> dcache::cache::Result<i64> {
    Ok(store.get_entry::<i64>(key)?.map_or(0, |e| e.value))
}

// ----- other processes -----

const HOLDER_CHILD: &str = "DCACHE_TEST_FUTURE_HOLDER_DIR";

/// One task waits on a lock a child process holds, on a current-thread runtime: the other
/// tasks of the runtime keep running, and the waiter gets the lock once the child releases.
fn a_waiter_on_a_lock_held_by_another_process_does_not_stall_its_runtime<F: Fixture>(
    test_name: &str,
) -> TestResult {
    if let Ok(dir) = std::env::var(HOLDER_CHILD) {
        // The child: hold the (blocking) lock until the parent says "go", then release.
        let store = F::open(Path::new(&dir))?;
        let lock = dcache::Lock::new(store.clone(), "shared-job");
        let guard = lock.acquire()?;
        let started = Instant::now();
        while store.get_entry::<bool>("go")?.is_none() {
            assert!(started.elapsed() < Duration::from_secs(120), "no go");
            std::thread::sleep(Duration::from_millis(2));
        }
        guard.unlock()?;
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    let path = dir.path().to_str().ok_or("temp path is not UTF-8")?;
    let mut child = KillOnDrop(spawn_child(test_name, &[(HOLDER_CHILD, path)])?);
    current_thread()?.block_on(async {
        let lock = Lock::new(store.clone(), "shared-job");
        eventually(Duration::from_secs(60), || lock.locked()).await?;

        let acquired = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn({
            let lock = lock.clone();
            let acquired = Arc::clone(&acquired);
            async move {
                let guard = lock.acquire().await?;
                acquired.store(true, Ordering::SeqCst);
                guard.unlock().await
            }
        });
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });

        // The runtime's one thread keeps running the ticker (and this task) while the waiter
        // waits.
        let started = Instant::now();
        while ticks.load(Ordering::SeqCst) < 100 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the ticker stalled"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!acquired.load(Ordering::SeqCst), "the child still holds it");
        assert!(!waiter.is_finished());

        let before = ticks.load(Ordering::SeqCst);
        let go = store.clone();
        tokio::task::spawn_blocking(move || go.set("go", &true, SetOptions::new())).await??;
        tokio::time::timeout(Duration::from_secs(30), waiter).await???;
        assert!(acquired.load(Ordering::SeqCst));
        assert!(!lock.locked().await?);
        // The ticker ran meanwhile too.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(ticks.load(Ordering::SeqCst) > before);
        ticker.abort();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    assert!(child.0.wait()?.success(), "the child failed");
    Ok(())
}

// ----- in-process wake-ups -----

/// A release in this process (async or blocking) wakes an async waiter at once, long before
/// its next poll.
fn a_release_in_this_process_wakes_an_async_waiter_at_once<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        // Polls for other processes' releases at most every 60 s: only a wake-up can be
        // prompt.
        let lock = Lock::new(store.clone(), "handoff").poll_interval(Duration::from_secs(60));
        for blocking_release in [false, true] {
            let held = lock.acquire().await?;
            let waiter = tokio::spawn({
                let lock = lock.clone();
                async move {
                    let guard = lock.acquire().await?;
                    let at = Instant::now();
                    guard.unlock().await?;
                    Ok::<_, SyncError>(at)
                }
            });
            // Long enough for the waiter's pause to grow to about a second.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!waiter.is_finished(), "the lock is held");
            let released = if blocking_release {
                let token = held.forget();
                let blocking = lock.as_blocking().clone();
                tokio::task::spawn_blocking(move || {
                    blocking.release(&token)?;
                    Ok::<_, SyncError>(Instant::now())
                })
                .await??
            } else {
                held.unlock().await?;
                Instant::now()
            };
            let acquired = tokio::time::timeout(Duration::from_secs(30), waiter).await???;
            let delay = acquired.saturating_duration_since(released);
            assert!(
                delay < Duration::from_millis(300),
                "woken {delay:?} after the release (blocking release: {blocking_release})"
            );
        }
        assert!(!lock.locked().await?);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })
}

/// 64 tasks on two workers increment a counter under the lock without atomicity: it ends
/// exact.
fn lock_counter_sixty_four_tasks<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let lock = Lock::new(store.clone(), "counter-lock");
        let inside = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let lock = lock.clone();
            let store = store.clone();
            let inside = Arc::clone(&inside);
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let guard = lock.acquire().await?;
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    let s = store.clone();
                    tokio::task::spawn_blocking(move || increment(&s, "counter")).await??;
                    inside.store(false, Ordering::SeqCst);
                    guard.unlock().await?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        assert_eq!(read_counter(&store, "counter")?, 320);
        assert!(!lock.locked().await?);
        Ok(())
    })
}

// ----- cancellation -----

/// Acquires dropped at random points (timeouts of 0 to 3 ms) while another task takes and
/// gives back the lock: afterwards the lock is free.
fn cancelled_lock_acquires_leave_the_lock_free<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let lock = Lock::new(store.clone(), "cancel-lock");
        let stop = Arc::new(AtomicBool::new(false));
        let holder = tokio::spawn({
            let lock = lock.clone();
            let stop = Arc::clone(&stop);
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let guard = lock.acquire().await?;
                    tokio::time::sleep(tiny()).await;
                    guard.unlock().await?;
                    tokio::time::sleep(tiny()).await;
                }
                Ok::<_, SyncError>(())
            }
        });
        let mut won = 0;
        for i in 0..300 {
            let attempt = async {
                if i % 3 == 0 {
                    lock.try_acquire().await.map(|g| g.is_some())
                } else {
                    let guard = lock.acquire().await?;
                    if i % 2 == 0 {
                        tokio::time::sleep(tiny()).await; // dropped while held, sometimes
                    }
                    drop(guard);
                    Ok(true)
                }
            };
            if let Ok(result) = tokio::time::timeout(tiny(), attempt).await {
                won += usize::from(result?);
            }
        }
        stop.store(true, Ordering::SeqCst);
        holder.await??;
        eprintln!("{won} of 300 attempts won the lock before their timeout");
        // Releases handed to the blocking pool by dropped guards, and attempts that were
        // still running there, finish within moments.
        eventually(Duration::from_secs(10), || async {
            Ok(!lock.locked().await?)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!lock.locked().await?, "a late attempt kept the lock");
        let guard = lock.try_acquire().await?.ok_or("the lock is not free")?;
        guard.unlock().await?;
        Ok(())
    })
}

fn cancelled_semaphore_acquires_give_every_permit_back<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let semaphore = BoundedSemaphore::new(store.clone(), "cancel-sem", 2);
        let stop = Arc::new(AtomicBool::new(false));
        let holder = tokio::spawn({
            let semaphore = semaphore.clone();
            let stop = Arc::clone(&stop);
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let permit = semaphore.acquire().await?;
                    tokio::time::sleep(tiny()).await;
                    permit.release().await?;
                }
                Ok::<_, SyncError>(())
            }
        });
        for i in 0..300 {
            let attempt = async {
                let permit = semaphore.acquire().await?;
                if i % 2 == 0 {
                    tokio::time::sleep(tiny()).await;
                }
                drop(permit);
                Ok::<_, SyncError>(())
            };
            if let Ok(result) = tokio::time::timeout(tiny(), attempt).await {
                result?;
            }
        }
        stop.store(true, Ordering::SeqCst);
        holder.await??;
        eventually(Duration::from_secs(10), || async {
            Ok(semaphore.available().await? == 2)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(semaphore.available().await?, 2);
        Ok(())
    })
}

fn cancelled_rlock_acquires_leave_it_free<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let rlock = RLock::new(store.clone(), "cancel-rlock");
        let stop = Arc::new(AtomicBool::new(false));
        let holder = tokio::spawn({
            let rlock = rlock.clone();
            let stop = Arc::clone(&stop);
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let outer = rlock.acquire().await?;
                    let inner = rlock.acquire().await?;
                    tokio::time::sleep(tiny()).await;
                    inner.unlock().await?;
                    outer.unlock().await?;
                }
                Ok::<_, SyncError>(())
            }
        });
        let cancelled = tokio::spawn({
            let rlock = rlock.clone();
            async move {
                for _ in 0..300 {
                    let attempt = async {
                        let outer = rlock.acquire().await?;
                        let inner = rlock.acquire().await?;
                        tokio::time::sleep(tiny()).await;
                        drop((inner, outer));
                        Ok::<_, SyncError>(())
                    };
                    if let Ok(result) = tokio::time::timeout(tiny(), attempt).await {
                        result?;
                    }
                }
                Ok::<_, SyncError>(())
            }
        });
        cancelled.await??;
        stop.store(true, Ordering::SeqCst);
        holder.await??;
        eventually(Duration::from_secs(10), || async {
            Ok(!rlock.locked().await?)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rlock.owner().await?, None);
        Ok(())
    })
}

// ----- RLock, semaphore, averager -----

fn rlock_is_owned_by_a_task<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let rlock = RLock::new(store.clone(), "task-rlock");
        let (outer, inner, me) = tokio::spawn({
            let rlock = rlock.clone();
            async move {
                let outer = rlock.acquire().await?;
                // The task may move between the two worker threads; it stays the owner.
                tokio::task::yield_now().await;
                let inner = rlock.acquire().await?;
                Ok::<_, SyncError>((outer, inner, task_owner_id()))
            }
        })
        .await??;
        assert!(me.contains("-task-"), "{me}");
        assert_eq!(inner.owner(), me);
        assert_eq!(rlock.owner().await?, Some((me.clone(), 2)));

        // Another task (and a blocking thread) may not enter.
        let other = tokio::spawn({
            let rlock = rlock.clone();
            async move { rlock.try_acquire().await.map(|g| g.is_some()) }
        });
        assert!(!other.await??);
        let blocking = rlock.as_blocking().clone();
        let entered =
            tokio::task::spawn_blocking(move || blocking.try_acquire().map(|g| g.is_some()))
                .await??;
        assert!(!entered);
        // ...nor release it.
        let err = rlock.release().await.unwrap_err();
        assert!(matches!(err, SyncError::NotOwner { .. }), "{err}");

        // Guards release as their owner, wherever they are dropped.
        inner.unlock().await?;
        tokio::spawn(async move { drop(outer) }).await?;
        eventually(Duration::from_secs(10), || async {
            Ok(!rlock.locked().await?)
        })
        .await?;

        // Outside any task, the thread is the owner.
        assert_eq!(task_owner_id(), dcache::sync::owner_id());
        let guard = rlock.acquire().await?;
        assert_eq!(rlock.owner().await?, Some((dcache::sync::owner_id(), 1)));
        guard.unlock().await?;
        Ok(())
    })
}

fn semaphore_bounds_tasks<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let semaphore = BoundedSemaphore::new(store.clone(), "bounded", 3);
        let inside = Arc::new(AtomicU64::new(0));
        let high = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let semaphore = semaphore.clone();
            let inside = Arc::clone(&inside);
            let high = Arc::clone(&high);
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    let permit = semaphore.acquire().await?;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    high.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    permit.release().await?;
                }
                Ok::<_, SyncError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let high = high.load(Ordering::SeqCst);
        assert!((1..=3).contains(&high), "high-water mark {high}");
        assert_eq!(semaphore.available().await?, 3);
        let err = semaphore.release().await.unwrap_err();
        assert!(matches!(err, SyncError::OverRelease { .. }), "{err}");
        let held: Vec<_> = [
            semaphore.acquire().await?,
            semaphore.acquire().await?,
            semaphore.acquire().await?,
        ]
        .into();
        let err = semaphore
            .acquire_timeout(Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        for permit in held {
            permit.release().await?;
        }
        Ok(())
    })
}

/// The async and the blocking lock on one key exclude each other, and fencing tokens grow
/// across both.
fn async_and_blocking_locks_exclude_each_other_and_fence<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let lock = Lock::new(store.clone(), "mixed");
        let first = lock.acquire().await?;
        let fence = first.fencing_token();
        assert!(first.is_held().await?);
        let blocking = lock.as_blocking().clone();
        let taken = tokio::task::spawn_blocking(move || {
            let guard = blocking.acquire()?; // waits for the async holder
            Ok::<_, SyncError>(guard.fencing_token())
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!taken.is_finished());
        first.unlock().await?;
        let second = tokio::time::timeout(Duration::from_secs(30), taken).await???;
        assert!(second > fence);
        let third = lock.acquire().await?;
        assert!(third.fencing_token() > second);
        // A forgotten acquisition is released by its token; a second release is lost.
        let token = third.forget();
        lock.release(token.clone()).await?;
        let err = lock.release(token).await.unwrap_err();
        assert!(matches!(err, SyncError::LockLost { .. }), "{err}");
        let guard = lock.acquire().await?;
        assert!(lock.force_release().await?);
        assert!(matches!(
            guard.unlock().await,
            Err(SyncError::LockLost { .. })
        ));
        Ok(())
    })
}

fn averager_of_many_tasks<F: Fixture>() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = F::open(dir.path())?;
    multi_thread()?.block_on(async {
        let averager = Averager::new(store.clone(), "latency");
        let mut tasks = Vec::new();
        for i in 0..16_u32 {
            let averager = averager.clone();
            tasks.push(tokio::spawn(
                async move { averager.add(f64::from(i)).await },
            ));
        }
        for task in tasks {
            task.await??;
        }
        assert_eq!(averager.get().await?, Some(7.5));
        assert_eq!(averager.pop().await?, Some(7.5));
        assert_eq!(averager.get().await?, None);
        Ok(())
    })
}

// ----- outside a runtime -----

#[test]
fn outside_a_runtime_an_operation_is_an_error_not_a_panic() -> TestResult {
    let lock = Lock::new(Cache::temp()?, "no-runtime");
    let mut acquire = pin!(lock.try_acquire());
    let mut cx = Context::from_waker(Waker::noop());
    match acquire.as_mut().poll(&mut cx) {
        Poll::Ready(Err(SyncError::Runtime { .. })) => Ok(()),
        other => Err(format!("expected a Runtime error, got {other:?}").into()),
    }
}

/// Guards outliving their runtime release inline when dropped (no runtime to hand the
/// release to).
#[test]
fn guards_dropped_outside_a_runtime_release_inline() -> TestResult {
    let cache = Cache::temp()?;
    let lock = Lock::new(cache.clone(), "outlives");
    let semaphore = BoundedSemaphore::new(cache.clone(), "outlives-sem", 1);
    let rlock = RLock::new(cache, "outlives-r");
    let (guard, permit, level) = current_thread()?.block_on(async {
        let guard = lock.acquire().await?;
        let permit = semaphore.acquire().await?;
        let level = tokio::spawn({
            let rlock = rlock.clone();
            async move { rlock.acquire().await }
        })
        .await??;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((guard, permit, level))
    })?; // the runtime is gone
    assert!(lock.as_blocking().locked()?);
    assert_eq!(semaphore.as_blocking().available()?, 0);
    assert!(rlock.as_blocking().locked()?);
    drop((guard, permit, level));
    assert!(!lock.as_blocking().locked()?);
    assert_eq!(semaphore.as_blocking().available()?, 1);
    assert!(!rlock.as_blocking().locked()?);
    Ok(())
}

#[test]
fn async_types_and_their_futures_are_send() -> TestResult {
    fn send_sync<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let cache = Cache::temp()?;
    let lock = Lock::new(cache.clone(), "l");
    let rlock = RLock::new(cache.clone(), "r");
    let semaphore = BoundedSemaphore::new(cache.clone(), "s", 1);
    let averager = Averager::new(cache, "a");
    send_sync(&lock);
    send_sync(&rlock);
    send_sync(&semaphore);
    send_sync(&averager);
    send(&lock.acquire());
    send(&rlock.acquire());
    send(&semaphore.acquire());
    send(&averager.add(1.0));
    Ok(())
}
