//! Memoization: cache a function's results by its arguments.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser::{SerializeTuple, Serializer};

use crate::error::Error;
use crate::options::SetOptions;
use crate::store::Storage;
use crate::tag::Tag;

/// The cache key of one memoized call: the tuple `(name, args)`.
#[derive(Debug, Clone, Copy)]
pub struct MemoKey<'a, A: ?Sized> {
    /// The memoized function's name.
    pub name: &'a str,
    /// Its arguments.
    pub args: &'a A,
}

impl<A: Serialize + ?Sized> Serialize for MemoKey<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(self.name)?;
        t.serialize_element(self.args)?;
        t.end()
    }
}

/// A call being computed; later callers of the same key wait for it.
#[derive(Default)]
struct Flight {
    done: Mutex<bool>,
    finished: Condvar,
}

/// A memoizer: results of a function, cached by argument tuple (python's `memoize`).
///
/// Create it once (with [`Cache::memoize`](crate::Cache::memoize) or [`Memoized::new`]) and
/// share it (it is cheap to clone): concurrent callers of the same cold key in this process
/// then share one computation instead of each computing it. An `Err` result is not cached.
///
/// Keys are the tuple `(name, args)`, pickled by the default disk. Python's `typed` and
/// `ignore` options have no counterpart: Rust arguments are typed (an `i64` 1 and an `f64`
/// 1.0 are different keys), and arguments left out of the tuple are ignored.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let cache = dcache_core::Cache::temp()?;
/// let square = cache.memoize("square").expire(Duration::from_secs(60));
/// let mut calls = 0;
/// for _ in 0..3 {
///     let v: i64 = square.call(&(12,), || -> dcache_core::Result<i64> {
///         calls += 1;
///         Ok(144)
///     })?;
///     assert_eq!(v, 144);
/// }
/// assert_eq!(calls, 1);
/// cache.delete(square.key(&(12,)))?; // invalidate one result
/// # Ok::<(), dcache_core::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Memoized<S: Storage> {
    store: S,
    name: Arc<str>,
    expire: Option<Duration>,
    tag: Option<Tag>,
    in_flight: Arc<Mutex<HashMap<Vec<u8>, Arc<Flight>>>>,
}

impl<S: Storage> std::fmt::Debug for Memoized<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memoized")
            .field("name", &self.name)
            .field("expire", &self.expire)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Memoized<S> {
    /// A memoizer storing results in `store` under keys `(name, args)`.
    pub fn new(store: S, name: impl Into<String>) -> Self {
        Memoized {
            store,
            name: Arc::from(name.into()),
            expire: None,
            tag: None,
            in_flight: Arc::default(),
        }
    }

    /// Results expire `ttl` after they are computed (default: never). A zero `ttl` caches
    /// nothing, as in python.
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.expire = Some(ttl);
        self
    }

    /// Results are stored with this tag, so `evict(tag)` drops them all.
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The memoizer's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cache key of the call with `args`, for invalidation (`cache.delete(m.key(&args))`).
    pub fn key<'a, A: Serialize + ?Sized>(&'a self, args: &'a A) -> MemoKey<'a, A> {
        MemoKey {
            name: &self.name,
            args,
        }
    }

    /// Returns the cached result for `args`, or computes it with `f`, caches it (if `f`
    /// succeeds) and returns it.
    ///
    /// # Errors
    ///
    /// `f`'s error, or a cache error converted into `E`.
    pub fn call<A, V, E, F>(&self, args: &A, f: F) -> std::result::Result<V, E>
    where
        A: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> std::result::Result<V, E>,
    {
        let key = self.key(args);
        let mut f = Some(f);
        loop {
            if let Some(entry) = self.store.get_entry::<V>(&key)? {
                return Ok(entry.value);
            }
            let id = dcache_disk::pickle::to_vec(&key, dcache_disk::pickle::HIGHEST_PROTOCOL)
                .map_err(Error::from)?;
            let (flight, leader) = {
                let mut map = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(flight) = map.get(&id) {
                    (Arc::clone(flight), false)
                } else {
                    let flight = Arc::new(Flight::default());
                    map.insert(id.clone(), Arc::clone(&flight));
                    (flight, true)
                }
            };
            if !leader {
                let mut done = flight.done.lock().unwrap_or_else(PoisonError::into_inner);
                while !*done {
                    done = flight
                        .finished
                        .wait(done)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                // The leader cached the value (read it) or failed (try to lead).
                continue;
            }
            // Leader: compute, cache, then release the waiters whatever happens.
            let _release = Release {
                map: &self.in_flight,
                id,
                flight: &flight,
            };
            let compute = f.take().ok_or_else(|| {
                Error::from(dcache_disk::Error::Serde(
                    "memoized function called twice".into(),
                ))
            })?;
            let value = compute()?;
            if self.expire.is_none_or(|d| !d.is_zero()) {
                let opts = SetOptions::new()
                    .expire_opt(self.expire)
                    .tag_opt(self.tag.clone());
                self.store.set(&key, &value, opts)?;
            }
            return Ok(value);
        }
    }
}

/// Wakes the followers of a flight when the leader finishes (or unwinds).
struct Release<'a> {
    map: &'a Mutex<HashMap<Vec<u8>, Arc<Flight>>>,
    id: Vec<u8>,
    flight: &'a Flight,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        *self
            .flight
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.flight.finished.notify_all();
    }
}

impl<D: dcache_disk::DiskFormat> crate::Cache<D> {
    /// A memoizer named `name` storing results in this cache (python's `@cache.memoize`).
    pub fn memoize(&self, name: impl Into<String>) -> Memoized<Self> {
        Memoized::new(self.clone(), name)
    }
}
