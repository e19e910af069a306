//! The disk reserve: preallocated space beside `cache.db` that a cache gives back when its file
//! system is full, so that the operations which free space have room to run.
//!
//! SQLite needs free space to record a delete (WAL frames, or a rollback journal), so a cache
//! that filled its disk could not delete, clear or cull its way out: every such call failed with
//! `SQLITE_FULL` and only removing files by hand helped. Each database keeps a file
//! `cache.db-reserve` of [`DEFAULT_DISK_RESERVE`] bytes (set with
//! [`CacheBuilder::disk_reserve`](crate::CacheBuilder::disk_reserve)). When an operation that
//! frees space (delete, pop, clear, expire, evict, cull, reset, check with fix) fails because
//! the disk is full, the cache removes the reserve and runs the operation once more. Writes that
//! add data never release it, so a program retrying `set` on a full disk cannot eat the room
//! its own recovery needs. The process that released the reserve writes it again after a freeing
//! operation succeeds, when there is room for all of it; any process writes it at open.
//!
//! The name starts with `cache.db` so that python-diskcache's `check` leaves it alone (it skips
//! every path containing `cache.db`), and dcache's `check` skips it by name.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The reserve's file name, beside `cache.db`.
pub(crate) const RESERVE_NAME: &str = "cache.db-reserve";

/// Bytes kept in reserve per database unless the builder says otherwise: room for SQLite to
/// delete and checkpoint on a full disk (see [docs/reliability.md](https://github.com/dcache-rs/dcache/blob/main/docs/reliability.md) for how it was sized).
pub const DEFAULT_DISK_RESERVE: u64 = 1 << 20;

/// One database's reserve file.
#[derive(Debug)]
pub(crate) struct Reserve {
    path: PathBuf,
    size: u64,
    /// Set when this process removed the reserve (or could not write it): a later freeing
    /// operation tries to write it again.
    missing: AtomicBool,
}

impl Reserve {
    /// The reserve of the cache in `dir`; `size` 0 keeps none.
    pub(crate) fn new(dir: &Path, size: u64) -> Self {
        Reserve {
            path: dir.join(RESERVE_NAME),
            size,
            missing: AtomicBool::new(size > 0),
        }
    }

    /// Writes the reserve if it is missing and there is room for all of it. Best effort: a
    /// reserve that cannot be written is logged and retried after the next freeing operation.
    pub(crate) fn ensure(&self) {
        if self.size == 0 || !self.missing.swap(false, Ordering::AcqRel) {
            return;
        }
        match self.write() {
            Ok(()) => {}
            Err(e) => {
                self.missing.store(true, Ordering::Release);
                log::debug!("dcache: no disk reserve at {}: {e}", self.path.display());
            }
        }
    }

    fn write(&self) -> std::io::Result<()> {
        // `create_new` fails on anything already at the path, links included: a reserve
        // another process wrote (or is writing) is left as it is.
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        };
        let chunk = vec![0u8; 64 * 1024];
        let mut left = self.size;
        let written = (|| {
            while left > 0 {
                let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            // No sync: tmpfs, ext4 (delayed allocation) and xfs count written blocks as used at
            // `write`, which fails with ENOSPC when there is no room.
            Ok(())
        })();
        if let Err(e) = written {
            drop(file);
            let _ = std::fs::remove_file(&self.path);
            return Err(e);
        }
        Ok(())
    }

    /// Removes the reserve to give its space to a freeing operation. Returns whether there was
    /// one to remove (then the operation is worth running again).
    pub(crate) fn release(&self) -> bool {
        if self.size == 0 {
            return false;
        }
        // Only a regular file is ours to remove (`symlink_metadata` does not follow links).
        let is_file = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_file());
        if !is_file {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                self.missing.store(true, Ordering::Release);
                log::warn!(
                    "dcache: the disk holding {} is full: released the {} byte reserve so that \
                     deletes can run; free space (delete, clear, cull, or lower size_limit)",
                    self.path.display(),
                    self.size
                );
                true
            }
            // Another process released it first: its space is free, so retrying is worth it.
            Err(e) if e.kind() == ErrorKind::NotFound => true,
            Err(e) => {
                log::warn!(
                    "dcache: releasing the disk reserve {}: {e}",
                    self.path.display()
                );
                false
            }
        }
    }

    /// Whether this process knows the reserve to be missing.
    pub(crate) fn is_missing(&self) -> bool {
        self.missing.load(Ordering::Acquire)
    }
}
