//! A Cache used on both sides of a `fork()` (docs/design.md, "Locking and transactions"): the child
//! never uses or closes its parent's connections, opens its own, and the parent's keep working.
//!
//! The only test of its binary, so that no other test thread holds a lock of SQLite or the
//! allocator at the moment of the fork.
#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use dcache_core::Cache;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the child does with the handle it inherited; `Err` names the first failure.
fn in_child(cache: &Cache) -> Result<(), String> {
    let read = |key: &str| cache.get::<i64>(key).map_err(|e| format!("get {key}: {e}"));
    if read("parent")? != Some(1) {
        return Err("the child does not see the parent's entry".into());
    }
    cache
        .set("child", 2)
        .map_err(|e| format!("set in the child: {e}"))?;
    cache
        .incr("counter", 1)
        .map_err(|e| format!("incr in the child: {e}"))?;
    if read("child")? != Some(2) {
        return Err("the child does not read its own write".into());
    }
    let findings = cache.check(false).map_err(|e| format!("check: {e}"))?;
    if !findings.is_empty() {
        return Err(format!("check in the child: {findings:?}"));
    }
    Ok(())
}

/// Waits up to 30 s for `path` to exist.
fn wait_for(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// The whole child: its operations, then a write after the parent closed every connection.
fn child(cache: &Cache, ready: &Path, parent_closed: &Path) -> Result<(), String> {
    in_child(cache)?;
    std::fs::write(ready, b"").map_err(|e| format!("cannot write {}: {e}", ready.display()))?;
    if !wait_for(parent_closed) {
        return Err("the parent did not close its handle".into());
    }
    // Had the child used its parent's connections, it would hold no lock of its own (fcntl
    // locks are not inherited), the parent's close would have checkpointed and deleted the
    // WAL, and this write would go to a deleted file.
    cache
        .set("late", 5)
        .map_err(|e| format!("set after the parent closed: {e}"))
}

#[test]
fn a_fork_child_uses_its_own_connections_and_the_parents_keep_working() -> TestResult {
    let dir = tempfile::tempdir()?;
    let signals = tempfile::tempdir()?;
    let (ready, parent_closed) = (
        signals.path().join("ready"),
        signals.path().join("parent-closed"),
    );
    let cache = Cache::open(dir.path())?;
    // Both kinds of pooled connection exist, stamped with the parent's id.
    cache.set("parent", 1)?;
    cache.incr("counter", 1)?;
    assert_eq!(cache.get::<i64>("parent")?, Some(1));

    // SAFETY: this binary runs no other test, so no other thread holds a lock of SQLite or of
    // the allocator (whose locks glibc resets in the child anyway) at the fork.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child(&cache, &ready, &parent_closed)
        }));
        let code = match outcome {
            Ok(Ok(())) => 0,
            Ok(Err(message)) => {
                eprintln!("fork child: {message}");
                1
            }
            Err(_) => 2,
        };
        // Dropping the inherited handle must not close the parent's connections.
        drop(cache);
        // SAFETY: ends the child without running the test harness's exit path.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(code)
        };
    }
    let waited_ready = wait_for(&ready);

    // The parent's pooled connections still work and see the child's writes.
    if waited_ready {
        assert_eq!(cache.get::<i64>("child")?, Some(2));
        assert_eq!(cache.get::<i64>("counter")?, Some(2));
        cache.set("after", 3)?;
        assert!(cache.check(false)?.is_empty());
    }
    // Closes every connection of the parent while the child still has the directory open.
    drop(cache);
    std::fs::write(&parent_closed, b"")?;

    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out pointer.
    #[allow(unsafe_code)]
    let waited = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child failed (see its stderr)"
    );
    assert!(waited_ready, "the child never got ready");

    let reopened = Cache::open(dir.path())?;
    assert_eq!(
        reopened.get::<i64>("late")?,
        Some(5),
        "the child's last write was lost"
    );
    assert_eq!(reopened.len()?, 5);
    assert_eq!(reopened.get::<i64>("after")?, Some(3));
    assert!(reopened.check(false)?.is_empty());
    Ok(())
}
