//! Time, read through one trait so tests and the simulator control it.
//!
//! No other code in this crate reads the system time: everything asks a
//! [`Clock`]. [`ManualClock`] is cheap to clone, its clones share one time,
//! and it may be set backwards or far ahead.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment as milliseconds since the Unix epoch.
///
/// Milliseconds in a `u64` reach far beyond any date a login happens on, and
/// all arithmetic here saturates, so times near the epoch and in the distant
/// future are both safe.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: Self = Self(0);

    /// A time from whole seconds since the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// A time from milliseconds since the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_millis(d)))
    }

    /// This time minus `d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_millis(d)))
    }

    /// How long after `earlier` this time is; zero if it is not later.
    pub fn duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The time in RFC 3339, UTC, whole seconds: `2026-12-04T21:56:06Z`.
    ///
    /// ```
    /// use tower_totp::clock::UnixTime;
    ///
    /// assert_eq!(UnixTime::EPOCH.to_rfc3339(), "1970-01-01T00:00:00Z");
    /// assert_eq!(UnixTime::from_secs(1_700_000_000).to_rfc3339(), "2023-11-14T22:13:20Z");
    /// assert_eq!(UnixTime::from_secs(951_782_400).to_rfc3339(), "2000-02-29T00:00:00Z");
    /// ```
    pub fn to_rfc3339(self) -> String {
        let secs = self.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days at or after the epoch): no calendar crate
/// for one formatter.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock set before 1970 reads as the epoch rather than panicking.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixTime(duration_millis(since))
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use tower_totp::clock::{Clock, ManualClock, UnixTime};
///
/// let clock = ManualClock::new(UnixTime::from_secs(59));
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(shared.now(), UnixTime::from_secs(60));
/// clock.set(UnixTime::EPOCH); // backwards is allowed
/// assert_eq!(shared.now(), UnixTime::EPOCH);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: UnixTime) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Set the time, forwards or backwards.
    pub fn set(&self, to: UnixTime) {
        self.millis.store(to.0, Ordering::SeqCst);
    }

    /// Move the time forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let add = duration_millis(d);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(add))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        assert_eq!(
            UnixTime::EPOCH.saturating_sub(Duration::from_secs(5)),
            UnixTime::EPOCH
        );
        let far = UnixTime::from_millis(u64::MAX - 1);
        assert_eq!(far.saturating_add(Duration::MAX).as_millis(), u64::MAX);
        assert_eq!(UnixTime::from_secs(u64::MAX).as_millis(), u64::MAX);
        assert_eq!(UnixTime::EPOCH.duration_since(far), Duration::ZERO);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(UnixTime::from_secs(100));
        let b = a.clone();
        a.advance(Duration::from_millis(1500));
        assert_eq!(b.now(), UnixTime::from_millis(101_500));
        b.set(UnixTime::from_secs(7));
        assert_eq!(a.now().as_secs(), 7);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().as_secs() > 1_577_836_800);
    }
}
