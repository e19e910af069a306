//! Connections, the per-database writer lock, and transactions: the mechanics under the
//! statements of [`crate::sql`], one concept per file.
//!
//! - [`pool`]: each cache holds a pool of connections; an operation takes one as a
//!   [`Pooled`] guard that returns it on drop, so readers never wait for each other or for a
//!   writer (WAL).
//! - [`writer`]: writers in one process serialize on a [`WriterLock`] shared by every handle
//!   on the same database file, so threads never spin in SQLite's busy handler.
//! - [`busy`]: an [`Op`] is one operation's database, start and deadline; it maps SQLite's
//!   errors to dcache's and retries busy statements (`BEGIN IMMEDIATE` while another process
//!   writes) with a short growing backoff until the deadline.
//! - [`tx`]: a write transaction is registered in a thread-local list while it runs: calls on
//!   the same database from the same thread (from inside `transact`) join it under a
//!   savepoint instead of deadlocking; value files are removed once the outcome is known.
//! - [`files`]: the identities of `cache.db`, `-wal` and `-shm` this process has open; a write
//!   refuses to start when another file has taken their place.
//! - [`fork`]: connections remember the process that opened them; after a `fork` the child
//!   never uses its parent's connections, and closes them before opening its own.

mod busy;
mod files;
mod fork;
mod pool;
mod tx;
mod writer;

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

pub(crate) use busy::{Op, is_busy, map_err};
pub(crate) use files::Connected;
pub(crate) use pool::{Access, Pool, Pragmas, Use};
pub(crate) use tx::{Tx, TxContext, active, db_id, write};
pub(crate) use writer::WriterLock;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data behind (plain values).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}
