//! Threads and processes sharing one cache: readers never wait, writers never lose updates.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use dcache_core::{Cache, Error};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn cache_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Cache>();
    #[cfg(feature = "msgpack")]
    check::<Cache<dcache_core::MsgpackDisk>>();
}

#[test]
fn readers_do_not_wait_for_an_open_transaction() -> TestResult {
    let cache = Cache::temp()?;
    cache.set("k", "before")?;
    let (in_tx, tx_open) = mpsc::channel();
    let (done, release) = mpsc::channel::<()>();
    let writer = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            cache.transact(|c| -> Result<(), Error> {
                c.set("k", "during")?;
                in_tx.send(()).unwrap();
                release.recv().unwrap();
                Ok(())
            })
        })
    };
    tx_open.recv()?;
    // Thread B reads while A holds the write transaction: it sees the committed value.
    let reader = {
        let cache = cache.clone();
        std::thread::spawn(move || cache.get::<String>("k"))
    };
    let seen = reader.join().unwrap()?;
    assert_eq!(seen.as_deref(), Some("before"));
    done.send(())?;
    writer.join().unwrap()?;
    assert_eq!(cache.get::<String>("k")?.as_deref(), Some("during"));
    Ok(())
}

#[test]
fn a_writer_times_out_while_another_thread_holds_the_lock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let holder = Cache::open(dir.path())?;
    let waiter = Cache::builder()
        .timeout(Duration::from_millis(50))
        .open(dir.path())?;
    let (in_tx, tx_open) = mpsc::channel();
    let (done, release) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        holder.transact(|c| -> Result<(), Error> {
            c.set("a", 1)?;
            in_tx.send(()).unwrap();
            release.recv().unwrap();
            Ok(())
        })
    });
    tx_open.recv()?;
    let started = std::time::Instant::now();
    let err = waiter.set("b", 2).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    // A retrying handle waits it out.
    let retrying = waiter.retrying();
    let r = std::thread::spawn(move || retrying.set("b", 3));
    std::thread::sleep(Duration::from_millis(100));
    done.send(())?;
    t.join().unwrap()?;
    r.join().unwrap()?;
    assert_eq!(waiter.get::<i64>("b")?, Some(3));
    Ok(())
}

#[test]
fn sixteen_threads_racing_add_exactly_one_wins() -> TestResult {
    let cache = Cache::temp()?;
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(16));
        let wins = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let (cache, barrier, wins) = (cache.retrying(), barrier.clone(), wins.clone());
                std::thread::spawn(move || -> Result<(), Error> {
                    barrier.wait();
                    if cache.add(("race", round), t)? {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap()?;
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1, "round {round}");
    }
    Ok(())
}

#[test]
fn threads_incrementing_one_key_lose_nothing() -> TestResult {
    let cache = Cache::temp()?;
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.retrying();
            std::thread::spawn(move || -> Result<(), Error> {
                for _ in 0..250 {
                    cache.incr("n", 1)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap()?;
    }
    assert_eq!(cache.get::<i64>("n")?, Some(2000));
    Ok(())
}

const CHILD_ENV: &str = "DCACHE_TEST_INCR_CHILD_DIR";

#[test]
fn four_processes_incrementing_one_key_end_exact() -> TestResult {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let cache = Cache::open(&dir)?.retrying();
        for _ in 0..1000 {
            cache.incr("counter", 1)?;
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_str().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            common::spawn_child(
                "four_processes_incrementing_one_key_end_exact",
                &[(CHILD_ENV, path)],
            )
        })
        .collect();
    for mut child in children {
        assert!(child.wait()?.success(), "a child failed");
    }
    let cache = Cache::open(dir.path())?;
    assert_eq!(cache.get::<i64>("counter")?, Some(4000));
    Ok(())
}

const OPEN_RACE_ENV: &str = "DCACHE_TEST_OPEN_RACE_DIR";

#[test]
fn processes_creating_one_directory_at_once_all_succeed() -> TestResult {
    if let Ok(dir) = std::env::var(OPEN_RACE_ENV) {
        // A tiny handle timeout: opening must still retry its races (python allows 60 s).
        let cache = Cache::builder()
            .timeout(Duration::from_millis(1))
            .open(&dir)?;
        cache.retrying().incr("opened", 1)?;
        return Ok(());
    }
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("new");
    let path = dir.to_str().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            common::spawn_child(
                "processes_creating_one_directory_at_once_all_succeed",
                &[(OPEN_RACE_ENV, path)],
            )
        })
        .collect();
    for mut child in children {
        assert!(child.wait()?.success(), "a child failed to open");
    }
    assert_eq!(Cache::open(&dir)?.get::<i64>("opened")?, Some(8));
    Ok(())
}

#[test]
fn a_reset_is_seen_at_once_by_threads_that_read_the_settings_before() -> TestResult {
    let cache = Cache::temp()?;
    let (to_reader, reader_rx) = std::sync::mpsc::channel::<()>();
    let (to_main, main_rx) = std::sync::mpsc::channel::<u64>();
    let reader = {
        let cache = cache.clone();
        std::thread::spawn(move || -> Result<(), dcache_core::Error> {
            // Each read caches this thread's view of the settings.
            cache.set("k", "v")?;
            to_main.send(cache.settings().cull_limit).ok();
            reader_rx.recv().ok();
            cache.set("k", "w")?;
            to_main.send(cache.settings().cull_limit).ok();
            Ok(())
        })
    };
    assert_eq!(main_rx.recv()?, 10);
    cache.reset("cull_limit", 3)?;
    to_reader.send(())?;
    assert_eq!(main_rx.recv()?, 3, "the reader kept the old settings");
    reader.join().map_err(|_| "reader panicked")??;
    Ok(())
}
