//! The in-process writer lock of one database file: every handle on the same file in this
//! process takes it before `BEGIN IMMEDIATE`, so threads queue here instead of spinning in
//! SQLite's busy handler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::Instant;

use super::lock;

/// The in-process writer lock of one database file.
#[derive(Debug, Default)]
pub(crate) struct WriterLock {
    state: Mutex<LockState>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct LockState {
    /// The process of the thread holding the lock (a child of a fork sees its parent's).
    owner: Option<u32>,
    /// Threads waiting on `released`: a release wakes one only if there is one (a wake-up is a
    /// system call).
    waiters: usize,
}

/// Holding the [`WriterLock`]; released on drop.
#[derive(Debug)]
pub(crate) struct WriterGuard {
    lock: Arc<WriterLock>,
}

impl WriterLock {
    /// The lock shared by every handle on `db` in this process.
    pub(crate) fn for_database(db: &Path) -> Arc<WriterLock> {
        static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<WriterLock>>>> = OnceLock::new();
        let mut registry = lock(REGISTRY.get_or_init(Default::default));
        if let Some(existing) = registry.get(db).and_then(Weak::upgrade) {
            return existing;
        }
        registry.retain(|_, w| w.strong_count() > 0);
        let fresh = Arc::new(WriterLock::default());
        registry.insert(db.to_path_buf(), Arc::downgrade(&fresh));
        fresh
    }

    /// Waits for the lock until `deadline` (forever with `None`); `pid` is this process's id.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        pid: u32,
    ) -> Option<WriterGuard> {
        let mut state = lock(&self.state);
        loop {
            match state.owner {
                None => break,
                // Held by a thread of the parent process before a fork: it does not exist here.
                Some(owner) if owner != pid => break,
                Some(_) => {}
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            state.waiters += 1;
            state = match deadline {
                None => self
                    .released
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    self.released
                        .wait_timeout(state, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            state.waiters -= 1;
        }
        state.owner = Some(pid);
        Some(WriterGuard {
            lock: Arc::clone(self),
        })
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let waiting = {
            let mut state = lock(&self.lock.state);
            state.owner = None;
            state.waiters > 0
        };
        if waiting {
            self.lock.released.notify_one();
        }
    }
}
