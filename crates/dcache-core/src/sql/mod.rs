//! The SQL layer: how a [`Cache`](crate::Cache) runs statements, and the statements with the
//! typed rows that read them.
//!
//! - `run.rs`: a cache's ways into its database, each with its connection, deadline and
//!   error mapping: [`write`](crate::Cache::write) (a write transaction, joined when this
//!   thread has one open), [`read`](crate::Cache::read) (a pooled connection, busy retried).
//! - [`Db`] (here): a connection and the path of its database. Statements run through it, so
//!   SQLite's errors become dcache's ([`crate::conn::map_err`]) at this one boundary.
//! - `entry.rs`: the statements on one entry (lookup, insert, update, delete, touch, incr,
//!   the counters of `Settings`), each beside the row struct that reads its columns.
//! - `evict.rs`: the rows culling, expiry, eviction by tag and clearing remove; the volume.
//! - `check.rs`: `check`'s integrity check, file rows, true count and size.
//! - `listing.rs`: the inspection listing's rows, every column uninterpreted.
//! - `pager.rs`: the iterators' pages (by rowid or by key) and the n-th entry in key order.
//! - `settings.rs`: the `Settings` table's values and counters.
//! - `queue.rs`: the queues' ends and the `Deque`'s renumbering of keys.
//!
//! Two spellings differ from python's on purpose, for speed, with the same results. SQLite
//! (3.4x and later, as bundled) re-prepares a statement every time a new value is bound to a
//! bare `LIMIT ?` or `OFFSET ?` parameter, so they are written `LIMIT +?n` (`OFFSET +?n`): the
//! unary plus keeps the limit an ordinary run-time expression. And `PRAGMA page_count` is
//! re-prepared on every run, unlike its table-valued form (in the volume's statement).
//! Re-preparing cost about 40% of a `set`.
//!
//! `crate::schema` holds the schema (python's DDL, indexes, triggers); statements are
//! defined in this layer, beside their rows. Outside it remain only the statements of the
//! open sequence (`open.rs`: the schema inspection, `Settings` read and persistent pragmas,
//! before any `Cache` exists), the connection and transaction control of `conn/` (pragmas,
//! `BEGIN`, savepoints, `COMMIT`), `vacuum`'s `VACUUM` and checkpoint, and the policy
//! indexes' DDL beside `EvictionPolicy`.

mod check;
mod entry;
mod evict;
mod listing;
mod pager;
mod queue;
mod run;
mod settings;

use std::path::Path;

use rusqlite::{Connection, Params, Row};

use crate::conn::map_err;
use crate::error::{Error, Result};

pub(crate) use check::FileRow;
pub(crate) use entry::{Columns, Hit, HitValue, LiveRow, RowidRow, describe_stored};
pub(crate) use evict::policy_select;
pub(crate) use listing::ListedRow;
pub(crate) use pager::{Cursor, PageRow};
pub(crate) use queue::{ItemRow, QueueRow, Shift};

/// A connection and its database's path: the boundary where SQLite's errors become dcache's.
#[derive(Clone, Copy)]
pub(crate) struct Db<'c> {
    pub(crate) conn: &'c Connection,
    pub(crate) path: &'c Path,
}

impl<'c> Db<'c> {
    pub(crate) fn new(conn: &'c Connection, path: &'c Path) -> Self {
        Db { conn, path }
    }

    /// The dcache error for a failed SQLite call on this database.
    pub(crate) fn err(&self, e: rusqlite::Error) -> Error {
        map_err(self.path, e)
    }

    /// Runs a cached statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(|e| self.err(e))
    }

    /// Runs a batch of statements without parameters (DDL).
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| self.err(e))
    }

    /// The first row of a cached query, read by `read`, or `None` when there is none.
    pub(crate) fn first<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        match rows.next().map_err(|e| self.err(e))? {
            Some(row) => read(row).map(Some),
            None => Ok(None),
        }
    }

    /// [`first`](Self::first) for a row read with rusqlite's getters, whose errors are mapped
    /// here.
    pub(crate) fn first_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        self.first(sql, params, |r| read(r).map_err(|e| self.err(e)))
    }

    /// Every row of a cached query, each read by `read`.
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: impl Params,
        mut read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            out.push(read(row)?);
        }
        Ok(out)
    }
}
