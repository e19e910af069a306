//! Async memoization: `Memoized` and `MemoizeStampede` over async functions.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use dcache_core::disk::pickle;
use dcache_core::{MemoKey, SetOptions, Storage, Tag};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::stampede::{self, Marker, RandomFn};

// ----- one computation per cold key -----

type FlightMap = Mutex<HashMap<Vec<u8>, Arc<tokio::sync::Mutex<()>>>>;

/// The keys being computed in this process, each with the async mutex its computing task
/// holds.
fn flights() -> &'static FlightMap {
    static FLIGHTS: OnceLock<FlightMap> = OnceLock::new();
    FLIGHTS.get_or_init(FlightMap::default)
}

/// A task's place in the line of one key's computations; leaves the map with its last task.
struct Flight {
    id: Vec<u8>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Flight {
    fn join(id: Vec<u8>) -> Flight {
        let mut map = flights().lock().unwrap_or_else(PoisonError::into_inner);
        let turn = Arc::clone(map.entry(id.clone()).or_default());
        Flight { id, turn }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut map = flights().lock().unwrap_or_else(PoisonError::into_inner);
        // The map's reference and this one: nobody else is in line (new ones join only
        // under the map's lock).
        if Arc::strong_count(&self.turn) <= 2 {
            map.remove(&self.id);
        }
    }
}

/// The live value of `key`, read on the blocking pool.
async fn read<S: Storage, A, V>(
    store: &S,
    name: &Arc<str>,
    args: &Arc<A>,
) -> Result<Option<dcache_core::Entry<V>>, Error>
where
    A: Serialize + Send + Sync + 'static,
    V: DeserializeOwned + Send + 'static,
{
    let (store, name, args) = (store.clone(), Arc::clone(name), Arc::clone(args));
    Ok(super::off_worker(move || {
        store.get_entry::<V>(&MemoKey {
            name: &name,
            args: &*args,
        })
    })
    .await??)
}

/// Stores `value` under `key` on the blocking pool and gives it back.
async fn write<S: Storage, A, V>(
    store: &S,
    name: &Arc<str>,
    args: &Arc<A>,
    value: V,
    opts: SetOptions,
) -> Result<V, Error>
where
    A: Serialize + Send + Sync + 'static,
    V: Serialize + Send + 'static,
{
    let (store, name, args) = (store.clone(), Arc::clone(name), Arc::clone(args));
    let (value, stored) = super::off_worker(move || {
        let key = MemoKey {
            name: &name,
            args: &*args,
        };
        let stored = store.set(&key, &value, opts);
        (value, stored)
    })
    .await?;
    stored?;
    Ok(value)
}

/// Returns the cached value of `(name, args)`, or computes it with `compute`, sharing the
/// computation with every task of this process asking for the key meanwhile; stores it
/// with `opts` (`None`: stores nothing).
async fn single_flight<S, A, V, E, Fut>(
    store: &S,
    name: &Arc<str>,
    args: &Arc<A>,
    opts: Option<SetOptions>,
    compute: impl FnOnce() -> Fut,
) -> Result<V, E>
where
    S: Storage,
    A: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
    E: From<Error>,
    Fut: Future<Output = Result<V, E>>,
{
    if let Some(entry) = read::<S, A, V>(store, name, args).await? {
        return Ok(entry.value);
    }
    let key = MemoKey {
        name,
        args: &**args,
    };
    // Keys that cannot be encoded (the store would refuse them too) are computed unshared.
    let flight = pickle::to_vec(&key, pickle::HIGHEST_PROTOCOL)
        .ok()
        .map(Flight::join);
    let _turn = match &flight {
        Some(flight) => Some(flight.turn.lock().await),
        None => None,
    };
    // Whoever held the turn before may have stored it.
    if flight.is_some()
        && let Some(entry) = read::<S, A, V>(store, name, args).await?
    {
        return Ok(entry.value);
    }
    let value = compute().await?;
    match opts {
        Some(opts) => Ok(write(store, name, args, value, opts).await?),
        None => Ok(value),
    }
}

/// An async memoizer: results of an async function, cached by argument tuple (the async
/// twin of [`dcache_core::Memoized`], storing the same keys `(name, args)` and values).
///
/// Concurrent callers of the same cold key in this process share one computation (see the
/// [module docs](super#one-computation-per-cold-key)); an `Err` result is not cached.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), dcache_recipes::Error> {
/// use std::time::Duration;
/// use dcache_recipes::future::Memoized;
///
/// let cache = dcache_core::Cache::temp()?;
/// let fetch = Memoized::new(cache, "fetch").expire(Duration::from_secs(60));
/// let page = |(url,): &(String,)| {
///     let url = url.clone();
///     async move { Ok::<_, dcache_recipes::Error>(format!("<html>{url}</html>")) }
/// };
/// let first: String = fetch.call(("https://example.com".to_owned(),), page).await?;
/// let again: String = fetch.call(("https://example.com".to_owned(),), page).await?; // cached
/// assert_eq!(first, again);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Memoized<S> {
    store: S,
    name: Arc<str>,
    expire: Option<Duration>,
    tag: Option<Tag>,
}

impl<S> fmt::Debug for Memoized<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::Memoized")
            .field("name", &self.name)
            .field("expire", &self.expire)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Memoized<S> {
    /// A memoizer storing results of the function `name` in `store`, without expiry or tag.
    pub fn new(store: S, name: impl Into<String>) -> Self {
        Memoized {
            store,
            name: Arc::from(name.into()),
            expire: None,
            tag: None,
        }
    }

    /// Results expire `ttl` after they are computed (default: never); zero caches nothing.
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.expire = Some(ttl);
        self
    }

    /// Results are stored with this tag (default: none).
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The function's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cache key of the call with `args`, for invalidation.
    pub fn key<'a, A: Serialize + ?Sized>(&'a self, args: &'a A) -> MemoKey<'a, A> {
        MemoKey {
            name: &self.name,
            args,
        }
    }

    /// Returns the cached result for `args`, or awaits `f(&args)`, caches it (if it
    /// succeeds) and returns it. `f` gets the arguments and returns a future owning what it
    /// needs of them.
    ///
    /// # Errors
    ///
    /// `f`'s error, or a store error converted into `E`.
    pub async fn call<A, V, E, F, Fut>(&self, args: A, f: F) -> Result<V, E>
    where
        A: Serialize + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error>,
        F: FnOnce(&A) -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let args = Arc::new(args);
        let opts = self.expire.is_none_or(|d| !d.is_zero()).then(|| {
            SetOptions::new()
                .expire_opt(self.expire)
                .tag_opt(self.tag.clone())
        });
        single_flight(&self.store, &self.name, &args, opts, || f(&args)).await
    }
}

// ----- MemoizeStampede -----

/// The background recomputations running.
#[derive(Debug, Default)]
struct Background {
    running: AtomicUsize,
    finished: tokio::sync::Notify,
}

/// One running recomputation; counts itself out when dropped (also if its task is aborted).
struct Running(Arc<Background>);

impl Running {
    fn start(background: &Arc<Background>) -> Running {
        background.running.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(background))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.finished.notify_waiters();
    }
}

/// The async twin of [`crate::MemoizeStampede`]: the same keys `(name, args)` and values
/// `(result, delta)`, over async functions. A miss awaits the function in the calling task
/// (one computation per cold key in this process, shared by every task asking meanwhile); a
/// hit about to expire returns the cached result and, for the one caller of all processes
/// that wins the marker key, recomputes it in a task of its own (`tokio::spawn`).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::time::Duration;
/// use dcache_recipes::future::MemoizeStampede;
///
/// let cache = dcache_core::Cache::temp()?;
/// let memo = MemoizeStampede::new(cache, "expensive", Duration::from_secs(10));
/// let calls = Arc::new(AtomicUsize::new(0));
/// let mut tasks = Vec::new();
/// for _ in 0..10 {
///     let (memo, calls) = (memo.clone(), Arc::clone(&calls));
///     tasks.push(tokio::spawn(async move {
///         memo.call((42,), move |&(n,): &(i64,)| async move {
///             calls.fetch_add(1, Ordering::SeqCst);
///             tokio::time::sleep(Duration::from_millis(20)).await;
///             Ok::<_, dcache_recipes::Error>(n * n)
///         })
///         .await
///     }));
/// }
/// for task in tasks {
///     assert_eq!(task.await??, 42 * 42);
/// }
/// assert_eq!(calls.load(Ordering::SeqCst), 1); // computed once, shared by all ten
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct MemoizeStampede<S> {
    store: S,
    name: Arc<str>,
    expire: Duration,
    tag: Option<Tag>,
    beta: f64,
    random: Arc<RandomFn>,
    background: Arc<Background>,
}

impl<S> fmt::Debug for MemoizeStampede<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("future::MemoizeStampede")
            .field("name", &self.name)
            .field("expire", &self.expire)
            .field("tag", &self.tag)
            .field("beta", &self.beta)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> MemoizeStampede<S> {
    /// A memoizer storing results of the function `name` in `store` for `expire` each
    /// ([`crate::MemoizeStampede::new`]).
    pub fn new(store: S, name: impl Into<String>, expire: Duration) -> Self {
        MemoizeStampede {
            store,
            name: Arc::from(name.into()),
            expire,
            tag: None,
            beta: 1.0,
            random: Arc::new(stampede::random_unit),
            background: Arc::default(),
        }
    }

    /// How early results are recomputed ([`crate::MemoizeStampede::beta`]).
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Results are stored with this tag (default: none).
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The random source of the early-recomputation test
    /// ([`crate::MemoizeStampede::random`]).
    pub fn random(mut self, random: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.random = Arc::new(random);
        self
    }

    /// The function's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cache key of the call with `args`, for invalidation.
    pub fn key<'a, A: Serialize + ?Sized>(&'a self, args: &'a A) -> MemoKey<'a, A> {
        MemoKey {
            name: &self.name,
            args,
        }
    }

    /// Returns the cached result for `args` (recomputing it in a background task first if it
    /// is about to expire), or awaits `f(&args)`, caches it (if it succeeds) and returns it.
    ///
    /// `f` gets the arguments and returns a future owning what it needs of them; it is called
    /// at most once per call, in this task on a miss or in a spawned task for an early
    /// recomputation (hence `Send + 'static`).
    ///
    /// # Errors
    ///
    /// `f`'s error on a miss, or a store error converted into `E`.
    pub async fn call<A, V, E, F, Fut>(&self, args: A, f: F) -> Result<V, E>
    where
        A: Serialize + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + fmt::Display + Send + 'static,
        F: FnOnce(&A) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let args = Arc::new(args);
        // The read, python's freshness test (the store's clock may be a round trip away) and
        // the election of the recomputing caller, all on the blocking pool.
        let looked = {
            let (store, name, args) = (
                self.store.clone(),
                Arc::clone(&self.name),
                Arc::clone(&args),
            );
            let (beta, random, expire) = (self.beta, Arc::clone(&self.random), self.expire);
            super::off_worker(move || -> Result<Option<(V, bool)>, dcache_core::Error> {
                let key = MemoKey {
                    name: &name,
                    args: &*args,
                };
                let Some(entry) = store.get_entry::<(V, f64)>(&key)? else {
                    return Ok(None);
                };
                let (value, delta) = entry.value;
                if stampede::fresh_enough(&store, beta, &*random, delta, entry.expire_time) {
                    return Ok(Some((value, false)));
                }
                let marker = Marker {
                    name: &name,
                    args: &*args,
                };
                let life = stampede::marker_life(delta, expire);
                let elected = store.add(&marker, &(), SetOptions::new().expire(life))?;
                Ok(Some((value, elected)))
            })
            .await
            .map_err(E::from)?
            .map_err(|e| E::from(Error::Store(e)))?
        };
        if let Some((value, elected)) = looked {
            if elected {
                self.recompute_in_background(args, f);
            }
            return Ok(value);
        }
        let opts = (!self.expire.is_zero()).then(|| {
            SetOptions::new()
                .expire(self.expire)
                .tag_opt(self.tag.clone())
        });
        let (value, _delta): (V, f64) = single_flight(&self.store, &self.name, &args, opts, || {
            let computing = f(&args);
            async move {
                let started = Instant::now();
                let value = computing.await?;
                Ok::<_, E>((value, started.elapsed().as_secs_f64()))
            }
        })
        .await?;
        Ok(value)
    }

    /// Waits until the background recomputations started through this memoizer (or a clone)
    /// have finished.
    pub async fn join_background(&self) {
        loop {
            let finished = self.background.finished.notified();
            if self.background.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            finished.await;
        }
    }

    fn recompute_in_background<A, V, E, F, Fut>(&self, args: Arc<A>, f: F)
    where
        A: Serialize + Send + Sync + 'static,
        V: Serialize + Send + 'static,
        E: fmt::Display + Send + 'static,
        F: FnOnce(&A) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let running = Running::start(&self.background);
        let store = self.store.clone();
        let name = Arc::clone(&self.name);
        let opts = SetOptions::new()
            .expire(self.expire)
            .tag_opt(self.tag.clone());
        let computing = f(&args);
        tokio::spawn(async move {
            let _running = running;
            let started = Instant::now();
            match computing.await {
                Ok(value) => {
                    let pair = (value, started.elapsed().as_secs_f64());
                    if let Err(e) = write(&store, &name, &args, pair, opts).await {
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
    }
}
