//! The async `Averager`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dcache_core::{Storage, Tag};
use serde::Serialize;

use crate::error::Result;

/// The async twin of [`crate::Averager`]: each operation is one store operation run on the
/// blocking pool. Dropping a future of `add` or `pop` lets the update run to completion, or
/// not at all if it had not started: never half.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), dcache_sync::Error> {
/// let latency = dcache_sync::future::Averager::new(dcache_core::Cache::temp()?, "latency");
/// latency.add(0.080).await?;
/// latency.add(0.120).await?;
/// assert_eq!(latency.get().await?, Some(0.1));
/// assert_eq!(latency.pop().await?, Some(0.1));
/// assert_eq!(latency.get().await?, None);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Averager<S, K = String> {
    inner: Arc<crate::Averager<S, K>>,
}

impl<S, K> Clone for Averager<S, K> {
    fn clone(&self) -> Self {
        Averager {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S, K: fmt::Debug> fmt::Debug for Averager<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("future::Averager")
            .field(&self.inner)
            .finish()
    }
}

impl<S, K> From<crate::Averager<S, K>> for Averager<S, K> {
    fn from(averager: crate::Averager<S, K>) -> Self {
        Averager {
            inner: Arc::new(averager),
        }
    }
}

impl<S: Storage, K: Serialize + Clone + Send + Sync + 'static> Averager<S, K> {
    /// A running average under `key` in `store` ([`crate::Averager::new`]).
    pub fn new(store: S, key: K) -> Self {
        crate::Averager::new(store, key).into()
    }

    /// Every add sets the key to expire `ttl` later ([`crate::Averager::expire`]).
    pub fn expire(self, ttl: Duration) -> Self {
        Averager {
            inner: Arc::new(Arc::unwrap_or_clone(self.inner).expire(ttl)),
        }
    }

    /// The key is stored with this tag ([`crate::Averager::tag`]).
    pub fn tag(self, tag: impl Into<Tag>) -> Self {
        Averager {
            inner: Arc::new(Arc::unwrap_or_clone(self.inner).tag(tag)),
        }
    }
}

impl<S: Storage, K: Serialize + Send + Sync + 'static> Averager<S, K> {
    /// The blocking averager this one shares its key with.
    pub fn as_blocking(&self) -> &crate::Averager<S, K> {
        &self.inner
    }

    /// The average's key.
    #[must_use]
    pub fn key(&self) -> &K {
        self.inner.key()
    }

    /// Adds `value` to the average ([`crate::Averager::add`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Averager::add`]; [`Error::Runtime`](crate::Error::Runtime) outside a tokio
    /// runtime.
    pub async fn add(&self, value: f64) -> Result<()> {
        let averager = Arc::clone(&self.inner);
        super::off_worker(move || averager.add(value)).await?
    }

    /// The average, or `None` when nothing was added ([`crate::Averager::get`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Averager::get`]; [`Error::Runtime`](crate::Error::Runtime) outside a tokio
    /// runtime.
    pub async fn get(&self) -> Result<Option<f64>> {
        let averager = Arc::clone(&self.inner);
        super::off_worker(move || averager.get()).await?
    }

    /// The average, removing it ([`crate::Averager::pop`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Averager::pop`]; [`Error::Runtime`](crate::Error::Runtime) outside a tokio
    /// runtime.
    pub async fn pop(&self) -> Result<Option<f64>> {
        let averager = Arc::clone(&self.inner);
        super::off_worker(move || averager.pop()).await?
    }
}
