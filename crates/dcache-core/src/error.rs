//! The error type of dcache-core.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a cache operation can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The write lock stayed busy for the whole cache timeout.
    #[error(
        "timed out after {waited:?} waiting for the cache's write lock (another thread or process \
         holds a long transaction); retry, raise the timeout, or use `Cache::retrying`"
    )]
    Timeout {
        /// How long the call waited.
        waited: Duration,
    },

    /// Encoding or decoding a key or value failed, or a value file is damaged.
    #[error(transparent)]
    Disk(#[from] dcache_disk::Error),

    /// SQLite reported an error.
    #[error("SQLite error on {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The error SQLite reported.
        #[source]
        source: SqliteError,
    },

    /// A write to the database failed: the disk is full (`SQLITE_FULL`), or writing a page
    /// failed (`SQLITE_IOERR_WRITE`, what a file size limit or a failing device gives). The
    /// transaction was rolled back: committed entries are intact.
    #[error(
        "writing {} failed: {source}; the disk is full, a file size limit (`ulimit -f`) was \
         reached, or the device failed; the write was rolled back and committed entries are \
         intact: free space (or raise the limit) and retry",
        path.display()
    )]
    WriteFailed {
        /// The database file.
        path: PathBuf,
        /// The error SQLite reported.
        #[source]
        source: SqliteError,
    },

    /// `cache.db` is not an SQLite database (garbage or a truncated header).
    #[error(
        "{} is not an SQLite database; move it aside (it is not a cache) or open another directory",
        path.display()
    )]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },

    /// `cache.db` belongs to another application: it has tables but no cache schema.
    #[error(
        "{} is a database of another application (tables: {tables}); dcache will not add its \
         tables to it: open an empty or cache directory instead",
        path.display()
    )]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// The tables found.
        tables: String,
    },

    /// The cache schema is present but not the one python-diskcache 5.6 writes.
    #[error(
        "{} has an incompatible cache schema: {detail}; it was not written by python-diskcache \
         5.x or dcache: open another directory, or move this one aside",
        path.display()
    )]
    IncompatibleSchema {
        /// The database file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },

    /// A setting has an invalid value (given to the builder or `reset`, or stored).
    #[error("invalid setting `{name}` = {value}: {reason}")]
    InvalidSetting {
        /// The setting name.
        name: String,
        /// The rejected value, as SQLite shows it.
        value: String,
        /// What is allowed.
        reason: String,
    },

    /// The stored or requested eviction policy is not one dcache knows.
    #[error(
        "unknown eviction policy {name:?}; use one of none, least-recently-stored, \
         least-recently-used, least-frequently-used"
    )]
    UnknownEvictionPolicy {
        /// The policy name.
        name: String,
    },

    /// The cache was opened read-only (explicitly, or because its directory is not writable).
    #[error(
        "the cache at {} is open read-only (its directory or database is not writable, or it was \
         opened with read_only); writes are refused",
        path.display()
    )]
    ReadOnly {
        /// The cache directory.
        path: PathBuf,
    },

    /// `incr`/`decr` without a default on a missing key.
    #[error("key not found; pass a default to incr to create it")]
    KeyNotFound,

    /// `incr`/`decr` on a value that is not a raw integer.
    #[error("cannot increment a stored {found}: incr works on integer values only")]
    NotAnInteger {
        /// What the stored value is.
        found: String,
    },

    /// `incr`/`decr` would leave the `i64` range (python raises `OverflowError` there too).
    #[error(
        "integer overflow: the incremented value does not fit in an i64; reset the key with \
         `set` or use a smaller delta"
    )]
    Overflow,

    /// A key in a queue's range is not a queue key (python's `push` fails there too).
    #[error(
        "key {key} lies in a queue's key range but is not a queue key; remove it or use another \
         prefix"
    )]
    NotAQueueKey {
        /// The offending key.
        key: String,
    },

    /// Rotating or reversing a queue would move its keys out of python's queue key range.
    #[error(
        "the queue's keys would leave python's queue key range (1 to 999999999999998): the \
         queue has drifted to the edge of its range; copy its elements into a fresh queue"
    )]
    QueueExhausted,

    /// A tag was NaN, which SQLite would store as no tag.
    #[error(
        "a NaN tag cannot be stored (SQLite binds NaN as NULL, meaning no tag); use another \
         tag, or none"
    )]
    NanTag,

    /// An operation that must run on its own was called inside a transaction.
    #[error("`{operation}` cannot run inside a transaction; call it outside `transact`")]
    InTransaction {
        /// The operation (`vacuum`).
        operation: &'static str,
    },

    /// A nested operation panicked inside a transaction and its partial writes could not be
    /// undone, so the whole transaction was rolled back instead of committed.
    #[error(
        "the transaction on {} was rolled back: an operation inside it panicked and its partial \
         writes could not be undone; nothing of the transaction was committed, retry it",
        path.display()
    )]
    TransactionAborted {
        /// The database file.
        path: PathBuf,
    },

    /// A file SQLite has open for this cache (`cache.db`, its `-wal` or `-shm`) is no longer
    /// the file at its path: another program deleted or replaced it while the cache was open
    /// (a temporary-file cleaner, an operator, a removed FanoutCache shard). Writing on would
    /// corrupt the database or go to a deleted file, so writes are refused.
    #[error(
        "{} is no longer the file this process opened (it was {what} while the cache was open, \
         by a temporary-file cleaner, an operator or another program); writes are refused so \
         the database is not corrupted: stop every process using this cache, run `check`, and \
         reopen it (keep cache directories out of paths that cleaners such as systemd-tmpfiles \
         purge)",
        path.display()
    )]
    FileReplaced {
        /// The path whose file changed.
        path: PathBuf,
        /// `deleted` or `replaced`.
        what: &'static str,
    },

    /// `cache.db` (or the cache directory) is not a regular file (a FIFO, a socket, a device,
    /// a directory) or is a symbolic link: opening it could block or write outside the cache
    /// directory.
    #[error(
        "{} is {kind}, not a regular database file; dcache opens only a regular `cache.db` \
         inside the cache directory (never through a symbolic link): move it aside",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is (`a FIFO`, `a symbolic link`, ...).
        kind: &'static str,
    },

    /// The database path is longer than SQLite accepts.
    #[error(
        "the database path {} is {len} bytes long; SQLite accepts at most {limit}: use a \
         shorter cache directory path",
        path.display()
    )]
    PathTooLong {
        /// The database path (made absolute).
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// SQLite's limit.
        limit: usize,
    },

    /// The SQLite library linked into the program is older than the SQL dcache runs needs
    /// (table-valued pragma functions, SQLite 3.16.0). Only a build without the `bundled`
    /// feature links the system's SQLite; the bundled one is always new enough.
    #[error(
        "the linked SQLite is {found}; dcache needs SQLite {needed} or newer: build with \
         dcache's default `bundled` feature (SQLite compiled in) or upgrade the system's \
         libsqlite3"
    )]
    SqliteTooOld {
        /// The linked SQLite's version (`sqlite3_libversion`).
        found: String,
        /// The oldest version dcache supports.
        needed: &'static str,
    },

    /// An I/O error on the cache directory.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A storage backend other than SQLite (a Redis server, say) failed: it could not be
    /// reached, did not answer within its timeout, dropped the connection, or refused the
    /// command. `Storage` implementations outside dcache-core report through this variant.
    #[error("{backend} {kind}: {message}; {check}")]
    Backend {
        /// The backend (`"redis"`).
        backend: &'static str,
        /// What kind of failure it was.
        kind: BackendErrorKind,
        /// What failed (the command, the address).
        message: String,
        /// What to check or do about it.
        check: String,
        /// The backend client's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// The kind of an [`Error::Backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The server could not be reached (connection refused, no route, unknown host).
    Unreachable,
    /// The server did not answer within the configured timeout (the operation may or may
    /// not have been applied).
    Timeout,
    /// The connection broke during the operation (the server restarted or the network
    /// failed; the operation may or may not have been applied).
    ConnectionLost,
    /// The server answered with an error (out of memory, read-only replica, wrong type).
    Server,
    /// Anything else (a protocol error, a bad address).
    Other,
}

impl BackendErrorKind {
    /// True for [`BackendErrorKind::Timeout`].
    #[must_use]
    pub fn is_timeout(self) -> bool {
        self == BackendErrorKind::Timeout
    }
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendErrorKind::Unreachable => "server unreachable",
            BackendErrorKind::Timeout => "timed out",
            BackendErrorKind::ConnectionLost => "connection lost",
            BackendErrorKind::Server => "server error",
            BackendErrorKind::Other => "error",
        })
    }
}

impl Error {
    /// True for [`Error::Timeout`]: the operation may succeed if tried again.
    ///
    /// A backend's timeout ([`Error::Backend`] of kind [`BackendErrorKind::Timeout`]) is not
    /// included: waiting locks treat this as "the store is busy, wait on", whereas an
    /// unanswered server is reported at once (see [`Error::backend_kind`]).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The kind of an [`Error::Backend`]; `None` for every other variant.
    #[must_use]
    pub fn backend_kind(&self) -> Option<BackendErrorKind> {
        match self {
            Error::Backend { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sqlite(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        Error::Sqlite {
            path: path.into(),
            source: SqliteError(source),
        }
    }

    pub(crate) fn invalid_setting(name: &str, value: impl fmt::Display, reason: &str) -> Self {
        Error::InvalidSetting {
            name: name.to_owned(),
            value: value.to_string(),
            reason: reason.to_owned(),
        }
    }
}

/// An error reported by SQLite. Opaque, so that dcache's API does not depend on rusqlite's
/// version; [`code`](Self::code) gives SQLite's extended result code.
#[derive(Debug)]
pub struct SqliteError(pub(crate) rusqlite::Error);

impl SqliteError {
    /// SQLite's extended result code (`SQLITE_BUSY` = 5, `SQLITE_CORRUPT` = 11, …), when the
    /// error came from SQLite itself.
    #[must_use]
    pub fn code(&self) -> Option<i32> {
        match &self.0 {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.extended_code),
            _ => None,
        }
    }
}

impl SqliteError {
    /// Whether SQLite reported the database busy or locked (try again).
    pub(crate) fn is_busy(&self) -> bool {
        crate::conn::is_busy(&self.0)
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
