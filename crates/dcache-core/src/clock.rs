//! Time, injectable so expiry can be tested without sleeping.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time for expiry, store and access times.
///
/// python-diskcache stores times as `f64` Unix seconds; every process sharing a cache should
/// see roughly the same clock. Tests inject a [`ManualClock`].
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for tests of expiry and eviction.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use dcache_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_005));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Default for ManualClock {
    /// A clock stopped at the current system time.
    fn default() -> Self {
        ManualClock::new(SystemTime::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Seconds since the Unix epoch (negative before it), as python-diskcache stores times and
/// python's `time.time()` returns them.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// assert_eq!(dcache_core::unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1.5);
/// assert_eq!(dcache_core::unix_seconds(UNIX_EPOCH - Duration::from_secs(2)), -2.0);
/// ```
#[must_use]
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The latest expire time stored: 9999-12-31T23:59:59Z, the last second python's `datetime`
/// can show. A longer time to live (up to `Duration::MAX`) is clamped to it, so a far-future
/// expiry reads back as a time instead of overflowing `SystemTime`.
pub const MAX_EXPIRE_TIME: f64 = 253_402_300_799.0;

/// The expire time of an entry stored at `now` (Unix seconds) with time to live `ttl`.
pub(crate) fn expire_at(now: f64, ttl: Duration) -> f64 {
    (now + ttl.as_secs_f64()).min(MAX_EXPIRE_TIME)
}

/// A stored Unix time back to `SystemTime`; `None` when the stored value is not a time
/// (NaN, infinite, or out of range), which only a damaged or foreign row holds.
pub(crate) fn from_unix(secs: f64) -> Option<SystemTime> {
    if secs >= 0.0 {
        UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)
    } else {
        UNIX_EPOCH.checked_sub(Duration::try_from_secs_f64(-secs).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(from_unix(unix_seconds(t)), Some(t));
        assert_eq!(
            from_unix(-1.5),
            UNIX_EPOCH.checked_sub(Duration::from_millis(1500))
        );
        assert_eq!(from_unix(f64::NAN), None);
        assert_eq!(from_unix(f64::INFINITY), None);
        assert_eq!(from_unix(1e300), None);
    }
}
