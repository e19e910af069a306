//! The error type of dcache-disk.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A data format handled by this crate, named in encode and decode errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Python's pickle (modes `MODE_PICKLE` and pickled keys).
    Pickle,
    /// MessagePack (mode 5, [`MsgpackDisk`](crate::MsgpackDisk)).
    MessagePack,
    /// JSON as written by python's `json.dumps` ([`JsonDisk`](crate::JsonDisk)).
    Json,
    /// zlib compression ([`JsonDisk`](crate::JsonDisk)).
    Zlib,
    /// A raw SQLite value (text, blob, integer, real).
    Raw,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Pickle => "pickle",
            Format::MessagePack => "MessagePack",
            Format::Json => "JSON",
            Format::Zlib => "zlib",
            Format::Raw => "raw SQLite",
        })
    }
}

/// Everything that can go wrong turning keys and values into columns and files and back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A NaN float was used as a key.
    #[error(
        "NaN cannot be a cache key: SQLite binds NaN as NULL, which never matches a row; \
         use another key"
    )]
    NanKey,

    /// The stored value exists but cannot be read as the requested Rust type.
    #[error(
        "type mismatch: the stored value is {found}, which cannot be read as {expected}; \
         read it as the type it was written with, or as `Value` to inspect it"
    )]
    WrongType {
        /// What the Rust type expected (serde's description, e.g. `i64`, `a string`).
        expected: String,
        /// What was found (e.g. `string "abc"`, `integer 300`).
        found: String,
    },

    /// A serde `Serialize` or `Deserialize` implementation reported an error of its own.
    #[error("serde error: {0}")]
    Serde(String),

    /// A value could not be encoded in a format.
    #[error("cannot encode the value as {format}: {reason}")]
    Encode {
        /// The format being written.
        format: Format,
        /// What was wrong with the value.
        reason: String,
    },

    /// Stored bytes could not be decoded: truncated, corrupt, or not of the expected format.
    #[error(
        "cannot decode stored {format} data: {reason}; the entry is damaged or was written by an incompatible disk"
    )]
    Decode {
        /// The format being read.
        format: Format,
        /// What was wrong with the bytes.
        reason: String,
    },

    /// A pickle refers to a Python global (a class, a function): dcache never executes pickled
    /// code and reads only builtin types.
    #[error(
        "the pickle refers to the Python object `{module}.{name}`; dcache reads only builtin types \
         (None, bool, int, float, str, bytes, list, tuple, dict, set) and never executes pickled \
         code; store plain data instead of class instances"
    )]
    PickleGlobal {
        /// The module part of the reference.
        module: String,
        /// The qualified name part of the reference.
        name: String,
    },

    /// The `mode` column holds a value this disk does not know.
    #[error(
        "unknown value mode {mode}: the entry was written by a disk this one does not understand; \
         open the cache with the disk that wrote it"
    )]
    UnknownMode {
        /// The stored mode.
        mode: i64,
    },

    /// A stored value file path would leave the cache directory (absolute, with `..`, or
    /// through a symbolic link).
    #[error(
        "refusing value file path {path:?} read from the database: it does not lead to a file \
         inside the cache directory (an absolute path, `..`, or a symbolic link; the database or \
         the directory was tampered with)"
    )]
    UnsafePath {
        /// The path as stored.
        path: String,
    },

    /// A stored value file name stays inside the cache directory but is not a value file
    /// name: it names the top level of the directory (where the database lives), the database
    /// or its `-wal`/`-shm`/`-journal`, or has an empty, `.`, or NUL component. Nothing is
    /// opened or removed.
    #[error(
        "refusing value file name {path:?} read from the database: {reason}; a value file is a \
         relative path of at least two plain components (python writes `hh/hh/<32 hex>.val`), \
         so nothing was opened or removed (the row was written by a buggy or hostile writer: \
         run `check` with fix to drop it)"
    )]
    NotAValueFile {
        /// The name as stored.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A value file exists but is not a regular file (a FIFO, socket, device, directory or
    /// symbolic link was put in its place). It is never opened for reading, so it cannot block.
    #[error(
        "value file {} is a {kind}, not a regular file; it was not read (a FIFO or device could \
         block forever); remove it and run `check` with fix", path.display()
    )]
    NotAFile {
        /// The absolute path of the file.
        path: PathBuf,
        /// What it is: `"FIFO"`, `"socket"`, `"character device"`, `"block device"`,
        /// `"directory"`, `"symbolic link"` or `"special file"`.
        kind: &'static str,
    },

    /// A value file is larger than what is read into memory at once
    /// ([`FileStore::with_max_read`](crate::FileStore::with_max_read)).
    #[error(
        "value file {} holds {size} bytes, more than the {limit} bytes read into memory at once; \
         stream it with `read` instead (or raise the limit)", path.display()
    )]
    TooLarge {
        /// The absolute path of the file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in force.
        limit: u64,
    },

    /// A value file is missing.
    #[error("value file {} is missing; run `check` with fix to drop rows that point to missing files", path.display())]
    MissingFile {
        /// The absolute path of the file.
        path: PathBuf,
    },

    /// A value file does not have the size its row records.
    #[error(
        "value file {} holds {actual} bytes but its row records {expected}; the file was \
         truncated or replaced (run `check` with fix)", path.display()
    )]
    SizeMismatch {
        /// The absolute path of the file.
        path: PathBuf,
        /// The size recorded in the row.
        expected: u64,
        /// The size found on disk.
        actual: u64,
    },

    /// A disk setting has a value this disk cannot use.
    #[error("invalid disk setting `disk_{name}` = {value}: {reason}")]
    Setting {
        /// The setting, without the `disk_` prefix.
        name: String,
        /// The rejected value, as SQLite shows it.
        value: String,
        /// What is allowed.
        reason: String,
    },

    /// An I/O error on a value file or directory.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A decode error for `format`.
    pub(crate) fn decode(format: Format, reason: impl fmt::Display) -> Self {
        Error::Decode {
            format,
            reason: reason.to_string(),
        }
    }

    /// An encode error for `format`.
    pub(crate) fn encode(format: Format, reason: impl fmt::Display) -> Self {
        Error::Encode {
            format,
            reason: reason.to_string(),
        }
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Serde(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Serde(msg.to_string())
    }

    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        Error::WrongType {
            expected: exp.to_string(),
            found: unexp.to_string(),
        }
    }

    fn invalid_value(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        Error::WrongType {
            expected: exp.to_string(),
            found: unexp.to_string(),
        }
    }

    fn invalid_length(len: usize, exp: &dyn serde::de::Expected) -> Self {
        Error::WrongType {
            expected: exp.to_string(),
            found: format!("a sequence of length {len}"),
        }
    }
}
