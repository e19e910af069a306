//! One error type for programs that use several of dcache's types.

use crate::{cache, collections, disk, fanout, recipes, sync};

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error dcache returns, for a program that uses a [`Cache`](crate::Cache), a
/// [`Deque`](crate::Deque) and a [`Lock`](crate::Lock) together and wants one type to pass up
/// (as `redb::Error` gathers redb's specific errors). Each layer's own error converts into it
/// with `?`; match on the layer's error inside it for details.
///
/// ```
/// use dcache::{Cache, Deque, Lock};
///
/// fn work(dir: &std::path::Path) -> dcache::Result<u64> {
///     let cache = Cache::open(dir.join("cache"))?; // dcache::cache::Error
///     let jobs: Deque<String> = Deque::open(dir.join("jobs"))?; // dcache::collections::Error
///     let lock = Lock::new(cache.clone(), "report");
///     let _held = lock.acquire()?; // dcache::sync::Error
///     jobs.push_back("build")?;
///     Ok(cache.incr("runs", 1)? as u64)
/// }
/// let dir = tempfile::tempdir()?;
/// assert_eq!(work(dir.path())?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`Cache`](crate::Cache) (or the keys, values and files below it) failed:
    /// [`cache::Error`].
    #[error(transparent)]
    Cache(#[from] cache::Error),
    /// A [`FanoutCache`](crate::FanoutCache) failed: [`fanout::Error`].
    #[error(transparent)]
    Fanout(#[from] fanout::Error),
    /// A [`Deque`](crate::Deque) or [`Index`](crate::Index) failed: [`collections::Error`].
    #[error(transparent)]
    Collection(#[from] collections::Error),
    /// A [`Lock`](crate::Lock), [`RLock`](crate::RLock),
    /// [`BoundedSemaphore`](crate::BoundedSemaphore) or [`Averager`](crate::Averager) failed:
    /// [`sync::Error`].
    #[error(transparent)]
    Sync(#[from] sync::Error),
    /// A [`Throttle`](crate::Throttle), [`Barrier`](crate::Barrier) or
    /// [`MemoizeStampede`](crate::MemoizeStampede) failed: [`recipes::Error`].
    #[error(transparent)]
    Recipe(#[from] recipes::Error),
}

impl From<disk::Error> for Error {
    fn from(e: disk::Error) -> Self {
        Error::Cache(cache::Error::Disk(e))
    }
}

impl Error {
    /// True when the operation gave up waiting (a write lock, or a lock or semaphore acquired
    /// with a timeout) and may succeed if tried again. Every dcache error type's `is_timeout`
    /// means the same.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Cache(e) => e.is_timeout(),
            Error::Fanout(e) => e.is_timeout(),
            Error::Collection(e) => e.is_timeout(),
            Error::Sync(e) => e.is_timeout(),
            Error::Recipe(e) => e.is_timeout(),
        }
    }

    /// The [`cache::Error`] at the bottom of this error, if a cache (or its store) failed:
    /// the one place to look for I/O, SQLite, read-only and damaged-entry errors whichever
    /// layer reported them.
    #[must_use]
    pub fn cache_error(&self) -> Option<&cache::Error> {
        match self {
            Error::Cache(e)
            | Error::Fanout(
                fanout::Error::Cache(e) | fanout::Error::Collection(collections::Error::Cache(e)),
            )
            | Error::Collection(collections::Error::Cache(e))
            | Error::Sync(sync::Error::Store(e))
            | Error::Recipe(
                recipes::Error::Store(e) | recipes::Error::Sync(sync::Error::Store(e)),
            ) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_converts_and_timeouts_mean_the_same() {
        let waited = std::time::Duration::from_millis(5);
        let timeout = || cache::Error::Timeout { waited };
        let all = [
            Error::from(timeout()),
            Error::from(fanout::Error::Cache(timeout())),
            Error::from(collections::Error::from(timeout())),
            Error::from(sync::Error::Store(timeout())),
            Error::from(recipes::Error::Store(timeout())),
            Error::from(recipes::Error::Sync(sync::Error::Store(timeout()))),
        ];
        for e in &all {
            assert!(e.is_timeout(), "{e:?}");
            assert!(
                matches!(e.cache_error(), Some(cache::Error::Timeout { .. })),
                "{e:?}"
            );
        }
        let not = Error::from(collections::Error::IndexOutOfRange { index: 0, len: 0 });
        assert!(!not.is_timeout());
        assert!(not.cache_error().is_none());
        let disk = Error::from(disk::Error::MissingFile { path: "x".into() });
        assert!(matches!(disk.cache_error(), Some(cache::Error::Disk(_))));
    }
}
