//! The command's errors: what happened, the file it happened to, and what to do.

use std::fmt;
use std::path::PathBuf;

/// An error that ends a command with exit code 2.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The directory is not a cache directory.
    NotACache {
        /// The directory given.
        dir: PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// The cache reported an error.
    Cache(dcache::cache::Error),
    /// The FanoutCache reported an error of its own (shard layout, …).
    Fanout(dcache::fanout::Error),
    /// An argument cannot be used (a key that is not an integer, …).
    Usage(String),
    /// The command refuses to go on (clear without `--yes`, binary output to a terminal).
    Refused(String),
    /// Reading standard input or writing standard output failed.
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Another error, with what the command was doing.
    Context {
        /// What the command was doing.
        context: String,
        /// The error.
        source: Box<CliError>,
    },
}

impl CliError {
    /// Wraps the error with what the command was doing.
    pub(crate) fn context(self, context: String) -> CliError {
        CliError::Context {
            context,
            source: Box::new(self),
        }
    }

    /// The cache error at the root, if any.
    fn cache_error(&self) -> Option<&dcache::cache::Error> {
        match self {
            CliError::Cache(e) | CliError::Fanout(dcache::fanout::Error::Cache(e)) => Some(e),
            CliError::Context { source, .. } => source.cache_error(),
            _ => None,
        }
    }

    /// Whether the message already names the file or directory it is about.
    pub(crate) fn names_a_path(&self) -> bool {
        use dcache::disk::Error as Disk;
        match self {
            CliError::Cache(e) => matches!(
                e,
                dcache::cache::Error::Sqlite { .. }
                    | dcache::cache::Error::NotADatabase { .. }
                    | dcache::cache::Error::ForeignDatabase { .. }
                    | dcache::cache::Error::IncompatibleSchema { .. }
                    | dcache::cache::Error::ReadOnly { .. }
                    | dcache::cache::Error::Io { .. }
                    | dcache::cache::Error::Disk(
                        Disk::MissingFile { .. }
                            | Disk::SizeMismatch { .. }
                            | Disk::UnsafePath { .. }
                            | Disk::NotAValueFile { .. }
                            | Disk::NotAFile { .. }
                            | Disk::TooLarge { .. }
                            | Disk::Io { .. }
                    )
            ),
            CliError::Fanout(_)
            | CliError::NotACache { .. }
            | CliError::Context { .. }
            | CliError::Refused(_) => true,
            CliError::Usage(_) | CliError::Io { .. } => false,
        }
    }

    /// Advice for the errors a user of the command can act on.
    pub(crate) fn hint(&self) -> Option<String> {
        use dcache::disk::Error as Disk;
        match self.cache_error()? {
            dcache::cache::Error::Timeout { .. } => Some(
                "another thread or process holds the cache's write lock; try again, or wait \
                 longer with --timeout SECS"
                    .to_owned(),
            ),
            dcache::cache::Error::ReadOnly { path } => Some(format!(
                "this command writes: run it as a user who can write {} and its cache.db",
                path.display()
            )),
            dcache::cache::Error::Disk(Disk::Decode { .. } | Disk::UnknownMode { .. }) => Some(
                "if python wrote this cache with JSONDisk, pass --disk json; otherwise the entry \
                 is damaged: `dcache delete DIR KEY` removes it"
                    .to_owned(),
            ),
            dcache::cache::Error::Disk(
                Disk::MissingFile { .. }
                | Disk::SizeMismatch { .. }
                | Disk::NotAValueFile { .. }
                | Disk::NotAFile { .. }
                | Disk::UnsafePath { .. },
            ) => Some(
                "a value file is missing, damaged or not a value file: `dcache check DIR --fix` \
                 removes the entries that lost their files"
                    .to_owned(),
            ),
            dcache::cache::Error::Disk(Disk::TooLarge { .. }) => Some(
                "the value is larger than what is read into memory at once: `dcache get DIR KEY \
                 > FILE` streams a bytes value to a file"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::NotACache { dir, why } => {
                write!(f, "{} is not a cache directory: {why}", dir.display())
            }
            CliError::Cache(e) => e.fmt(f),
            CliError::Fanout(e) => e.fmt(f),
            CliError::Usage(msg) | CliError::Refused(msg) => f.write_str(msg),
            CliError::Io { what, source } => write!(f, "{what}: {source}"),
            CliError::Context { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<dcache::cache::Error> for CliError {
    fn from(e: dcache::cache::Error) -> Self {
        CliError::Cache(e)
    }
}

impl From<dcache::fanout::Error> for CliError {
    fn from(e: dcache::fanout::Error) -> Self {
        match e {
            dcache::fanout::Error::Cache(e) => CliError::Cache(e),
            other => CliError::Fanout(other),
        }
    }
}

impl From<dcache::disk::Error> for CliError {
    fn from(e: dcache::disk::Error) -> Self {
        CliError::Cache(dcache::cache::Error::Disk(e))
    }
}
