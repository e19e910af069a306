//! `MemoizeStampede`: memoization with probabilistic early recomputation.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use dcache_core::{MemoKey, Memoized, SetOptions, Storage, Tag};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser::{SerializeTuple, Serializer};

use crate::error::Error;
use dcache_core::unix_seconds;

/// The third element of the marker key `(name, args, RECOMPUTING)` whose `add` elects the one
/// caller, of all threads and processes, that recomputes a result early.
pub const RECOMPUTING: &str = "dcache-recipes:recomputing";

/// The random source: a float in (0, 1].
pub(crate) type RandomFn = dyn Fn() -> f64 + Send + Sync;

/// Memoization that recomputes a result shortly *before* it expires, in the background, so
/// that callers never all miss at once (a cache stampede): python-diskcache's
/// `memoize_stampede` recipe ("optimal probabilistic cache stampede prevention", Vattani et
/// al., VLDB 2015).
///
/// Each result is stored under `(name, args)` as the pair `(result, delta)`, `delta` being
/// the seconds its computation took, and expires `expire` after it was computed. On a hit
/// with `ttl` seconds left, the cached result is returned when
/// `-delta * beta * ln(random()) < ttl`, which is almost always while `ttl` is large
/// compared with `delta`. Otherwise the caller still gets the cached result at once, and if
/// it is the first to get there (an `add` of the marker key `(name, args, RECOMPUTING)`,
/// expiring after `delta`, succeeds: exactly one caller across all threads and processes) it
/// starts a background thread that computes the result again and stores it. A miss computes
/// the result in the calling thread and stores it; concurrent callers of the same cold key
/// in this process share that one computation (as [`Memoized`] does, which this builds on).
/// An `Err` is returned to the caller and not cached.
///
/// # Arguments, `typed` and `ignore`
///
/// The key is the tuple `(name, args)`, `args` being any serde value (a tuple of the
/// arguments, usually). python's `typed` and `ignore` options have no counterpart: Rust
/// arguments are typed (an `i64` 1 and an `f64` 1.0 are different keys), and an argument
/// left out of the tuple is ignored. Use a different `name` for each function, and not the
/// name of a [`Memoized`] (whose values are not pairs). The keys are not python's (python
/// flattens the arguments into the tuple), so python's `memoize_stampede` and this one do
/// not share results.
///
/// # Background threads
///
/// A recomputation runs on a thread of its own; its errors (the function's, or the store's
/// when saving the result) are logged with the `log` crate at warn level, and the cached
/// result stays until it expires. Like python's daemon threads, recomputations still running
/// when the process exits are cut short (harmless: the old result stays);
/// [`join_background`](Self::join_background) waits for them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dcache_core::Cache;
/// use dcache_recipes::MemoizeStampede;
///
/// let cache = Cache::temp()?;
/// let memo = MemoizeStampede::new(cache, "expensive_computation", Duration::from_secs(10))
///     .beta(1.5) // recompute a little earlier than the default 1
///     .tag("expensive_computation");
/// let square = |&(n,): &(i64,)| -> dcache_recipes::Result<i64> { Ok(n * n) };
/// let results: Vec<i64> = std::thread::scope(|s| {
///     let workers: Vec<_> = (0..10).map(|_| s.spawn(|| memo.call((42,), square))).collect();
///     workers.into_iter().map(|w| w.join().unwrap()).collect::<Result<_, _>>()
/// })?;
/// assert!(results.iter().all(|&r| r == 42 * 42)); // computed once, by one of the threads
/// # Ok::<(), dcache_recipes::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct MemoizeStampede<S: Storage> {
    memo: Memoized<S>,
    store: S,
    name: Arc<str>,
    expire: Duration,
    tag: Option<Tag>,
    beta: f64,
    random: Arc<RandomFn>,
    background: Arc<Background>,
}

impl<S: Storage> fmt::Debug for MemoizeStampede<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoizeStampede")
            .field("name", &self.name)
            .field("expire", &self.expire)
            .field("tag", &self.tag)
            .field("beta", &self.beta)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> MemoizeStampede<S> {
    /// A memoizer storing results of the function `name` in `store` for `expire` each, with
    /// `beta` 1, no tag and a thread-local pseudo-random source. A zero `expire` caches
    /// nothing (every call computes), as in python.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let memo = dcache_recipes::MemoizeStampede::new(cache, "report", Duration::from_secs(3600));
    /// assert_eq!(memo.name(), "report");
    /// # Ok::<(), dcache_core::Error>(())
    /// ```
    pub fn new(store: S, name: impl Into<String>, expire: Duration) -> Self {
        let name: String = name.into();
        MemoizeStampede {
            memo: Memoized::new(store.clone(), name.clone()).expire(expire),
            store,
            name: Arc::from(name),
            expire,
            tag: None,
            beta: 1.0,
            random: Arc::new(random_unit),
            background: Arc::default(),
        }
    }

    /// How early results are recomputed (default 1, python's): larger recomputes earlier,
    /// 0 never recomputes early (results are then recomputed only after they expire). Use a
    /// finite value of at least 0: python's formula is applied as it is, so a NaN recomputes
    /// at every hit that wins the marker.
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Results are stored with this tag (default: none), so `evict(tag)` drops them all.
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        let tag = tag.into();
        self.memo = self.memo.tag(tag.clone());
        self.tag = Some(tag);
        self
    }

    /// Draws the random number of the early-recomputation test from `random` (default: a
    /// thread-local pseudo-random generator), which must return a float in (0, 1]: 1 never
    /// recomputes early, values near 0 almost always do. For deterministic tests.
    pub fn random(mut self, random: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.random = Arc::new(random);
        self
    }

    /// The function's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cache key of the call with `args`, for invalidation
    /// (`cache.delete(memo.key(&args))`).
    pub fn key<'a, A: Serialize + ?Sized>(&'a self, args: &'a A) -> MemoKey<'a, A> {
        self.memo.key(args)
    }

    /// Returns the cached result for `args` (recomputing it in the background first if it is
    /// about to expire, see the [type docs](Self)), or computes it with `f`, caches it (if `f`
    /// succeeds) and returns it.
    ///
    /// `f` gets the arguments; it runs at most once per call, in this thread on a miss, or on
    /// a background thread for an early recomputation (hence `Send + 'static`).
    ///
    /// # Errors
    ///
    /// `f`'s error on a miss, or a store error converted into `E`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let memo = dcache_recipes::MemoizeStampede::new(cache, "pow", Duration::from_secs(300));
    /// let pow = |&(x, y): &(i64, u32)| -> dcache_recipes::Result<i64> { Ok(x.pow(y)) };
    /// assert_eq!(memo.call((2, 10), pow)?, 1024); // computed
    /// assert_eq!(memo.call((2, 10), pow)?, 1024); // cached
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn call<A, V, E, F>(&self, args: A, f: F) -> Result<V, E>
    where
        A: Serialize + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + fmt::Display + Send + 'static,
        F: FnOnce(&A) -> Result<V, E> + Send + 'static,
    {
        let cached = self
            .store
            .get_entry::<(V, f64)>(&self.memo.key(&args))
            .map_err(Error::from)?;
        if let Some(entry) = cached {
            let (value, delta) = entry.value;
            if self.fresh_enough(delta, entry.expire_time) {
                return Ok(value);
            }
            let marker = Marker {
                name: &self.name,
                args: &args,
            };
            let guard_for = marker_life(delta, self.expire);
            let elected = self
                .store
                .add(&marker, &(), SetOptions::new().expire(guard_for))
                .map_err(Error::from)?;
            if elected {
                self.recompute_in_background(args, f);
            }
            return Ok(value);
        }
        let computed = self
            .memo
            .call(&args, || timed(|| f(&args)).map_err(Failure::Call));
        match computed {
            Ok((value, _delta)) => Ok(value),
            Err(Failure::Call(e)) => Err(e),
            Err(Failure::Store(e)) => Err(E::from(Error::Store(e))),
        }
    }

    /// Turns `f` into a memoized function (python's decorator). Several arguments travel as
    /// a tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let area = dcache_recipes::MemoizeStampede::new(cache, "area", Duration::from_secs(60))
    ///     .wrap(|&(w, h): &(u32, u32)| Ok::<_, dcache_recipes::Error>(w * h));
    /// assert_eq!(area((3, 4))?, 12);
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn wrap<A, V, E, F>(self, f: F) -> impl Fn(A) -> Result<V, E>
    where
        A: Serialize + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + fmt::Display + Send + 'static,
        F: Fn(&A) -> Result<V, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        move |args| {
            let f = Arc::clone(&f);
            self.call(args, move |a| f(a))
        }
    }

    /// Waits until the background recomputations started through this memoizer (or a clone)
    /// have finished: before a process exits, say, when they must not be cut short.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = dcache_core::Cache::temp()?;
    /// let memo = dcache_recipes::MemoizeStampede::new(cache, "f", Duration::from_secs(60))
    ///     .random(|| 1e-300); // always recompute early
    /// let f = |&(): &()| Ok::<_, dcache_recipes::Error>(1);
    /// memo.call((), f)?; // a miss: computed here
    /// memo.call((), f)?; // a hit: recomputed in the background
    /// memo.join_background();
    /// # Ok::<(), dcache_recipes::Error>(())
    /// ```
    pub fn join_background(&self) {
        let mut running = self
            .background
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *running > 0 {
            running = self
                .background
                .finished
                .wait(running)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// python's test: the cached result stands unless `-delta * beta * ln(random) >= ttl`.
    fn fresh_enough(&self, delta: f64, expire_time: Option<SystemTime>) -> bool {
        fresh_enough(&self.store, self.beta, &*self.random, delta, expire_time)
    }

    fn recompute_in_background<A, V, E, F>(&self, args: A, f: F)
    where
        A: Serialize + Send + 'static,
        V: Serialize + Send + 'static,
        E: fmt::Display + Send + 'static,
        F: FnOnce(&A) -> Result<V, E> + Send + 'static,
    {
        let running = Running::start(&self.background);
        let store = self.store.clone();
        let name = Arc::clone(&self.name);
        let opts = SetOptions::new()
            .expire(self.expire)
            .tag_opt(self.tag.clone());
        let spawned = std::thread::Builder::new()
            .name("dcache-stampede".into())
            .spawn(move || {
                let _running = running;
                match timed(|| f(&args)) {
                    Ok(pair) => {
                        let key = MemoKey {
                            name: &name,
                            args: &args,
                        };
                        if let Err(e) = store.set(&key, &pair, opts) {
                            log::warn!(
                                "memoize_stampede {name:?}: storing an early recomputation \
                                 failed: {e}; the cached result stays until it expires"
                            );
                        }
                    }
                    Err(e) => log::warn!(
                        "memoize_stampede {name:?}: an early recomputation failed: {e}; the \
                         cached result stays until it expires"
                    ),
                }
            });
        if let Err(e) = spawned {
            log::warn!(
                "memoize_stampede {:?}: cannot start a thread to recompute early: {e}; the \
                 result is computed again when it expires",
                self.name
            );
        }
    }
}

/// python's test: the cached result stands unless `-delta * beta * ln(random) >= ttl`.
pub(crate) fn fresh_enough<S: Storage>(
    store: &S,
    beta: f64,
    random: &RandomFn,
    delta: f64,
    expire_time: Option<SystemTime>,
) -> bool {
    // Stored without expiry (by someone else): it never goes stale.
    let Some(expire_time) = expire_time else {
        return true;
    };
    let ttl = unix_seconds(expire_time) - unix_seconds(store.now());
    -delta * beta * random().ln() < ttl
}

/// How long the marker of an early recomputation lives: as long as the recomputation should
/// take (python's rule); a delta that is no duration (written by someone else) guards for
/// `expire`.
pub(crate) fn marker_life(delta: f64, expire: Duration) -> Duration {
    Duration::try_from_secs_f64(delta)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(expire)
}

/// Runs `f`, timing it: `(result, seconds)`, python's `(result, delta)`.
fn timed<V, E>(f: impl FnOnce() -> Result<V, E>) -> Result<(V, f64), E> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed().as_secs_f64()))
}

/// The error of a miss computed through [`Memoized`]: the function's or the store's.
enum Failure<E> {
    Call(E),
    Store(dcache_core::Error),
}

impl<E> From<dcache_core::Error> for Failure<E> {
    fn from(e: dcache_core::Error) -> Self {
        Failure::Store(e)
    }
}

/// The key `(name, args, RECOMPUTING)`.
pub(crate) struct Marker<'a, A> {
    pub(crate) name: &'a str,
    pub(crate) args: &'a A,
}

impl<A: Serialize> Serialize for Marker<'_, A> {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(self.name)?;
        t.serialize_element(self.args)?;
        t.serialize_element(RECOMPUTING)?;
        t.end()
    }
}

/// The background recomputations running, for `join_background`.
#[derive(Debug, Default)]
struct Background {
    running: Mutex<usize>,
    finished: Condvar,
}

/// One running recomputation; counts itself out when dropped (also if the function panics).
struct Running(Arc<Background>);

impl Running {
    fn start(background: &Arc<Background>) -> Running {
        *background
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        Running(Arc::clone(background))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        drop(running);
        self.0.finished.notify_all();
    }
}

/// A uniformly distributed float in (0, 1] from a per-thread xorshift64* generator seeded by
/// the OS (through `RandomState`).
pub(crate) fn random_unit() -> f64 {
    thread_local! {
        static STATE: Cell<u64> =
            Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
    }
    let x = STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    });
    // The top 53 bits, plus one: 1 ..= 2^53, over 2^53.
    ((x >> 11) + 1) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    use dcache_core::{Cache, ManualClock};

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    const START: u64 = 1_700_000_000;

    fn cache_at(clock: &Arc<ManualClock>) -> dcache_core::Result<Cache> {
        Cache::builder().clock(clock.clone()).open_temp()
    }

    #[test]
    fn random_numbers_are_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|&x| x > 0.0 && x <= 1.0));
        let mean = draws.iter().sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "mean {mean}");
        let other = std::thread::spawn(random_unit).join().unwrap_or(0.0);
        assert!(other > 0.0);
    }

    #[test]
    fn stores_the_result_with_its_compute_time_and_expiry() -> TestResult {
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(START)));
        let cache = cache_at(&clock)?;
        let memo = MemoizeStampede::new(cache.clone(), "f", Duration::from_secs(60)).tag("memo");
        let v: String = memo.call(("a", 1), |&(s, n): &(&str, i32)| {
            std::thread::sleep(Duration::from_millis(20));
            Ok::<_, Error>(format!("{s}{n}"))
        })?;
        assert_eq!(v, "a1");
        let entry = cache
            .get_entry::<(String, f64)>(memo.key(&("a", 1)))?
            .ok_or("not cached")?;
        assert_eq!(entry.value.0, "a1");
        assert!(entry.value.1 >= 0.02, "delta {}", entry.value.1);
        assert_eq!(
            entry.expire_time,
            Some(UNIX_EPOCH + Duration::from_secs(START + 60))
        );
        assert_eq!(entry.tag, Some(Tag::from("memo")));
        Ok(())
    }

    #[test]
    fn errors_are_returned_and_not_cached() -> TestResult {
        let cache = Cache::temp()?;
        let memo = MemoizeStampede::new(cache.clone(), "f", Duration::from_secs(60));
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = {
            let calls = calls.clone();
            move |&(): &()| -> std::result::Result<i64, Box<dyn std::error::Error + Send + Sync>> {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("backend down".into())
            }
        };
        for _ in 0..2 {
            let err = memo.call((), failing.clone()).unwrap_err();
            assert_eq!(err.to_string(), "backend down");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(cache.is_empty()?);
        Ok(())
    }

    /// A cache, a memoizer, and a count of the memoized function's calls.
    type Warm = (Cache, MemoizeStampede<Cache>, Arc<AtomicUsize>);

    /// A warm result with `left` seconds to live and a stored delta of 1 s.
    fn warm(
        left: u64,
        draw: f64,
        beta: f64,
    ) -> std::result::Result<Warm, Box<dyn std::error::Error>> {
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(START)));
        let cache = cache_at(&clock)?;
        let memo = MemoizeStampede::new(cache.clone(), "f", Duration::from_secs(100))
            .beta(beta)
            .random(move || draw);
        cache.set_with(
            memo.key(&(7,)),
            ("old", 1.0),
            SetOptions::new().expire(Duration::from_secs(100)),
        )?;
        clock.advance(Duration::from_secs(100 - left));
        Ok((cache, memo, Arc::new(AtomicUsize::new(0))))
    }

    fn fresh(calls: &Arc<AtomicUsize>) -> impl Fn(&(i32,)) -> Result<String, Error> + use<> {
        let calls = calls.clone();
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok("new".to_owned())
        }
    }

    #[test]
    fn far_from_expiry_the_cached_result_stands() -> TestResult {
        // -1 * 1 * ln(0.5) = 0.69 s < 50 s left.
        let (cache, memo, calls) = warm(50, 0.5, 1.0)?;
        let f = fresh(&calls);
        assert_eq!(memo.call((7,), f)?, "old");
        memo.join_background();
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(!cache.contains((memo.name(), (7,), RECOMPUTING))?);
        Ok(())
    }

    #[test]
    fn near_expiry_one_caller_recomputes_in_the_background() -> TestResult {
        // -1 * 1 * ln(0.5) = 0.69 s < 1 s left: the result stands.
        let (_cache, memo, calls) = warm(1, 0.5, 1.0)?;
        assert_eq!(memo.call((7,), fresh(&calls))?, "old");
        memo.join_background();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "0.69 s < 1 s left: no recompute"
        );

        let (cache, memo, calls) = warm(1, 0.25, 1.0)?; // -ln(0.25) = 1.39 s >= 1 s left
        // The recomputation waits until all five callers got the stale value, so none of them
        // can see its result however fast the background thread is.
        let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let gated = |calls: &Arc<AtomicUsize>| {
            let (calls, gate) = (calls.clone(), gate.clone());
            move |_: &(i32,)| -> Result<String, Error> {
                let (open, opened) = &*gate;
                let mut open = open
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*open {
                    open = opened
                        .wait(open)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                calls.fetch_add(1, Ordering::SeqCst);
                Ok("new".to_owned())
            }
        };
        for _ in 0..5 {
            assert_eq!(memo.call((7,), gated(&calls))?, "old", "stale at once");
        }
        *gate
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        gate.1.notify_all();
        memo.join_background();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one recompute for five callers"
        );
        let (value, _delta) = cache.get::<(String, f64)>(memo.key(&(7,)))?.ok_or("gone")?;
        assert_eq!(value, "new");
        // The marker expires after the stored delta (1 s).
        let marker = cache
            .get_entry::<()>((memo.name(), (7,), RECOMPUTING))?
            .ok_or("no marker")?;
        assert_eq!(
            marker.expire_time,
            Some(UNIX_EPOCH + Duration::from_secs(START + 99 + 1))
        );
        Ok(())
    }

    #[test]
    fn beta_zero_never_recomputes_early() -> TestResult {
        let (_cache, memo, calls) = warm(1, 1e-300, 0.0)?;
        assert_eq!(memo.call((7,), fresh(&calls))?, "old");
        memo.join_background();
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        Ok(())
    }

    #[test]
    fn a_failed_recomputation_keeps_the_cached_result() -> TestResult {
        let (cache, memo, _calls) = warm(1, 1e-300, 1.0)?;
        let failing = |_: &(i32,)| -> std::result::Result<String, Error> {
            Err(Error::Store(dcache_core::Error::Overflow))
        };
        assert_eq!(memo.call((7,), failing)?, "old");
        memo.join_background();
        assert_eq!(
            cache.get::<(String, f64)>(memo.key(&(7,)))?.map(|p| p.0),
            Some("old".into())
        );
        Ok(())
    }
}
