//! The error type of dcache-sync.

use std::time::Duration;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a lock, semaphore or averager operation can report.
///
/// Keys appear in messages as their `Debug` rendering (`"report-123"`, `("job", 7)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An `acquire_timeout` gave up: the lock or the last permit stayed taken for the whole
    /// timeout.
    #[error(
        "timed out after {waited:?} waiting to acquire {key}: its holder has not released it; \
         wait longer, or give the lock or semaphore an expire so that a crashed holder frees \
         it"
    )]
    Timeout {
        /// The key of the lock or semaphore.
        key: String,
        /// How long the call waited.
        waited: Duration,
    },

    /// Releasing a [`Lock`](crate::Lock) found that the key no longer holds this
    /// acquisition's token: the lock expired (and was perhaps taken by someone else) or was
    /// removed by hand. Nothing was deleted.
    #[error(
        "lock {key} was lost before its release: it expired or was removed, and may now be \
         held by someone else; the work done under it was not protected, so give the lock a \
         longer expire than the work takes"
    )]
    LockLost {
        /// The lock's key.
        key: String,
    },

    /// An [`RLock`](crate::RLock) was released by a thread that does not hold it (another
    /// owner holds it, or nobody does: one release too many).
    #[error(
        "cannot release rlock {key}: this thread ({caller}) does not hold it ({}); release \
         from the thread that acquired it, once per acquire (its guard does so when dropped), \
         and give the lock an expire longer than it is held",
        holder.as_ref().map_or_else(|| "nobody holds it".to_owned(), |h| format!("held by {h}"))
    )]
    NotOwner {
        /// The lock's key.
        key: String,
        /// The caller's owner id (`"<pid>-<nonce>-<thread>"`, see [`owner_id`](crate::owner_id)).
        caller: String,
        /// The owner id holding it, if anyone does.
        holder: Option<String>,
    },

    /// A [`BoundedSemaphore`](crate::BoundedSemaphore) was released more often than it was
    /// acquired: every permit is already free.
    #[error(
        "cannot release semaphore {key}: all {value} permits are already free (a release \
         without a matching acquire, or the semaphore's key expired while permits were held); \
         release once per acquire (guards do so when dropped) and give the semaphore an expire \
         longer than permits are held"
    )]
    OverRelease {
        /// The semaphore's key.
        key: String,
        /// The semaphore's number of permits.
        value: u32,
    },

    /// An operation of the async API (the `future` module) could not run its store operation
    /// on tokio's blocking pool: it was called outside a tokio runtime, or the runtime shut down
    /// (or the operation panicked) before it reported.
    #[error(
        "the async lock or semaphore operation could not run: {reason}; await it inside a \
         tokio runtime (with its timer enabled) that stays up until the operation completes"
    )]
    Runtime {
        /// What went wrong.
        reason: &'static str,
    },

    /// The store reported an error (I/O, SQLite, a value of an unexpected type under the key).
    #[error(transparent)]
    Store(#[from] dcache_core::Error),
}

impl Error {
    /// True when the operation gave up waiting and may succeed if tried again: an
    /// `acquire_timeout` that ran out ([`Error::Timeout`]), or the store's own write lock that
    /// stayed taken past its timeout. The same meaning as every dcache error's `is_timeout`.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Store(e) => e.is_timeout(),
            _ => false,
        }
    }

    /// True when the store's own write lock timed out (the store was busy): such an attempt
    /// is retried while waiting.
    pub(crate) fn is_store_busy(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_and_say_what_to_do() {
        let e = Error::Timeout {
            key: "\"jobs\"".into(),
            waited: Duration::from_millis(1500),
        };
        let text = e.to_string();
        assert!(text.contains("\"jobs\"") && text.contains("1.5s") && text.contains("expire"));
        let e = Error::NotOwner {
            key: "\"r\"".into(),
            caller: "1-2".into(),
            holder: Some("3-4".into()),
        };
        assert!(e.to_string().contains("held by 3-4"), "{e}");
        let e = Error::NotOwner {
            key: "\"r\"".into(),
            caller: "1-2".into(),
            holder: None,
        };
        assert!(e.to_string().contains("nobody holds it"), "{e}");
        assert!(
            Error::from(dcache_core::Error::Timeout {
                waited: Duration::ZERO
            })
            .is_store_busy()
        );
    }
}
