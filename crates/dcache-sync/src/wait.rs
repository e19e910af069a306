//! Owner ids, and waiting for a lock or a permit.
//!
//! A waiter alternates a cheap read ("does it look free?") with a pause, and attempts the
//! write only when the read says yes, so a waiting thread never queues for the store's write
//! lock in vain. The pause is a wait on a condition variable of a process-wide registry keyed
//! by the encoded key: a release in this process wakes it at once; a release in another
//! process is noticed by the next read, the pause growing from [`BACKOFF_MIN`] to
//! [`BACKOFF_MAX`] with jitter.

use std::cell::Cell;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};

/// The first pause of a waiter polling for a release by another process.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_micros(100);
/// The longest pause between two polls.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_millis(5);

// ----- owner ids -----

/// 128 random bits drawn once per process, as 32 hex digits: from the OS (`/dev/urandom`),
/// or else from two independently keyed std hashers (themselves seeded by the OS).
pub(crate) fn process_nonce() -> &'static str {
    static NONCE: OnceLock<String> = OnceLock::new();
    NONCE.get_or_init(|| {
        let mut bytes = [0u8; 16];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
        if from_os.is_err() {
            let hi = RandomState::new().hash_one((std::process::id(), 1u8));
            let lo = RandomState::new().hash_one((std::process::id(), 2u8, hi));
            bytes[..8].copy_from_slice(&hi.to_le_bytes());
            bytes[8..].copy_from_slice(&lo.to_le_bytes());
        }
        let hex = u128::from_be_bytes(bytes);
        format!("{hex:032x}")
    })
}

/// This thread's number: its index in this process (the process nonce makes it unique).
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// The calling thread's owner id, `"<pid>-<nonce>-<thread>"`, as [`RLock`](crate::RLock)
/// stores it: the pid, 128 random bits drawn once per process (32 hex digits) and the
/// thread's index in the process. Pids and thread ids repeat across machines and
/// containers; the random part does not, so two threads anywhere sharing a store (a Redis
/// server, say) never share an id. python's id is `'<pid>-<threading.get_ident()>'`: it has
/// no second `-`-separated hex part of 32 digits, so it never equals one of these either.
///
/// # Examples
///
/// ```
/// let me = dcache_sync::owner_id();
/// assert!(me.starts_with(&format!("{}-", std::process::id())));
/// assert_eq!(me.split('-').nth(1).map(str::len), Some(32));
/// let other = std::thread::spawn(dcache_sync::owner_id).join().unwrap();
/// assert_ne!(me, other);
/// ```
#[must_use]
pub fn owner_id() -> String {
    format!(
        "{}-{}-{}",
        std::process::id(),
        process_nonce(),
        thread_number()
    )
}

/// A token no other acquisition anywhere holds: `"<owner id>-<counter>"`.
pub(crate) fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", owner_id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// How a key is shown in errors.
pub(crate) fn describe<K: Debug + ?Sized>(key: &K) -> String {
    format!("{key:?}")
}

/// The registry id of a key: its pickle (the default disk's encoding), or its `Debug` text if
/// it has none. Two stores holding the same key share an id: their waiters wake each other,
/// which costs a read, never correctness.
pub(crate) fn registry_id<K: Serialize + Debug + ?Sized>(key: &K) -> Vec<u8> {
    if let Ok(mut bytes) =
        dcache_core::disk::pickle::to_vec(key, dcache_core::disk::pickle::HIGHEST_PROTOCOL)
    {
        bytes.insert(0, b'p');
        bytes
    } else {
        let mut bytes = b"d".to_vec();
        bytes.extend_from_slice(describe(key).as_bytes());
        bytes
    }
}

// ----- jittered backoff -----

/// A uniformly distributed number from a per-thread xorshift generator.
fn random_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(thread_number()) | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// Pauses between polls: `BACKOFF_MIN` doubling to `BACKOFF_MAX`, each drawn uniformly from
/// `[step / 2, step]` so that waiters of several processes do not poll in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff::with_max(BACKOFF_MAX)
    }

    /// Pauses growing to `max` instead of [`BACKOFF_MAX`] (at least [`BACKOFF_MIN`]).
    pub(crate) fn with_max(max: Duration) -> Self {
        Backoff {
            step: BACKOFF_MIN,
            max: max.max(BACKOFF_MIN),
        }
    }

    pub(crate) fn next_pause(&mut self) -> Duration {
        let half = self.step / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let pause = half + Duration::from_nanos(random_u64() % spread.saturating_add(1));
        self.step = (self.step * 2).min(self.max);
        pause
    }
}

// ----- in-process wake-ups -----

#[derive(Debug, Default)]
struct SlotState {
    /// Bumped by every release of a key with this id.
    generation: u64,
    /// Waiters registered on this slot; the slot leaves the registry at zero.
    waiters: usize,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<SlotState>,
    released: Condvar,
    /// Async waiters (the `future` module) wait on this instead of the condvar.
    #[cfg(feature = "tokio")]
    released_async: tokio::sync::Notify,
}

type Registry = Mutex<HashMap<Vec<u8>, Arc<Slot>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// A thread waiting on a key in this process; unregisters on drop.
#[derive(Debug)]
pub(crate) struct Waiter {
    id: Vec<u8>,
    slot: Arc<Slot>,
}

impl Waiter {
    pub(crate) fn register(id: Vec<u8>) -> Waiter {
        // Lock order: the registry, then a slot (everywhere).
        let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
        let slot = Arc::clone(map.entry(id.clone()).or_default());
        slot.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiters += 1;
        Waiter { id, slot }
    }

    /// The current release generation; read it before looking at the store.
    pub(crate) fn generation(&self) -> u64 {
        self.slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// A future completing at the next release of the key; it sees every release after this
    /// call, even before it is first polled.
    #[cfg(feature = "tokio")]
    pub(crate) fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.slot.released_async.notified()
    }

    /// Sleeps up to `pause`, or less if a release happened since `seen` was read.
    pub(crate) fn wait(&self, seen: u64, pause: Duration) {
        let state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(
            self.slot
                .released
                .wait_timeout_while(state, pause, |s| s.generation == seen)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = self
            .slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.waiters = state.waiters.saturating_sub(1);
        if state.waiters == 0 {
            map.remove(&self.id);
        }
    }
}

/// Wakes this process's waiters on `key` (after a release). Encodes the key only when some
/// key has waiters.
pub(crate) fn notify<K: Serialize + Debug + ?Sized>(key: &K) {
    if registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_empty()
    {
        return;
    }
    let id = registry_id(key);
    let slot = registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned();
    if let Some(slot) = slot {
        let mut state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.generation = state.generation.wrapping_add(1);
        drop(state);
        slot.released.notify_all();
        #[cfg(feature = "tokio")]
        slot.released_async.notify_waiters();
    }
}

/// Whether a key has waiters in this process (for tests).
#[cfg(test)]
pub(crate) fn is_registered(id: &[u8]) -> bool {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(id)
}

// ----- the acquire loop -----

/// How long an acquisition may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Patience {
    /// One look, at most one attempt, no waiting; store errors are returned.
    Once,
    /// Until this instant (then `Ok(None)`).
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// Runs an acquisition that must succeed: waiting forever (`timeout` `None`) or up to
/// `timeout`, after which it is [`Error::Timeout`] with the time waited.
pub(crate) fn required<T, K: Debug + ?Sized>(
    key: &K,
    timeout: Option<Duration>,
    acquire: impl FnOnce(Patience) -> Result<Option<T>>,
) -> Result<T> {
    let started = Instant::now();
    let patience = timeout
        .and_then(|t| started.checked_add(t))
        .map_or(Patience::Forever, Patience::Until);
    acquire(patience)?.ok_or_else(|| timeout_error(key, started))
}

/// Waits until `attempt` succeeds: `probe` (a read) says whether an attempt may succeed;
/// `attempt` (a write) tries. Returns `Ok(None)` when the patience runs out. While waiting, a
/// busy store (its own write-lock timeout) counts as "not yet", not as an error.
pub(crate) fn acquire<T>(
    id: impl FnOnce() -> Vec<u8>,
    patience: Patience,
    mut probe: impl FnMut() -> Result<bool>,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    if let Patience::Once = patience {
        return if probe()? { attempt() } else { Ok(None) };
    }
    // Registered before the first look, so a release after the look wakes the wait.
    let waiter = Waiter::register(id());
    let mut backoff = Backoff::new();
    loop {
        let seen = waiter.generation();
        if busy_as(probe(), false)?
            && let Some(won) = busy_as(attempt(), None)?
        {
            return Ok(Some(won));
        }
        let mut pause = backoff.next_pause();
        if let Patience::Until(deadline) = patience {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            pause = pause.min(deadline - now);
        }
        waiter.wait(seen, pause);
    }
}

fn busy_as<T>(result: Result<T>, instead: T) -> Result<T> {
    match result {
        Err(e) if e.is_store_busy() => Ok(instead),
        other => other,
    }
}

/// The error of an acquisition that ran out of patience.
pub(crate) fn timeout_error<K: Debug + ?Sized>(key: &K, started: Instant) -> Error {
    Error::Timeout {
        key: describe(key),
        waited: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_differ_per_thread_and_are_stable_within_one() {
        let me = owner_id();
        assert_eq!(me, owner_id());
        let parts: Vec<&str> = me.split('-').collect();
        assert_eq!(parts.len(), 3, "pid-nonce-thread: {me}");
        assert_eq!(parts[0], std::process::id().to_string());
        assert_eq!(parts[1].len(), 32, "{me}");
        assert!(
            u128::from_str_radix(parts[1], 16).is_ok_and(|n| n != 0),
            "{me}"
        );
        assert!(parts[2].parse::<u64>().is_ok(), "{me}");
        let others: Vec<String> = (0..8)
            .map(|_| std::thread::spawn(owner_id).join().expect("thread"))
            .collect();
        let mut all = others.clone();
        all.push(me);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 9, "{others:?}");
    }

    #[test]
    fn tokens_are_unique() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(&owner_id()));
    }

    #[test]
    fn backoff_grows_from_min_to_max_with_jitter() {
        let mut b = Backoff::new();
        let pauses: Vec<Duration> = (0..20).map(|_| b.next_pause()).collect();
        assert!(pauses[0] >= BACKOFF_MIN / 2 && pauses[0] <= BACKOFF_MIN);
        assert!(pauses.iter().all(|p| *p <= BACKOFF_MAX));
        assert!(pauses[19] >= BACKOFF_MAX / 2);
        let mut c = Backoff::new();
        let again: Vec<Duration> = (0..20).map(|_| c.next_pause()).collect();
        assert_ne!(pauses, again, "jitter");
    }

    #[test]
    fn a_notification_ends_a_wait_and_the_registry_empties() {
        let key = "test-notify";
        let id = registry_id(key);
        let waiter = Waiter::register(id.clone());
        let seen = waiter.generation();
        let notifier = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            notify(key);
        });
        let started = Instant::now();
        waiter.wait(seen, Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_ne!(waiter.generation(), seen);
        notifier.join().expect("notifier");
        let second = Waiter::register(id.clone());
        drop(waiter);
        assert!(is_registered(&id), "another waiter remains");
        drop(second);
        assert!(!is_registered(&id));
    }

    #[test]
    fn patience_once_looks_before_writing() -> Result<()> {
        let mut attempts = 0;
        let r: Option<()> = acquire(
            Vec::new,
            Patience::Once,
            || Ok(false),
            || {
                attempts += 1;
                Ok(Some(()))
            },
        )?;
        assert_eq!((r, attempts), (None, 0));
        Ok(())
    }

    #[test]
    fn a_deadline_in_the_past_still_tries_once() -> Result<()> {
        let r = acquire(
            || b"past".to_vec(),
            Patience::Until(Instant::now()),
            || Ok(true),
            || Ok(Some(7)),
        )?;
        assert_eq!(r, Some(7));
        let started = Instant::now();
        let r: Option<i32> = acquire(
            || b"past".to_vec(),
            Patience::Until(started + Duration::from_millis(30)),
            || Ok(true),
            || Ok(None),
        )?;
        assert_eq!(r, None);
        assert!(started.elapsed() >= Duration::from_millis(30));
        Ok(())
    }
}
