//! The error type of dcache-recipes.

use std::time::Duration;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a throttle, barrier or stampede-protected memoizer can report.
///
/// The recipes' `call` methods return the caller's own error type `E` (anything with
/// `From<Error>`, such as `Box<dyn std::error::Error + Send + Sync>`), so a wrapped function's
/// errors and the recipe's own travel in one `Result`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A throttle was configured with no calls allowed, or with a zero period.
    #[error(
        "throttle {name:?} allows {count} calls per {per:?}: a throttle needs at least 1 call \
         per a period longer than zero"
    )]
    InvalidThrottle {
        /// The throttle's name (its key).
        name: String,
        /// The calls allowed per period.
        count: u32,
        /// The period.
        per: Duration,
    },

    /// A barrier's own lock (a [`BarrierLock`](crate::BarrierLock) of the application's) failed.
    #[error("the lock of barrier {key:?} failed: {source}")]
    Lock {
        /// The barrier's key.
        key: String,
        /// What the lock reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A lock from dcache-sync failed (for a barrier: the lock expired while the call ran,
    /// so the call was not protected; give the barrier a longer expire than calls take).
    #[error(transparent)]
    Sync(#[from] dcache_sync::Error),

    /// The store reported an error (I/O, SQLite, a value of an unexpected type under the key:
    /// another program writing the recipe's key, or two recipes sharing a name).
    #[error(transparent)]
    Store(#[from] dcache_core::Error),
}

impl Error {
    /// True when the operation gave up waiting (a store's write lock, or a lock or semaphore
    /// acquired with a timeout) and may succeed if tried again: the same meaning as every
    /// dcache error's `is_timeout`.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Sync(e) => e.is_timeout(),
            Error::Store(e) => e.is_timeout(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_happened_and_what_to_do() {
        let e = Error::InvalidThrottle {
            name: "api".into(),
            count: 0,
            per: Duration::from_secs(60),
        };
        let text = e.to_string();
        assert!(
            text.contains("\"api\"") && text.contains("at least 1"),
            "{text}"
        );
        let e = Error::Lock {
            key: "job".into(),
            source: "disk on fire".into(),
        };
        assert!(e.to_string().contains("disk on fire"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
