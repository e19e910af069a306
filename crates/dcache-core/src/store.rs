//! The storage trait the locks and recipes are written against.

use serde::Serialize;
use serde::de::DeserializeOwned;

use dcache_disk::DiskFormat;

use crate::cache::Cache;
use crate::error::Result;
use crate::options::{Entry, SetOptions};

/// What an [`Storage::update`] closure decides for the key.
#[derive(Debug, Clone, PartialEq)]
pub enum Update<V> {
    /// Store this value (with the update's expiry and tag).
    Set(V),
    /// Remove the key.
    Delete,
    /// Leave the key as it is.
    Keep,
}

/// The operations dcache's locks and recipes need from a store, implemented by
/// [`Cache`] and by `FanoutCache` (which routes each key to its shard).
///
/// Every operation concerns one key and is atomic. Implementing this for another backend
/// (a Redis client, say) makes `Lock`, `RLock`, `BoundedSemaphore`, `Averager`, `throttle`,
/// `barrier` and `memoize_stampede` work on it unchanged:
///
/// - `get_entry`, `add`, `set`, `delete` and `incr` behave as the [`Cache`] methods of the
///   same name: expired entries do not exist; `add` writes only if the key has no live entry.
/// - `update` is an atomic read-modify-write of one key. The closure gets the live value (or
///   `None`) and returns what to do and a result. It **may be called more than once** (an
///   optimistic backend re-runs it when the key changed underneath, as Redis' `WATCH`/`MULTI`
///   does), so it must not have side effects beyond computing its return value.
///
/// There is deliberately no multi-key transaction here: a sharded or remote store may not
/// offer one.
pub trait Storage: Clone + Send + Sync + 'static {
    /// The live value of `key` with its expiry time and tag.
    fn get_entry<V: DeserializeOwned>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Option<Entry<V>>>;

    /// Stores `value` only if `key` has no live entry; returns whether it did.
    fn add<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> Result<bool>;

    /// Stores `value`, replacing any entry.
    fn set<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> Result<()>;

    /// Removes the live entry; returns whether there was one.
    fn delete(&self, key: &(impl Serialize + ?Sized)) -> Result<bool>;

    /// Adds `delta` to an integer; a missing key starts at `default` (with `opts`' expiry and
    /// tag), or is [`Error::KeyNotFound`](crate::Error::KeyNotFound) when `default` is `None`.
    fn incr(
        &self,
        key: &(impl Serialize + ?Sized),
        delta: i64,
        default: Option<i64>,
        opts: SetOptions,
    ) -> Result<i64>;

    /// Atomically reads `key`, lets `f` decide, and applies the decision; returns `f`'s
    /// result. See the trait docs: `f` may run more than once.
    fn update<V, R, F>(&self, key: &(impl Serialize + ?Sized), opts: SetOptions, f: F) -> Result<R>
    where
        V: Serialize + DeserializeOwned,
        F: FnMut(Option<V>) -> (Update<V>, R);

    /// This store's clock (expiry decisions and recipes use it).
    fn now(&self) -> std::time::SystemTime;
}

impl<D: DiskFormat> Storage for Cache<D> {
    fn get_entry<V: DeserializeOwned>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Option<Entry<V>>> {
        Cache::get_entry(self, key)
    }

    fn add<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> Result<bool> {
        self.add_with(key, value, opts)
    }

    fn set<V: Serialize + ?Sized>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        opts: SetOptions,
    ) -> Result<()> {
        self.set_with(key, value, opts)
    }

    fn delete(&self, key: &(impl Serialize + ?Sized)) -> Result<bool> {
        Cache::delete(self, key)
    }

    fn incr(
        &self,
        key: &(impl Serialize + ?Sized),
        delta: i64,
        default: Option<i64>,
        opts: SetOptions,
    ) -> Result<i64> {
        self.incr_with(key, delta, default, opts)
    }

    fn update<V, R, F>(
        &self,
        key: &(impl Serialize + ?Sized),
        opts: SetOptions,
        mut f: F,
    ) -> Result<R>
    where
        V: Serialize + DeserializeOwned,
        F: FnMut(Option<V>) -> (Update<V>, R),
    {
        // One write transaction: the closure runs exactly once here.
        self.transact(|c| {
            let current = c.get::<V>(key)?;
            let (update, result) = f(current);
            match update {
                Update::Set(v) => c.set_with(key, &v, opts)?,
                Update::Delete => {
                    c.delete(key)?;
                }
                Update::Keep => {}
            }
            Ok(result)
        })
    }

    fn now(&self) -> std::time::SystemTime {
        self.clock().now()
    }
}
