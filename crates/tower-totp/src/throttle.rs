//! Throttling guesses: failures count per account, across all sessions and
//! addresses, with delays that double up to a cap.
//!
//! Every attempt is charged *before* it is checked, and a success refunds
//! by clearing the state. Charging first is what makes the throttle hold
//! against parallel guessing: of many guesses sent at the moment a lockout
//! ends, the store lets one through and locks the rest out, because
//! [`ThrottleState::begin`] runs as one atomic store operation.
//!
//! Lockouts are temporary: the longest is [`ThrottlePolicy::max_delay`], so
//! an attacker can slow a user down but never lock them out for good.
//!
//! # How long the attempts counter is kept
//!
//! A store may forget a user's throttle state [`ThrottlePolicy::retention`]
//! after its lockout ends (Redis lets the key expire, SQLite and memory
//! prune it on request). Forgetting the counter gives a guesser a fresh
//! set of free attempts and short delays, so the retention must be long
//! enough that waiting for it never pays. A guesser who makes `k`
//! attempts, waits for the state to be forgotten and starts over makes `k`
//! attempts per `T_k + retention`, where `T_k` is the sum of the first `k`
//! delays; one who never pauses settles at one attempt per `max_delay`.
//! Waiting never pays when, for every `k`, `k * max_delay <= T_k +
//! retention`, that is when the retention is at least the sum over all
//! attempts of `max_delay - delay_after(n)`: the free attempts count
//! `max_delay` each, the doubling delays what they fall short of the cap.
//! The state is kept for that sum or for `2 * max_delay`, whichever is
//! longer. For the default policy (3 free, 1 s doubling to 15 min) that is
//! 10,677 s, just under 3 hours: the bound of `docs/security.md` (2,892
//! guesses in 30 days) still holds, and a user who mistyped a few codes
//! starts clean the next morning.
//!
//! A policy whose sum exceeds [`ThrottlePolicy::MAX_RETENTION`] (or never
//! ends, with a base delay under a millisecond) keeps the state until the
//! next success.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::config_error::ConfigError;

/// How fast the delays grow.
///
/// Deserialising goes through [`ThrottlePolicy::new`], so a configuration
/// file cannot hold a policy the constructor refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ThrottleFields")]
pub struct ThrottlePolicy {
    free_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

/// The serialised form of [`ThrottlePolicy`], read through
/// [`ThrottlePolicy::new`].
#[derive(Deserialize)]
struct ThrottleFields {
    free_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl TryFrom<ThrottleFields> for ThrottlePolicy {
    type Error = ConfigError;

    fn try_from(f: ThrottleFields) -> Result<Self, ConfigError> {
        ThrottlePolicy::new(f.free_attempts, f.base_delay, f.max_delay)
    }
}

impl Default for ThrottlePolicy {
    /// 3 free attempts, then 1 s doubling up to 15 minutes: an attacker
    /// guessing without pause for 30 days gets at most 2,892 guesses, a
    /// success chance under 0.87% with the default window (see
    /// `docs/security.md`).
    fn default() -> Self {
        Self {
            free_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

impl ThrottlePolicy {
    /// The longest a store keeps throttle state after a lockout ends; a
    /// policy that would need longer keeps it until the next success.
    pub const MAX_RETENTION: Duration = Duration::from_secs(366 * 24 * 3600);

    /// A policy with `free_attempts` failures before any delay, then
    /// `base_delay` doubling up to `max_delay`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Throttle`] if `base_delay` is zero or longer than
    /// `max_delay`.
    pub fn new(
        free_attempts: u32,
        base_delay: Duration,
        max_delay: Duration,
    ) -> Result<Self, ConfigError> {
        if base_delay.is_zero() || base_delay > max_delay {
            return Err(ConfigError::Throttle);
        }
        Ok(Self {
            free_attempts,
            base_delay,
            max_delay,
        })
    }

    /// Failures allowed before the first delay.
    pub fn free_attempts(&self) -> u32 {
        self.free_attempts
    }

    /// The first delay.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The longest lockout.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The lockout after the `attempts`-th unrefunded attempt.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let Some(over) = attempts.checked_sub(self.free_attempts) else {
            return Duration::ZERO;
        };
        if over == 0 {
            return Duration::ZERO;
        }
        let doublings = (over - 1).min(63);
        let factor = 1u64 << doublings;
        let millis = u64::try_from(self.base_delay.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Duration::from_millis(millis).min(self.max_delay)
    }

    /// How many attempts an attacker who never pauses gets within `span`:
    /// the bound `docs/security.md` derives, computed. Attempt `n + 1`
    /// comes `delay_after(n)` after attempt `n`.
    pub fn max_attempts_within(&self, span: Duration) -> u64 {
        if span.is_zero() {
            return 0;
        }
        if self.free_attempts == u32::MAX {
            // Attempt counts saturate at u32::MAX, so no delay ever starts.
            return u64::MAX;
        }
        // The free attempts all come at once, without delay.
        let mut attempts = u64::from(self.free_attempts);
        let mut at = Duration::ZERO; // when the next attempt can start
        while at < span {
            attempts += 1;
            let delay = self.delay_after(u32::try_from(attempts).unwrap_or(u32::MAX));
            if delay == self.max_delay {
                // Steady state: one more attempt every `max_delay` until `span`.
                let rest = (span - at).as_millis().div_ceil(delay.as_millis().max(1));
                return attempts + u64::try_from(rest).unwrap_or(u64::MAX) - 1;
            }
            at += delay;
        }
        attempts
    }

    /// How long a store must keep a user's throttle state after its lockout
    /// ends so that waiting for it to be forgotten never pays (see the
    /// module docs); `None` for "until the next success".
    pub fn retention(&self) -> Option<Duration> {
        // `delay_after` is constant beyond 63 doublings.
        const MAX_RAMP: u32 = 64;
        let max = self.max_delay;
        let mut total = max.checked_mul(self.free_attempts)?;
        let mut capped = false;
        for j in 1..=MAX_RAMP {
            let Some(n) = self.free_attempts.checked_add(j) else {
                capped = true;
                break;
            };
            let delay = self.delay_after(n);
            if delay >= max {
                capped = true;
                break;
            }
            total = total.checked_add(max - delay)?;
        }
        if !capped {
            // The delay never reaches the cap: every later attempt comes cheap.
            return None;
        }
        let keep = total.max(max.checked_mul(2)?);
        (keep <= Self::MAX_RETENTION).then_some(keep)
    }
}

/// A user's throttle state, as a store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThrottleState {
    /// Attempts charged since the last success.
    pub attempts: u32,
    /// No attempt is let through before this moment.
    pub locked_until: UnixTime,
}

/// The answer to "may this user try now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead; the attempt is charged.
    Allowed,
    /// Locked out for this long.
    Locked {
        /// Time until the lockout ends.
        retry_after: Duration,
    },
}

impl ThrottleState {
    /// Charge an attempt at `now` if not locked. Stores run this as one
    /// atomic operation on the user's state.
    pub fn begin(&mut self, now: UnixTime, policy: &ThrottlePolicy) -> Attempt {
        if now < self.locked_until {
            return Attempt::Locked {
                retry_after: self.locked_until.duration_since(now),
            };
        }
        self.attempts = self.attempts.saturating_add(1);
        self.locked_until = now.saturating_add(policy.delay_after(self.attempts));
        Attempt::Allowed
    }

    /// Whether a store may forget this state at `now`: its lockout ended
    /// more than the policy's [`retention`](ThrottlePolicy::retention) ago,
    /// so a fresh state decides every later attempt no more leniently than
    /// waiting would have. Never for a policy without a retention.
    pub fn is_forgettable(&self, now: UnixTime, policy: &ThrottlePolicy) -> bool {
        policy
            .retention()
            .is_some_and(|keep| self.locked_until.saturating_add(keep) < now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_after_the_free_attempts_up_to_the_cap() {
        let p = ThrottlePolicy::default();
        let delays: Vec<u64> = (1..=16).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(
            delays,
            [
                0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900
            ]
        );
        assert_eq!(p.delay_after(u32::MAX), p.max_delay());
    }

    #[test]
    fn a_locked_state_refuses_and_says_for_how_long() {
        let p = ThrottlePolicy::default();
        let mut s = ThrottleState::default();
        let t = UnixTime::from_secs(1000);
        for _ in 0..4 {
            assert_eq!(s.begin(t, &p), Attempt::Allowed);
        }
        assert_eq!(
            s.begin(t, &p),
            Attempt::Locked {
                retry_after: Duration::from_secs(1)
            }
        );
        assert_eq!(s.attempts, 4, "a refused attempt is not charged");
        assert_eq!(
            s.begin(t.saturating_add(Duration::from_secs(1)), &p),
            Attempt::Allowed
        );
    }

    #[test]
    fn attempt_bound_matches_a_simulated_attacker() {
        let p = ThrottlePolicy::default();
        let span = Duration::from_secs(30 * 24 * 3600);
        // An attacker who tries again the moment each lockout ends.
        let mut s = ThrottleState::default();
        let mut now = UnixTime::from_secs(1_700_000_000);
        let end = now.saturating_add(span);
        let mut tries = 0u64;
        while now < end {
            match s.begin(now, &p) {
                Attempt::Allowed => tries += 1,
                Attempt::Locked { retry_after } => now = now.saturating_add(retry_after),
            }
        }
        assert_eq!(tries, p.max_attempts_within(span));
        assert_eq!(tries, 2892);
        // With 3 acceptable codes in 10^6 per guess, the chance stays under 1%.
        let p_success = 1.0 - (1.0 - 3e-6f64).powf(tries as f64);
        assert!(p_success < 0.01, "{p_success}");
    }

    #[test]
    fn the_bound_is_quick_even_with_huge_free_allowances() {
        let day = Duration::from_secs(86_400);
        let unthrottled =
            ThrottlePolicy::new(u32::MAX, Duration::from_secs(1), Duration::from_secs(2)).unwrap();
        assert_eq!(unthrottled.max_attempts_within(day), u64::MAX);
        let p = ThrottlePolicy::new(
            u32::MAX - 10,
            Duration::from_secs(1),
            Duration::from_secs(2),
        )
        .unwrap();
        // All free attempts at once, then 1 s, then one every 2 s.
        assert_eq!(
            p.max_attempts_within(day),
            u64::from(u32::MAX - 10) + 1 + 43_200
        );
        assert_eq!(p.max_attempts_within(Duration::ZERO), 0);
    }

    #[test]
    fn default_policy_keeps_the_counter_about_three_hours() {
        assert_eq!(
            ThrottlePolicy::default().retention(),
            Some(Duration::from_secs(10_677))
        );
    }

    /// A guesser who waits for the state to be forgotten before each burst
    /// never beats one who keeps going, whatever the burst length.
    #[test]
    fn waiting_for_the_retention_never_pays() {
        let policies = [
            ThrottlePolicy::default(),
            ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(10)).unwrap(),
            ThrottlePolicy::new(0, Duration::from_secs(5), Duration::from_secs(5)).unwrap(),
            ThrottlePolicy::new(10, Duration::from_secs(1), Duration::from_secs(3600)).unwrap(),
        ];
        for p in policies {
            let keep = p.retention().unwrap();
            let mut t_k = Duration::ZERO;
            for k in 1..200u32 {
                t_k += p.delay_after(k);
                // k attempts per (T_k + keep) is at most one per max_delay.
                assert!(
                    p.max_delay() * k <= t_k + keep,
                    "{p:?}: bursts of {k} beat the steady rate"
                );
            }
        }
    }

    #[test]
    fn degenerate_policies_keep_the_counter_forever() {
        let tiny =
            ThrottlePolicy::new(3, Duration::from_micros(1), Duration::from_secs(1)).unwrap();
        assert_eq!(tiny.retention(), None);
        let many = ThrottlePolicy::new(1_000_000, Duration::from_secs(1), Duration::from_secs(900))
            .unwrap();
        assert_eq!(many.retention(), None);
        let old = ThrottleState::default();
        assert!(!old.is_forgettable(UnixTime::from_millis(u64::MAX), &many));
    }

    #[test]
    fn state_is_forgettable_only_after_lockout_and_retention() {
        let p = ThrottlePolicy::default();
        let keep = p.retention().unwrap();
        let mut s = ThrottleState::default();
        let t = UnixTime::from_secs(1_000_000);
        while s.begin(t, &p) == Attempt::Allowed {}
        let end = s.locked_until;
        assert!(!s.is_forgettable(t, &p), "locked");
        assert!(!s.is_forgettable(end, &p), "just unlocked");
        assert!(!s.is_forgettable(end.saturating_add(keep), &p));
        let later = end.saturating_add(keep + Duration::from_millis(1));
        assert!(s.is_forgettable(later, &p));
    }

    /// Deserialising goes through [`ThrottlePolicy::new`]: what it refuses
    /// is refused with its message, and a valid policy round-trips.
    #[test]
    fn serde_goes_through_the_checks() {
        let p =
            ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(60)).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<ThrottlePolicy>(&json).unwrap(), p);
        for bad in [
            r#"{"free_attempts":3,"base_delay":{"secs":0,"nanos":0},"max_delay":{"secs":60,"nanos":0}}"#,
            r#"{"free_attempts":3,"base_delay":{"secs":61,"nanos":0},"max_delay":{"secs":60,"nanos":0}}"#,
        ] {
            let err = serde_json::from_str::<ThrottlePolicy>(bad).unwrap_err();
            assert!(
                err.to_string().contains(&ConfigError::Throttle.to_string()),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(ThrottlePolicy::new(3, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(ThrottlePolicy::new(3, Duration::from_secs(2), Duration::from_secs(1)).is_err());
    }
}
