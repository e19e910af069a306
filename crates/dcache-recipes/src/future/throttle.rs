//! The async `Throttle`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dcache_core::Storage;

use crate::error::{Error, Result};

/// The async twin of [`crate::Throttle`]: the same bucket under the same key, with a wait
/// that is a [`tokio::time::sleep`] (the blocking throttle's `sleep` hook is not used).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), dcache_recipes::Error> {
/// use std::time::{Duration, Instant};
/// use dcache_recipes::future::Throttle;
///
/// let cache = dcache_core::Cache::temp()?;
/// // 5 calls per 100 ms: the first 5 at once, then one every 20 ms.
/// let throttle = Throttle::new(cache, "api", 5, Duration::from_millis(100)).await?;
/// let started = Instant::now();
/// for _ in 0..7 {
///     throttle.call(|| async { Ok::<_, dcache_recipes::Error>(()) }).await?;
/// }
/// assert!(started.elapsed() >= Duration::from_millis(35));
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Throttle<S> {
    inner: Arc<crate::Throttle<S>>,
}

impl<S> Clone for Throttle<S> {
    fn clone(&self) -> Self {
        Throttle {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Throttle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("future::Throttle")
            .field(&self.inner)
            .finish()
    }
}

impl<S> From<crate::Throttle<S>> for Throttle<S> {
    fn from(throttle: crate::Throttle<S>) -> Self {
        Throttle {
            inner: Arc::new(throttle),
        }
    }
}

impl<S: Storage> Throttle<S> {
    /// A throttle allowing `count` calls per `per` ([`crate::Throttle::new`]); its full
    /// bucket is stored (if there is none) on the blocking pool.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidThrottle`] when `count` is 0 or `per` is zero; [`Error::Store`] when
    /// the store fails.
    pub async fn new(store: S, name: impl Into<String>, count: u32, per: Duration) -> Result<Self> {
        Self::build(crate::Throttle::builder(store, name, count, per)).await
    }

    /// Builds a throttle from a blocking throttle's builder (for its expiry, tag and clock)
    /// on the blocking pool.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), dcache_recipes::Error> {
    /// use std::time::Duration;
    /// use dcache_recipes::future::Throttle;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let builder = dcache_recipes::Throttle::builder(cache, "api", 10, Duration::from_secs(1))
    ///     .tag("limits");
    /// let throttle = Throttle::build(builder).await?;
    /// assert_eq!(throttle.as_blocking().count(), 10);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build(builder: crate::ThrottleBuilder<S>) -> Result<Self> {
        let throttle = super::off_worker(move || builder.build()).await??;
        Ok(throttle.into())
    }

    /// The blocking throttle sharing this one's bucket.
    pub fn as_blocking(&self) -> &crate::Throttle<S> {
        &self.inner
    }

    /// Waits until a call is allowed, and counts it ([`crate::Throttle::wait`]). Each look at
    /// the bucket is one update on the blocking pool; the wait between looks is an async
    /// sleep.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails, or the key holds something other than a
    /// bucket.
    pub async fn wait(&self) -> Result<()> {
        loop {
            let throttle = Arc::clone(&self.inner);
            match super::off_worker(move || throttle.take()).await?? {
                None => return Ok(()),
                Some(pause) => tokio::time::sleep(pause).await,
            }
        }
    }

    /// Waits for the throttle, then awaits `f()`.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the throttle's (as [`wait`](Self::wait)) converted into `E`.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.wait().await?;
        f().await
    }
}
