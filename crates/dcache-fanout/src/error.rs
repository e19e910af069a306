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

    /// The directory holds shard directories beyond the count asked for. python-diskcache
    /// stores no shard count: opening with another count than the directory was created with
    /// would send keys to the wrong shards.
    #[error(
        "{} holds {found} shard directories (up to {highest:03}) but {requested} shards were \
         asked for (python's default is 8); open it with the count it was created with — a \
         different count would look keys up in the wrong shards — or move stray numbered \
         directories out of it",
        dir.display()
    )]
    ShardCountMismatch {
        /// The FanoutCache directory.
        dir: PathBuf,
        /// Shard directories found.
        found: usize,
        /// The highest shard number found.
        highest: usize,
        /// Shards requested.
        requested: usize,
    },

    /// Some shards are missing while others hold entries: a shard was removed, moved or not
    /// copied. Its keys cannot be found, and recreating it empty would hide that.
    #[error(
        "{}: shard(s) {missing} are missing while shard(s) {holding} hold entries (removed, \
         moved or not copied?); restore them from a backup, or, if their entries may be lost, \
         create the missing directories empty and open again",
        dir.display()
    )]
    ShardMissing {
        /// The FanoutCache directory.
        dir: PathBuf,
        /// The missing shards (`003, 007`).
        missing: String,
        /// The shards that hold entries.
        holding: String,
    },

    /// A file, link or other non-directory stands where a shard directory belongs.
    #[error(
        "{} is {kind}, where a FanoutCache shard directory belongs; move it aside (a shard is \
         a directory holding a cache.db)",
        path.display()
    )]
    ShardNotADirectory {
        /// The path of the shard.
        path: PathBuf,
        /// What is there instead.
        kind: &'static str,
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
    /// True when a shard (or a sub-collection's cache) gave up waiting for its write lock and
    /// the operation may succeed if tried again: the same meaning as every dcache error's
    /// `is_timeout`.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Cache(e) => e.is_timeout(),
            Error::Collection(e) => e.is_timeout(),
            _ => false,
        }
    }
}
