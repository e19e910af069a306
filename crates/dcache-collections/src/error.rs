//! The error type of dcache-collections.

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a [`Deque`](crate::Deque) or [`Index`](crate::Index) operation can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A deque index is outside `-len..len` where an element must be there
    /// ([`Deque::set`](crate::Deque::set); reading or removing there is `Ok(None)`).
    #[error("deque index {index} out of range: {}", valid_indexes(*len))]
    IndexOutOfRange {
        /// The index asked for.
        index: i64,
        /// The deque's length when the index was looked up.
        len: u64,
    },

    /// A stored element, key or value cannot be read as the collection's Rust type.
    #[error(
        "wrong element type: the stored data is {found}, which cannot be read as {expected}; \
         open the collection with the type it was written with (or `dcache::Value` to inspect it)"
    )]
    WrongType {
        /// What the Rust type expected (serde's description, e.g. `i64`, `a string`).
        expected: String,
        /// What was stored (e.g. `string "abc"`).
        found: String,
    },

    /// The cache underneath failed: I/O, SQLite, a damaged entry, a read-only directory, ….
    #[error(transparent)]
    Cache(dcache_core::Error),
}

impl Error {
    /// True when the operation gave up waiting (the cache's write lock stayed taken past its
    /// timeout) and may succeed if tried again: the same meaning as every dcache error's
    /// `is_timeout`.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Cache(e) if e.is_timeout())
    }
}

/// What indexes a deque of `len` elements accepts, for [`Error::IndexOutOfRange`].
fn valid_indexes(len: u64) -> String {
    if len == 0 {
        "the deque is empty".to_owned()
    } else {
        format!(
            "the deque has {len} elements, so valid indexes are -{len} to {} (negative indexes \
             count from the back)",
            len - 1
        )
    }
}

impl From<dcache_core::Error> for Error {
    fn from(e: dcache_core::Error) -> Self {
        match e {
            dcache_core::Error::Disk(dcache_core::disk::Error::WrongType { expected, found }) => {
                Error::WrongType { expected, found }
            }
            other => Error::Cache(other),
        }
    }
}

/// Carries a caller's error, or a cache error, out of a core transaction.
pub(crate) enum TxError<E> {
    User(E),
    Cache(dcache_core::Error),
}

impl<E> From<dcache_core::Error> for TxError<E> {
    fn from(e: dcache_core::Error) -> Self {
        TxError::Cache(e)
    }
}

impl<E: From<Error>> TxError<E> {
    pub(crate) fn into_user(self) -> E {
        match self {
            TxError::User(e) => e,
            TxError::Cache(e) => E::from(Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_from_the_cache_become_wrong_element_types() {
        let e = Error::from(dcache_core::Error::Disk(
            dcache_core::disk::Error::WrongType {
                expected: "i64".into(),
                found: "string \"a\"".into(),
            },
        ));
        assert!(matches!(e, Error::WrongType { ref expected, .. } if expected == "i64"));
        let e = Error::from(dcache_core::Error::KeyNotFound);
        assert!(matches!(e, Error::Cache(dcache_core::Error::KeyNotFound)));
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = Error::IndexOutOfRange { index: 7, len: 3 };
        assert_eq!(
            e.to_string(),
            "deque index 7 out of range: the deque has 3 elements, so valid indexes are -3 to 2 \
             (negative indexes count from the back)"
        );
        let e = Error::IndexOutOfRange { index: -1, len: 0 };
        assert_eq!(
            e.to_string(),
            "deque index -1 out of range: the deque is empty"
        );
    }
}
