//! `Throttle`: at most `count` calls per period, across threads and processes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dcache_core::unix_seconds;

use dcache_core::{Clock, SetOptions, Storage, Tag, Update};

use crate::error::{Error, Result};

/// What python's `throttle` stores: `(last, tally)`, the time of the bucket's last update in
/// Unix seconds and the tokens it held then.
type Bucket = (f64, f64);

/// The sleep function: `std::thread::sleep` unless the application injects one.
type SleepFn = dyn Fn(Duration) + Send + Sync;

/// A rate limit shared by every thread and process that opens the same store: at most
/// `count` calls per `per`, python-diskcache's `throttle` recipe.
///
/// The limit is a token bucket under one key (the throttle's name). It holds up to `count`
/// tokens and refills at `count / per` tokens a second; each call takes one token, waiting
/// (sleeping outside any transaction, then trying again) while the bucket is empty. A burst
/// of up to `count` calls goes through at once after a quiet spell; after that, calls are
/// spaced `per / count` apart.
///
/// Each take is one atomic read-modify-write of the key ([`Storage::update`]), so no call
/// slips through between processes. The key holds python's pickled `(last, tally)` tuple: a
/// python `throttle` with the same name shares the bucket.
///
/// Creating a throttle stores a full bucket only if the key holds none (`add`), so restarting a
/// process does not grant a fresh burst. (python's decorator *sets* a full bucket each time a
/// function is decorated.) A bucket that has expired or was evicted counts as full.
///
/// A `Throttle` is a cheap handle (clone it into each thread).
///
/// # Examples
///
/// Five calls a minute, on simulated time (the sleep function moves a manual clock):
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, UNIX_EPOCH};
/// use dcache_core::{Cache, Clock, ManualClock};
/// use dcache_recipes::Throttle;
///
/// let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000)));
/// let slept = Arc::new(Mutex::new(Vec::new()));
/// let throttle = Throttle::builder(Cache::temp()?, "api", 5, Duration::from_secs(60))
///     .clock(clock.clone())
///     .sleep({
///         let (clock, slept) = (clock.clone(), slept.clone());
///         move |d| {
///             slept.lock().unwrap().push(d);
///             clock.advance(d);
///         }
///     })
///     .build()?;
/// for _ in 0..7 {
///     throttle.call(|| Ok::<_, dcache_recipes::Error>(()))?;
/// }
/// // Five calls at once, then one every 12 seconds.
/// let slept = slept.lock().unwrap().clone();
/// assert_eq!(slept, [Duration::from_secs(12), Duration::from_secs(12)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Throttle<S> {
    store: S,
    name: String,
    count: u32,
    per: Duration,
    opts: SetOptions,
    clock: Option<Arc<dyn Clock>>,
    sleep: Arc<SleepFn>,
}

impl<S> fmt::Debug for Throttle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("name", &self.name)
            .field("count", &self.count)
            .field("per", &self.per)
            .field("expire", &self.opts.expire)
            .field("tag", &self.opts.tag)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Throttle<S> {
    /// A throttle named `name` allowing `count` calls per `per` through `store`, with the
    /// store's clock, real sleeps, no expiry and no tag. Stores a full bucket unless the key
    /// already holds one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidThrottle`] when `count` is 0 or `per` is zero; [`Error::Store`] when
    /// the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let throttle =
    ///     dcache_recipes::Throttle::new(dcache_core::Cache::temp()?, "api", 10, Duration::from_secs(1))?;
    /// throttle.wait()?; // the bucket starts full: no waiting
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn new(store: S, name: impl Into<String>, count: u32, per: Duration) -> Result<Self> {
        Self::builder(store, name, count, per).build()
    }

    /// A builder for a throttle with expiry, tag, clock or sleep function.
    pub fn builder(
        store: S,
        name: impl Into<String>,
        count: u32,
        per: Duration,
    ) -> ThrottleBuilder<S> {
        ThrottleBuilder {
            throttle: Throttle {
                store,
                name: name.into(),
                count,
                per,
                opts: SetOptions::new(),
                clock: None,
                sleep: Arc::new(std::thread::sleep),
            },
        }
    }

    /// The throttle's name, which is its key in the store.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The calls allowed per [`per`](Self::per).
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    #[must_use]
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Waits until a call is allowed and counts it (takes a token from the bucket).
    ///
    /// Sleeps with the throttle's sleep function, outside any transaction, as long as the
    /// bucket is empty.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or the key holds something other than a
    /// `(last, tally)` pair of numbers.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let throttle = dcache_recipes::Throttle::new(cache, "uploads", 100, Duration::from_secs(1))?;
    /// for _ in 0..3 {
    ///     throttle.wait()?;
    ///     // ... upload ...
    /// }
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn wait(&self) -> Result<()> {
        while let Some(pause) = self.take()? {
            (self.sleep)(pause);
        }
        Ok(())
    }

    /// Waits until a call is allowed (as [`wait`](Self::wait)), then runs `f`.
    ///
    /// The call counts even if `f` fails, as in python.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the throttle's ([`wait`](Self::wait)) converted into `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let throttle = dcache_recipes::Throttle::new(cache, "api", 100, Duration::from_secs(1))?;
    /// let answer = throttle.call(|| Ok::<_, dcache_recipes::Error>(6 * 7))?;
    /// assert_eq!(answer, 42);
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn call<T, E: From<Error>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.wait()?;
        f()
    }

    /// Turns `f` into a throttled function (python's decorator): each call of the result
    /// waits for the throttle, then calls `f`. Several arguments travel as a tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let throttle = dcache_recipes::Throttle::new(cache, "fetch", 100, Duration::from_secs(1))?;
    /// let fetch = throttle.wrap(|(host, port): (&str, u16)| {
    ///     Ok::<_, dcache_recipes::Error>(format!("{host}:{port}"))
    /// });
    /// assert_eq!(fetch(("example.org", 443))?, "example.org:443");
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn wrap<A, T, E, F>(self, f: F) -> impl Fn(A) -> Result<T, E>
    where
        E: From<Error>,
        F: Fn(A) -> Result<T, E>,
    {
        move |args| self.call(|| f(args))
    }

    /// The current time on the throttle's clock.
    fn now(&self) -> SystemTime {
        self.clock
            .as_ref()
            .map_or_else(|| self.store.now(), |c| c.now())
    }

    /// One attempt: takes a token if the bucket has one (`None`), else says how long until it
    /// will (python's algorithm, one atomic update of the key).
    pub(crate) fn take(&self) -> Result<Option<Duration>> {
        let count = f64::from(self.count);
        let rate = count / self.per.as_secs_f64();
        let wanted =
            self.store
                .update::<Bucket, _, _>(&self.name, self.opts.clone(), |current| {
                    // Read at each attempt, as python reads it inside its transaction: a backend
                    // that re-runs this closure re-runs it at a later time.
                    let now = unix_seconds(self.now());
                    let (last, tally) = current
                        .filter(|(last, tally)| last.is_finite() && tally.is_finite())
                        .unwrap_or((now, count));
                    let tally = tally + (now - last) * rate;
                    if tally > count {
                        (Update::Set((now, count - 1.0)), None)
                    } else if tally >= 1.0 {
                        (Update::Set((now, tally - 1.0)), None)
                    } else {
                        (Update::Keep, Some((1.0 - tally) / rate))
                    }
                })?;
        Ok(wanted.map(|secs| pause_for(secs, self.per / self.count)))
    }
}

/// Sets up a [`Throttle`]; [`build`](Self::build) stores its bucket.
#[must_use]
pub struct ThrottleBuilder<S> {
    throttle: Throttle<S>,
}

impl<S> fmt::Debug for ThrottleBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ThrottleBuilder")
            .field(&self.throttle)
            .finish()
    }
}

impl<S: Storage> ThrottleBuilder<S> {
    /// The bucket expires `ttl` after its last use (default: never). An expired bucket counts
    /// as full, so give it a `ttl` of at least the period.
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.throttle.opts.expire = Some(ttl);
        self
    }

    /// The bucket is stored with this tag (default: none). (python's throttle tags the key
    /// only when decorating; this one keeps the tag on every update.)
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.throttle.opts.tag = Some(tag.into());
        self
    }

    /// Reads the time from `clock` (default: the store's clock, [`Storage::now`]). Every
    /// process sharing the throttle should see about the same time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.throttle.clock = Some(clock);
        self
    }

    /// Waits with `sleep` (default: [`std::thread::sleep`]): for tests, and for applications
    /// on simulated time. After `sleep` returns, the throttle reads its clock again; if the
    /// bucket is still empty it sleeps again.
    pub fn sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.throttle.sleep = Arc::new(sleep);
        self
    }

    /// Stores a full bucket under the name unless the key already holds one (`add`: an
    /// existing bucket keeps its tokens), and returns the throttle.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidThrottle`] when `count` is 0 or `per` is zero; [`Error::Store`] when
    /// the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dcache_recipes::Throttle;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let throttle = Throttle::builder(cache.clone(), "api", 2, Duration::from_secs(3600))
    ///     .expire(Duration::from_secs(7200))
    ///     .tag("limits")
    ///     .build()?;
    /// throttle.wait()?;
    /// throttle.wait()?; // the bucket is empty now...
    /// // ...and re-creating the throttle (a restarted process) does not refill it.
    /// let _again = Throttle::new(cache.clone(), "api", 2, Duration::from_secs(3600))?;
    /// let (_last, tally): (f64, f64) = cache.get("api")?.expect("the bucket");
    /// assert!(tally < 1.0);
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn build(self) -> Result<Throttle<S>> {
        let throttle = self.throttle;
        if throttle.count == 0 || throttle.per.is_zero() {
            return Err(Error::InvalidThrottle {
                name: throttle.name,
                count: throttle.count,
                per: throttle.per,
            });
        }
        let full: Bucket = (unix_seconds(throttle.now()), f64::from(throttle.count));
        throttle
            .store
            .add(&throttle.name, &full, throttle.opts.clone())?;
        Ok(throttle)
    }
}

/// How long to sleep for a token `secs` away: rounded up to the next nanosecond, so the clock
/// always moves (a zero sleep would spin), and at most `longest`, the time one token takes to
/// grow. Only a bucket last updated in the future (a clock that went back, or another
/// process's clock ahead of ours) asks for more; it is looked at again after `longest`.
fn pause_for(secs: f64, longest: Duration) -> Duration {
    let longest = longest.max(Duration::from_nanos(1));
    let nanos = (secs * 1e9).ceil();
    // Also false for NaN.
    if nanos < longest.as_nanos() as f64 {
        Duration::from_nanos((nanos as u64).max(1))
    } else {
        longest
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::UNIX_EPOCH;

    use dcache_core::{Cache, ManualClock};

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    const START: u64 = 1_700_000_000;

    /// The sleeps a throttle asked for.
    type Sleeps = Arc<Mutex<Vec<Duration>>>;

    /// A throttle on simulated time, its clock, and the sleeps it asked for.
    fn simulated(
        cache: &Cache,
        name: &str,
        count: u32,
        per: Duration,
    ) -> Result<(Throttle<Cache>, Arc<ManualClock>, Sleeps)> {
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(START)));
        let slept = Arc::new(Mutex::new(Vec::new()));
        let throttle = Throttle::builder(cache.clone(), name, count, per)
            .clock(clock.clone())
            .sleep({
                let (clock, slept) = (clock.clone(), slept.clone());
                move |d| {
                    slept.lock().expect("sleeps").push(d);
                    clock.advance(d);
                }
            })
            .build()?;
        Ok((throttle, clock, slept))
    }

    #[test]
    fn pauses_round_up_and_are_bounded() {
        let second = Duration::from_secs(1);
        assert_eq!(pause_for(0.5, second), Duration::from_millis(500));
        assert_eq!(pause_for(1e-15, second), Duration::from_nanos(1));
        assert_eq!(
            pause_for(0.1 + 0.2, second),
            Duration::from_nanos(300_000_001)
        );
        assert_eq!(pause_for(5.0, second), second);
        assert_eq!(pause_for(f64::NAN, second), second);
        assert_eq!(pause_for(f64::INFINITY, second), second);
        assert_eq!(pause_for(1.0, Duration::ZERO), Duration::from_nanos(1));
    }

    #[test]
    fn invalid_throttles_are_refused_and_store_nothing() -> Result<()> {
        let cache = Cache::temp()?;
        let err = Throttle::new(cache.clone(), "zero", 0, Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidThrottle { count: 0, .. }),
            "{err}"
        );
        let err = Throttle::new(cache.clone(), "instant", 3, Duration::ZERO).unwrap_err();
        assert!(matches!(err, Error::InvalidThrottle { .. }), "{err}");
        assert!(cache.is_empty()?);
        Ok(())
    }

    #[test]
    fn creating_stores_a_full_bucket_and_never_refills() -> Result<()> {
        let cache = Cache::temp()?;
        let (throttle, clock, slept) = simulated(&cache, "api", 3, Duration::from_secs(6))?;
        let stored = cache.get::<Bucket>("api")?;
        assert_eq!(stored, Some((START as f64, 3.0)));
        throttle.wait()?;
        throttle.wait()?;
        assert_eq!(cache.get::<Bucket>("api")?, Some((START as f64, 1.0)));
        // A second throttle on the key (a restarted process) finds one token, not three.
        let again = Throttle::builder(cache.clone(), "api", 3, Duration::from_secs(6))
            .clock(clock.clone())
            .sleep({
                let clock = clock.clone();
                move |d| clock.advance(d)
            })
            .build()?;
        assert_eq!(cache.get::<Bucket>("api")?, Some((START as f64, 1.0)));
        again.wait()?;
        assert!(slept.lock().expect("sleeps").is_empty());
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(START));
        again.wait()?; // empty: waits 2 s for the next token
        assert_eq!(
            clock.now(),
            UNIX_EPOCH + Duration::from_secs(START) + Duration::from_secs(2)
        );
        Ok(())
    }

    #[test]
    fn a_missing_or_damaged_bucket_counts_as_full() -> Result<()> {
        let cache = Cache::temp()?;
        let (throttle, _clock, slept) = simulated(&cache, "api", 2, Duration::from_secs(10))?;
        cache.delete("api")?;
        throttle.wait()?;
        assert_eq!(cache.get::<Bucket>("api")?, Some((START as f64, 1.0)));
        cache.set("api", (f64::NAN, f64::INFINITY))?;
        throttle.wait()?;
        throttle.wait()?;
        assert!(slept.lock().expect("sleeps").is_empty());
        // Something else under the key is an error, not a fresh bucket.
        cache.set("api", "not a bucket")?;
        assert!(matches!(throttle.wait(), Err(Error::Store(_))));
        Ok(())
    }

    #[test]
    fn expire_and_tag_are_kept_on_every_update() -> TestResult {
        let cache = Cache::temp()?;
        let throttle = Throttle::builder(cache.clone(), "api", 5, Duration::from_secs(1))
            .expire(Duration::from_secs(30))
            .tag("limits")
            .build()?;
        throttle.wait()?;
        let entry = cache.get_entry::<Bucket>("api")?.ok_or("no bucket")?;
        assert_eq!(entry.tag, Some(Tag::from("limits")));
        assert!(entry.expire_time.is_some());
        Ok(())
    }
}
