//! Write transactions: `BEGIN IMMEDIATE` frames owned by the outermost call on a thread,
//! savepoints for calls that join them, and the value files removed once the outcome is known.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use dcache_disk::FileStore;
use rusqlite::Connection;

use super::busy::{Op, map_err};
use super::pool::{Conn, Pool, Use};
use super::writer::{WriterGuard, WriterLock};
use crate::error::{Error, Result};
use crate::sql::Db;

/// Files to remove when the transaction ends.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Files of replaced or deleted values: removed after the outermost commit.
    after_commit: Vec<(FileStore, String)>,
    /// Files written by this transaction: removed if it rolls back.
    on_rollback: Vec<(FileStore, String)>,
}

/// A write transaction in progress on this thread.
pub(crate) struct ActiveTx {
    db: usize,
    conn: Conn,
    pending: RefCell<Pending>,
    /// A nested call panicked and its savepoint could not be rolled back: never commit.
    poisoned: std::cell::Cell<bool>,
}

thread_local! {
    static ACTIVE: RefCell<Vec<Rc<ActiveTx>>> = const { RefCell::new(Vec::new()) };
}

/// The identity of a database in this process (its writer lock's address).
pub(crate) fn db_id(writer: &Arc<WriterLock>) -> usize {
    Arc::as_ptr(writer) as usize
}

impl ActiveTx {
    /// The transaction's connection: reads inside `transact` run on it.
    pub(crate) fn sql(&self) -> &Connection {
        &self.conn.sql
    }
}

/// The write transaction this thread has open on `db`, if any.
pub(crate) fn active(db: usize) -> Option<Rc<ActiveTx>> {
    // During thread-local teardown (a destructor doing cache work) there is no registry:
    // nothing to join.
    ACTIVE
        .try_with(|a| a.borrow().iter().find(|t| t.db == db).cloned())
        .ok()
        .flatten()
}

/// The handle given to code running inside a write transaction.
pub(crate) struct Tx<'a> {
    pub(crate) sql: &'a Connection,
    path: &'a Path,
    pending: &'a RefCell<Pending>,
}

impl<'a> Tx<'a> {
    /// The transaction's connection, for the statements of [`crate::sql`].
    pub(crate) fn db(&self) -> Db<'a> {
        Db::new(self.sql, self.path)
    }

    /// Removes `name` once the outermost transaction commits (a replaced or deleted value).
    pub(crate) fn remove_after_commit(&self, files: &FileStore, name: String) {
        self.pending
            .borrow_mut()
            .after_commit
            .push((files.clone(), name));
    }

    /// Removes `name` if the transaction rolls back (a value file this transaction wrote).
    pub(crate) fn remove_on_rollback(&self, files: &FileStore, name: String) {
        self.pending
            .borrow_mut()
            .on_rollback
            .push((files.clone(), name));
    }
}

/// What a write needs to start a transaction.
pub(crate) struct TxContext<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) writer: &'a Arc<WriterLock>,
    pub(crate) op: Op<'a>,
}

/// Runs `f` in a write transaction: the one this thread already has open on the database, or
/// a new `BEGIN IMMEDIATE` one that commits if `f` succeeds and rolls back otherwise (also
/// when `f` panics).
pub(crate) fn write<T, E: From<Error>>(
    ctx: &TxContext<'_>,
    f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let db = db_id(ctx.writer);
    if let Some(tx) = active(db) {
        return joined(ctx.op.db_path, &tx, f);
    }
    if ctx.pool.read_only() {
        let dir = ctx.pool.db_path.parent().unwrap_or(&ctx.pool.db_path);
        return Err(Error::ReadOnly {
            path: dir.to_path_buf(),
        }
        .into());
    }
    let op = &ctx.op;
    let guard = ctx
        .writer
        .acquire(op.deadline, crate::pid::current())
        .ok_or_else(|| op.timeout())?;
    let conn = ctx.pool.checkout(Use::Write, op)?;
    op.retry_busy(|| exec_cached(&conn, "BEGIN IMMEDIATE"))?;
    let frame = Frame::begin(ctx.pool, db, conn.into_conn(), guard);
    ctx.pool.verify_files()?;
    let result = f(&frame.tx());
    match result {
        Ok(value) => {
            frame.commit()?;
            Ok(value)
        }
        Err(e) => {
            frame.rollback();
            Err(e)
        }
    }
}

/// Runs `f` inside this thread's open transaction, under a savepoint: if `f` fails, its
/// effects are undone (and the files it wrote removed) while the outer transaction goes on.
/// If `f` panics, the savepoint is rolled back while unwinding too: a caller that catches the
/// panic inside an outer `transact` must not commit half of this call's writes.
fn joined<T, E: From<Error>>(
    db_path: &Path,
    tx: &ActiveTx,
    f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let savepoint = Savepoint::begin(db_path, tx)?;
    let result = f(&Tx {
        sql: &tx.conn.sql,
        path: db_path,
        pending: &tx.pending,
    });
    match result {
        Ok(value) => {
            savepoint.release()?;
            Ok(value)
        }
        Err(e) => {
            savepoint.rollback()?;
            Err(e)
        }
    }
}

/// A `SAVEPOINT` of one joined call; rolled back when dropped unfinished (a panic unwinding
/// through the call).
struct Savepoint<'a> {
    db_path: &'a Path,
    tx: &'a ActiveTx,
    /// What `pending` held before the call: the call's own entries come after.
    committed_len: usize,
    written_len: usize,
    done: bool,
}

impl<'a> Savepoint<'a> {
    fn begin(db_path: &'a Path, tx: &'a ActiveTx) -> Result<Self> {
        exec_cached(&tx.conn.sql, "SAVEPOINT dcache_op").map_err(|e| map_err(db_path, e))?;
        let (committed_len, written_len) = {
            let p = tx.pending.borrow();
            (p.after_commit.len(), p.on_rollback.len())
        };
        Ok(Savepoint {
            db_path,
            tx,
            committed_len,
            written_len,
            done: false,
        })
    }

    fn release(mut self) -> Result<()> {
        self.done = true;
        exec_cached(&self.tx.conn.sql, "RELEASE dcache_op").map_err(|e| map_err(self.db_path, e))
    }

    fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.undo()
    }

    fn undo(&self) -> Result<()> {
        let sql = &self.tx.conn.sql;
        let undone = exec_cached(sql, "ROLLBACK TO dcache_op")
            .and_then(|()| exec_cached(sql, "RELEASE dcache_op"))
            .map_err(|e| map_err(self.db_path, e));
        let written = {
            let mut p = self.tx.pending.borrow_mut();
            // Files this call meant to remove are still referenced after the rollback.
            p.after_commit.truncate(self.committed_len);
            let from = self.written_len.min(p.on_rollback.len());
            p.on_rollback.split_off(from)
        };
        if undone.is_ok() {
            remove_files(written, "value written by a failed operation");
        } else {
            // The savepoint could not be undone: the rows may still name these files, so
            // they stay until the outer transaction's fate is known.
            self.tx.pending.borrow_mut().on_rollback.extend(written);
        }
        undone
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.undo()
        {
            // Unwinding, and the savepoint could not be undone: the outer transaction must not
            // commit this call's half-done writes, so it is poisoned (`Frame::commit` refuses).
            self.tx.poisoned.set(true);
            log::warn!("dcache: rolling back a panicked operation failed: {e}");
        }
    }
}

fn exec_cached(sql: &Connection, statement: &str) -> rusqlite::Result<()> {
    sql.prepare_cached(statement)
        .and_then(|mut s| s.execute([]))
        .map(drop)
}

/// An open `BEGIN IMMEDIATE` transaction owned by the outermost call on this thread.
struct Frame<'a> {
    pool: &'a Pool,
    tx: Option<Rc<ActiveTx>>,
    guard: Option<WriterGuard>,
}

impl<'a> Frame<'a> {
    fn begin(pool: &'a Pool, db: usize, conn: Conn, guard: WriterGuard) -> Self {
        let tx = Rc::new(ActiveTx {
            db,
            conn,
            pending: RefCell::new(Pending::default()),
            poisoned: std::cell::Cell::new(false),
        });
        // Unregistered during thread-local teardown: later calls then cannot join it.
        if ACTIVE
            .try_with(|a| a.borrow_mut().push(Rc::clone(&tx)))
            .is_err()
        {
            log::debug!("dcache: a transaction began during thread teardown");
        }
        Frame {
            pool,
            tx: Some(tx),
            guard: Some(guard),
        }
    }

    fn tx(&self) -> Tx<'_> {
        // `tx` is Some until commit or rollback consume the frame.
        let tx = self
            .tx
            .as_deref()
            .unwrap_or_else(|| unreachable!("frame already finished"));
        Tx {
            sql: &tx.conn.sql,
            path: &self.pool.db_path,
            pending: &tx.pending,
        }
    }

    fn commit(mut self) -> Result<()> {
        if self.tx.as_ref().is_some_and(|tx| tx.poisoned.get()) {
            let path = self.pool.db_path.clone();
            self.rollback();
            return Err(Error::TransactionAborted { path });
        }
        let committed = self
            .tx()
            .sql
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        match committed {
            Ok(_) => {
                let pending = self.end();
                remove_files(pending.after_commit, "replaced or deleted value");
                Ok(())
            }
            Err(e) => {
                let err = map_err(&self.pool.db_path, e);
                self.rollback();
                Err(err)
            }
        }
    }

    fn rollback(mut self) {
        self.rollback_in_place();
    }

    fn rollback_in_place(&mut self) {
        if let Some(tx) = &self.tx {
            // SQLite may have rolled back already (after SQLITE_FULL, say): then ROLLBACK
            // reports "no transaction is active", which is the state we want.
            if let Err(e) = tx.conn.sql.execute_batch("ROLLBACK") {
                if tx.conn.sql.is_autocommit() {
                    log::debug!("dcache: ROLLBACK after an automatic rollback: {e}");
                } else {
                    log::warn!(
                        "dcache: ROLLBACK failed on {}: {e}",
                        self.pool.db_path.display()
                    );
                }
            }
        }
        let pending = self.end();
        remove_files(
            pending.on_rollback,
            "value written by a rolled-back transaction",
        );
    }

    /// Unregisters the transaction, returns the connection, releases the writer lock.
    fn end(&mut self) -> Pending {
        let Some(tx) = self.tx.take() else {
            return Pending::default();
        };
        if ACTIVE
            .try_with(|a| a.borrow_mut().retain(|t| !Rc::ptr_eq(t, &tx)))
            .is_err()
        {
            log::debug!("dcache: a transaction ended during thread teardown");
        }
        let pending = match Rc::try_unwrap(tx) {
            Ok(ActiveTx { conn, pending, .. }) => {
                if conn.sql.is_autocommit() {
                    self.pool.checkin(Use::Write, conn);
                }
                pending.into_inner()
            }
            // Unreachable in practice: nested calls drop their clones before returning.
            Err(tx) => std::mem::take(&mut *tx.pending.borrow_mut()),
        };
        // Released after the connection is back: the next writer finds it in the writer slot.
        self.guard = None;
        pending
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            // Unwinding out of the transaction body: roll back.
            self.rollback_in_place();
        }
    }
}

/// Removes value files once their fate is sealed. A failure leaves an orphan file that
/// `check(fix)` removes; it is logged, not returned, because the transaction's outcome is
/// already decided.
fn remove_files(files: Vec<(FileStore, String)>, what: &str) {
    for (store, name) in files {
        if let Err(e) = store.remove(&name) {
            log::warn!("dcache: could not remove {what} file {name}: {e}");
        }
    }
}
