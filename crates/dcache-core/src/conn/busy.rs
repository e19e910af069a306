//! One operation's bounds ([`Op`]: its database, start and deadline), the mapping of SQLite's
//! errors to dcache's, and retrying while another connection holds a lock.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

use crate::error::{Error, Result};

/// First and largest sleep between attempts while another process holds a lock.
const BACKOFF_START: Duration = Duration::from_micros(20);
const BACKOFF_MAX: Duration = Duration::from_millis(1);

/// One operation on a database: the path its errors name, when it started (a timeout reports
/// how long it waited) and until when it may wait for locks (`None`: as long as it takes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a> {
    pub(crate) db_path: &'a Path,
    pub(crate) started: Instant,
    pub(crate) deadline: Option<Instant>,
}

impl<'a> Op<'a> {
    /// An operation starting now that waits at most `timeout` (`None`: forever).
    pub(crate) fn new(db_path: &'a Path, timeout: Option<Duration>) -> Self {
        let started = Instant::now();
        Op {
            db_path,
            started,
            deadline: timeout.map(|t| started + t),
        }
    }

    /// This operation's error for a failed SQLite call (see [`map_err`]).
    pub(crate) fn err(&self, e: rusqlite::Error) -> Error {
        map_err(self.db_path, e)
    }

    /// [`Error::Timeout`], with the time waited so far.
    pub(crate) fn timeout(&self) -> Error {
        Error::Timeout {
            waited: self.started.elapsed(),
        }
    }

    /// Runs `op` until it is not busy, sleeping with a growing backoff, until the deadline.
    pub(crate) fn retry_busy<T>(&self, mut op: impl FnMut() -> rusqlite::Result<T>) -> Result<T> {
        self.retry_busy_with(|| op().map_err(|e| self.err(e)))
    }

    /// [`retry_busy`](Self::retry_busy) for an operation failing with dcache errors: an
    /// [`Error::Sqlite`] saying busy is retried; past the deadline it is [`Error::Timeout`].
    pub(crate) fn retry_busy_with<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut backoff = BACKOFF_START;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(Error::Sqlite { source, .. }) if source.is_busy() => {
                    let now = Instant::now();
                    if self.deadline.is_some_and(|d| now >= d) {
                        return Err(Error::Timeout {
                            waited: now - self.started,
                        });
                    }
                    let sleep = self.deadline.map_or(backoff, |d| backoff.min(d - now));
                    thread::sleep(sleep);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Maps a rusqlite error to dcache's, recognising the cases users act on.
pub(crate) fn map_err(db_path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotADatabase {
            path: db_path.to_path_buf(),
        },
        Some(ErrorCode::ReadOnly) => Error::ReadOnly {
            path: db_path.parent().unwrap_or(db_path).to_path_buf(),
        },
        Some(ErrorCode::DiskFull) => Error::WriteFailed {
            path: db_path.to_path_buf(),
            source: crate::error::SqliteError(e),
        },
        Some(ErrorCode::SystemIoFailure)
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE) =>
        {
            Error::WriteFailed {
                path: db_path.to_path_buf(),
                source: crate::error::SqliteError(e),
            }
        }
        _ => Error::sqlite(db_path, e),
    }
}

/// Whether an error means "another connection holds the lock: try again".
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
