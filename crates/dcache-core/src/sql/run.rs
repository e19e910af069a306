//! How a cache runs statements: the operation's bounds ([`Op`]), a write transaction, a read
//! on a pooled connection, each mapping SQLite's errors once with the database path.

use std::path::Path;

use dcache_disk::DiskFormat;
use rusqlite::Connection;

use crate::cache::Cache;
use crate::clock::unix_seconds;
use crate::conn::{self, Op, Tx, TxContext, Use};
use crate::error::{Error, Result};
use crate::sql::Db;

impl<D: DiskFormat> Cache<D> {
    /// The current time of the cache's clock, in Unix seconds (the time columns' unit).
    pub(crate) fn now(&self) -> f64 {
        unix_seconds(self.inner.clock.now())
    }

    /// The path of `cache.db`.
    pub(crate) fn db_path(&self) -> &Path {
        &self.inner.pool.db_path
    }

    /// An operation starting now, bounded by the handle's timeout (unbounded when retrying).
    pub(crate) fn op(&self) -> Op<'_> {
        Op::new(self.db_path(), (!self.retry).then_some(self.inner.timeout))
    }

    /// Runs `f` in a write transaction (joining this thread's open one on the database).
    pub(crate) fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let ctx = TxContext {
            pool: &self.inner.pool,
            writer: &self.inner.writer,
            op: self.op(),
        };
        conn::write(&ctx, f)
    }

    /// Like [`write`](Self::write), for operations that free space: when the disk is full, the
    /// reserve is given back and `f` runs once more (see [`crate::reserve`]).
    pub(crate) fn write_freeing<T>(&self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        let result = match self.write(&mut f) {
            Err(Error::WriteFailed { .. }) if self.inner.reserve.release() => self.write(f),
            other => other,
        };
        if result.is_ok() && self.inner.reserve.is_missing() {
            // Written again once the operation made room for it.
            self.inner.reserve.ensure();
        }
        result
    }

    /// Runs `f` on a connection: this thread's open transaction on the database if any, or a
    /// pooled connection in autocommit mode, where `f` is run again while SQLite reports the
    /// database busy, until the timeout.
    pub(crate) fn read_with<T>(&self, mut f: impl FnMut(Db<'_>) -> Result<T>) -> Result<T> {
        if let Some(tx) = conn::active(conn::db_id(&self.inner.writer)) {
            return f(Db::new(tx.sql(), self.db_path()));
        }
        let op = self.op();
        let conn = self.inner.pool.checkout(Use::Read, &op)?;
        op.retry_busy_with(|| f(Db::new(&conn, op.db_path)))
    }

    /// [`read_with`](Self::read_with) for a closure of rusqlite calls: its error is mapped
    /// here.
    pub(crate) fn read_sql<T>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.read_with(|db| f(db.conn).map_err(|e| db.err(e)))
    }
}
