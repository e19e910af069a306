//! This process's id, cached, for the fork check of every pooled connection (docs/design.md,
//! "Locking and transactions").
//!
//! `std::process::id()` is a `getpid` system call (glibc stopped caching it in 2.25). Every
//! operation compares the id stamped on its connection with the current one, so the id is read
//! once per process instead: a `pthread_atfork` child handler clears the cached id in the child
//! of every `fork()`, and the child's first use reads its own id again. The handler also marks
//! the child as forked, so that it closes the connections it inherited before opening its own
//! (`conn::close_connections_after_fork`).
//!
//! The handler runs for `fork()` through libc (python's `os.fork`, `nix::unistd::fork`,
//! `libc::fork`), not for a raw `clone` system call that bypasses libc; `vfork` children may only
//! call `exec` anyway. Where the handler cannot be registered, every call asks the kernel.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The cached id; 0 (never a process id) before the first call and in a fresh fork child.
static PID: AtomicU32 = AtomicU32::new(0);

/// Set in a fork child until [`fork_handled`]: the connections inherited from the parent have
/// not been closed yet.
static FORKED: AtomicBool = AtomicBool::new(false);

/// The child handler is registered: caching is safe.
static CACHING: AtomicBool = AtomicBool::new(false);

/// Registers the handler once.
static REGISTER: Once = Once::new();

/// This process's id, without a system call after the first.
pub(crate) fn current() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    REGISTER.call_once(|| CACHING.store(register_fork_handler(), Ordering::Relaxed));
    let pid = std::process::id();
    if CACHING.load(Ordering::Relaxed) {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

/// Whether this process is a fork child that has not closed its inherited connections yet.
pub(crate) fn fork_pending() -> bool {
    FORKED.load(Ordering::Acquire)
}

/// Records that the inherited connections are closed.
pub(crate) fn fork_handled() {
    FORKED.store(false, Ordering::Release);
}

/// Runs in the child of a `fork()`, before `fork` returns there.
extern "C" fn forget_pid() {
    // Atomic stores: async-signal-safe, as a child handler of a multi-threaded parent must be.
    PID.store(0, Ordering::Relaxed);
    FORKED.store(true, Ordering::Release);
}

/// Registers [`forget_pid`] as a `pthread_atfork` child handler; `false` if that failed.
#[cfg(unix)]
fn register_fork_handler() -> bool {
    // SAFETY: `pthread_atfork` only records the three function pointers; the one given is a
    // `'static` function that performs a single atomic store, which is async-signal-safe and so
    // allowed in the child of a multi-threaded process. No prepare or parent handler is set.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_pid)) };
    rc == 0
}

/// Without `fork`, the id never changes.
#[cfg(not(unix))]
fn register_fork_handler() -> bool {
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn is_the_process_id() {
        assert_eq!(current(), std::process::id());
        assert_eq!(current(), std::process::id());
    }

    /// The child of a fork sees its own id, not the parent's cached one.
    #[test]
    fn a_fork_child_reads_its_own_id() {
        let parent = current();
        assert_ne!(PID.load(Ordering::Relaxed), 0, "the id is cached");
        // SAFETY: the child calls only async-signal-safe functions before exiting, as required
        // after forking a multi-threaded process: atomic loads and stores, `getpid` (`current`
        // finds its `Once` complete, so it neither blocks nor allocates) and `_exit`.
        #[allow(unsafe_code)]
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            let cleared = PID.load(Ordering::Relaxed) == 0;
            // SAFETY: `getpid` has no preconditions.
            #[allow(unsafe_code)]
            let own = unsafe { libc::getpid() };
            let mine = u32::try_from(own).unwrap_or(0);
            let code = if !cleared {
                3
            } else if current() != mine || mine == parent {
                4
            } else {
                0
            };
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
            // destructors, the only safe way out of a fork child of a multi-threaded process.
            #[allow(unsafe_code)]
            unsafe {
                libc::_exit(code)
            };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is a valid out pointer.
        #[allow(unsafe_code)]
        let waited = unsafe { libc::waitpid(child, &raw mut status, 0) };
        assert_eq!(waited, child);
        assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
        match libc::WEXITSTATUS(status) {
            0 => {}
            3 => panic!("the atfork handler did not clear the cached id in the child"),
            4 => panic!("the child read its parent's id"),
            other => panic!("the child exited with {other}"),
        }
        assert_eq!(current(), parent, "the parent keeps its id");
    }
}
