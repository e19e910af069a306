//! The error type of dcache-fanout.

use std::path::PathBuf;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a FanoutCache operation can report besides a shard's [`dcache_core::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A shard reported an error (I/O, corruption, decoding; a timeout only where the
    /// operation does not turn it into `false`/`None`, see the crate docs).
    #[error(transparent)]
    Cache(#[from] dcache_core::Error),

    /// A sub-collection (`deque`, `index`) reported an error.
    #[error(transparent)]
    Collection(#[from] dcache_collections::Error),

    /// The directory holds a different number of shards than was asked for. python-diskcache
    /// stores no shard count: opening with another count would send keys to the wrong shards.
    #[error(
        "{} holds {found} shards but {requested} were asked for; open it without a shard count \
         (or with {found}) — a different count would look keys up in the wrong shards",
        dir.display()
    )]
    ShardCountMismatch {
        /// The FanoutCache directory.
        dir: PathBuf,
        /// Shard directories found.
        found: usize,
        /// Shards requested.
        requested: usize,
    },

    /// The shard directories are not `000`, `001`, … without gaps.
    #[error(
        "{}: shard directories are not numbered 000 to {last:03} without gaps (missing \
         {missing:03}); restore shard {missing:03} from a backup or move the directory aside: \
         which keys lived in the missing shard cannot be guessed",
        dir.display()
    )]
    ShardLayout {
        /// The FanoutCache directory.
        dir: PathBuf,
        /// The highest shard number found.
        last: usize,
        /// The first missing shard number.
        missing: usize,
    },

    /// A FanoutCache needs at least one shard.
    #[error("a FanoutCache needs at least one shard: pass `shards(n)` with n of 1 or more")]
    NoShards,

    /// A sub-collection name would leave its directory or is empty.
    #[error(
        "invalid sub-collection name {name:?}: use non-empty segments separated by `/`, without \
         `.` or `..` segments, absolute paths or backslashes"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },

    /// An I/O error on the FanoutCache directory.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True for a shard's [`dcache_core::Error::Timeout`].
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Cache(e) if e.is_timeout())
    }
}
