//! `RedisStore` when the server fails: unreachable, silent, killed and restarted while a lock
//! is held and waiters wait. Each test runs a `redis-server` of its own on a free port.

mod common;

use common::server::{BoxError, Server, free_port, redis_server_available};

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use dcache::cache::Error;
use dcache::sync::Error as SyncError;
use dcache::{BackendErrorKind, Lock, SetOptions, Storage};
use dcache_redis::RedisStore;

type TestResult = Result<(), BoxError>;

/// Runs `f` on a thread and fails if it takes longer than `limit` (a hang).
fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<(T, Duration), BoxError> {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let out = f();
        let _ = tx.send(out);
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok((out, started.elapsed())),
        Err(_) => Err(format!("hung for more than {limit:?}").into()),
    }
}

fn backend_kind(e: &Error) -> Option<BackendErrorKind> {
    e.backend_kind()
}

fn sync_backend_kind(e: &SyncError) -> Option<BackendErrorKind> {
    match e {
        SyncError::Store(e) => e.backend_kind(),
        _ => None,
    }
}

#[test]
fn nothing_listening_is_unreachable_at_once() -> TestResult {
    let port = free_port("127.0.0.1")?;
    let (result, took) = within(Duration::from_secs(10), move || {
        RedisStore::builder(&format!("redis://127.0.0.1:{port}/"))
            .connect_timeout(Duration::from_secs(1))
            .open()
    })?;
    let err = result.expect_err("nothing listens there");
    assert_eq!(
        backend_kind(&err),
        Some(BackendErrorKind::Unreachable),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("server runs") && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    Ok(())
}

#[test]
fn a_server_that_never_answers_times_out_within_the_configured_timeout() -> TestResult {
    // Accepts connections and reads, but never replies.
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = stream.read(&mut buf);
            held.push(stream); // kept open, silent
        }
    });
    let timeout = Duration::from_millis(500);
    let (result, took) = within(Duration::from_secs(20), move || {
        RedisStore::builder(&format!("redis://127.0.0.1:{port}/"))
            .connect_timeout(timeout)
            .response_timeout(timeout)
            .open()
    })?;
    let err = result.expect_err("the server never answers");
    let kind = backend_kind(&err);
    assert!(
        matches!(
            kind,
            Some(BackendErrorKind::Timeout | BackendErrorKind::Unreachable)
        ),
        "{err}"
    );
    assert!(took < timeout * 4 + Duration::from_secs(1), "took {took:?}");
    Ok(())
}

#[test]
fn a_killed_server_gives_typed_errors_without_hanging() -> TestResult {
    if !redis_server_available() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(&["127.0.0.1"], free_port("127.0.0.1")?, dir.path(), false)?;
    let timeout = Duration::from_millis(500);
    let store = RedisStore::builder(&server.url())
        .connect_timeout(timeout)
        .response_timeout(timeout)
        .open()?;
    let lock = Lock::new(store.clone(), "job").expire(Duration::from_secs(30));
    let guard = lock.acquire()?;
    server.kill()?;

    let s = store.clone();
    let (result, took) = within(Duration::from_secs(10), move || {
        s.set("k", "v", SetOptions::new())
    })?;
    let err = result.expect_err("the server is down");
    assert!(
        matches!(
            backend_kind(&err),
            Some(BackendErrorKind::Unreachable | BackendErrorKind::ConnectionLost)
        ),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    // A blocking acquire reports the outage instead of waiting through it.
    let l = lock.clone();
    let (result, _) = within(Duration::from_secs(10), move || {
        l.acquire().map(dcache::sync::LockGuard::forget)
    })?;
    let err = result.expect_err("the server is down");
    assert!(sync_backend_kind(&err).is_some(), "{err}");
    // The holder's release fails with a typed error too.
    let err = guard.unlock().expect_err("the server is down");
    assert!(sync_backend_kind(&err).is_some(), "{err}");
    // now() keeps the last known server clock offset.
    let before = store.now();
    assert!(before.elapsed().unwrap_or_default() < Duration::from_secs(5));
    Ok(())
}

/// A server restarted while a lock is held and waiters wait: every waiter gets the lock after
/// a release, or a typed error; never two holders at once. Without persistence the lock is
/// lost with the restart (the documented rule): a new holder gets in at once, with a larger
/// fencing token. With persistence it survives, and the holder releases it after the restart.
fn restart_while_held(persistent: bool) -> TestResult {
    if !redis_server_available() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(
        &["127.0.0.1"],
        free_port("127.0.0.1")?,
        dir.path(),
        persistent,
    )?;
    let store = RedisStore::builder(&server.url())
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .open()?;
    let lock = Lock::new(store.clone(), "job").expire(Duration::from_secs(60));
    let held = lock.acquire()?;
    let first_fence = held.fencing_token();

    // Three waiters, each retrying through errors for a while, as an application would.
    let inside = Arc::new(AtomicBool::new(false));
    // Set once the first holder released (or lost) the lock.
    let first_done = Arc::new(AtomicBool::new(false));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let lock = lock.clone();
            let inside = Arc::clone(&inside);
            let first_done = Arc::clone(&first_done);
            std::thread::spawn(move || -> (Vec<String>, Option<u64>) {
                let mut errors = Vec::new();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(15) {
                    match lock.acquire_timeout(Duration::from_secs(15)) {
                        Ok(guard) => {
                            let fence = guard.fencing_token();
                            // Hold it briefly so overlapping holders would be seen.
                            assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                            if persistent {
                                assert!(
                                    first_done.load(Ordering::SeqCst),
                                    "a waiter got in while the persisted lock was held"
                                );
                            }
                            std::thread::sleep(Duration::from_millis(20));
                            inside.store(false, Ordering::SeqCst);
                            drop(guard);
                            return (errors, Some(fence));
                        }
                        Err(e) => {
                            assert!(sync_backend_kind(&e).is_some(), "untyped error: {e}");
                            errors.push(e.to_string());
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                (errors, None)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    server.kill()?;
    std::thread::sleep(Duration::from_millis(300));
    server.restart()?;

    if persistent {
        // The lock survived: nobody got in while it was held; the holder releases it.
        std::thread::sleep(Duration::from_millis(300));
        assert!(lock.locked()?, "the persisted lock was lost");
        first_done.store(true, Ordering::SeqCst);
        held.unlock()?;
    } else {
        // The lock was lost with the restart; the holder learns so on release.
        std::thread::sleep(Duration::from_millis(300));
        first_done.store(true, Ordering::SeqCst);
        assert!(matches!(held.unlock(), Err(SyncError::LockLost { .. })));
    }
    let mut fences = Vec::new();
    let mut error_count = 0;
    for w in waiters {
        let (errors, fence) = w.join().map_err(|_| "waiter panicked")?;
        error_count += errors.len();
        fences.push(fence.ok_or("a waiter never got the lock after the restart")?);
    }
    assert!(error_count > 0, "the waiters saw the outage");
    fences.sort_unstable();
    fences.dedup();
    assert_eq!(fences.len(), 3, "every acquisition has its own token");
    assert!(
        fences[0] > first_fence,
        "tokens after the restart ({fences:?}) exceed the first holder's ({first_fence})"
    );
    // A fresh acquisition still works and is fenced above all of them.
    let last = lock.acquire()?.fencing_token();
    assert!(last > fences[2]);
    Ok(())
}

#[test]
fn server_restarted_without_persistence_while_a_lock_is_held() -> TestResult {
    restart_while_held(false)
}

#[test]
fn server_restarted_with_persistence_while_a_lock_is_held() -> TestResult {
    restart_while_held(true)
}
