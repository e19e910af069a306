//! Connections inherited through `fork`: the child closes its parent's parked connections
//! before it opens its own, and never uses them.

use std::sync::{Arc, Mutex, Weak};

use super::lock;
use super::pool::{Conn, Parked};

/// Every pool of the process, for [`close_connections_after_fork`].
pub(super) static POOLS: Mutex<Vec<Weak<Parked>>> = Mutex::new(Vec::new());

/// In the child of a `fork`, before it opens its first connection: closes every connection its
/// parent left parked in a pool (python-diskcache closes its inherited connection too).
///
/// They must be closed, not merely left unused. SQLite keeps one lock record per database file
/// per process, shared by all of the process's connections to it, and the child inherits its
/// parent's record claiming locks that `fcntl` does not pass to a child. A connection the child
/// opened while an inherited one stayed open would take no lock of its own: the parent closing
/// its last connection would then checkpoint and delete the WAL under the child, and the
/// child's later commits would go to a deleted file (`tests/fork.rs` reproduces that). Closing
/// an inherited connection in the child releases nothing of the parent's (the child holds no
/// `fcntl` lock), and its checkpoint-on-close needs an exclusive lock that the parent's open
/// connections deny.
///
/// A connection that another thread of the parent was using at the fork cannot be reached in
/// the child: fork while no other thread is inside a cache call.
pub(super) fn close_connections_after_fork() {
    static SWEEP: Mutex<()> = Mutex::new(());
    if !crate::pid::fork_pending() {
        return;
    }
    let _sweeping = lock(&SWEEP);
    if !crate::pid::fork_pending() {
        return;
    }
    let pid = crate::pid::current();
    let pools: Vec<Arc<Parked>> = lock(&POOLS).iter().filter_map(Weak::upgrade).collect();
    let mut closed = 0usize;
    for parked in pools {
        for conn in parked.take_all(false) {
            if conn.pid == pid {
                lock(&parked.idle).push(conn);
            } else {
                close_inherited(conn);
                closed += 1;
            }
        }
    }
    log::debug!("closed {closed} connection(s) inherited through fork by process {pid}");
    crate::pid::fork_handled();
}

/// Closes a connection another process (the parent of a fork) opened.
pub(super) fn close_inherited(conn: Conn) {
    if let Err((sql, e)) = conn.sql.close() {
        log::warn!("cannot close a connection inherited through fork: {e}");
        // Closing again from `Drop` would fail the same way.
        std::mem::forget(sql);
    }
}
