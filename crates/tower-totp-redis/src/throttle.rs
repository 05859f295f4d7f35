//! The throttle's arguments for its script, and how long its key is kept.
//!
//! [`ThrottleState::begin`](tower_totp::throttle::ThrottleState::begin)
//! needs `now + delay_after(attempts)`, with `attempts` read inside the
//! script. Rather than do 64-bit time arithmetic in Lua (doubles), the
//! caller computes every `locked_until` the script could need: one for the
//! free attempts, then one per attempt count up to where the delay stops
//! growing (at most 64 of them, since `delay_after` stops doubling after 63
//! doublings). The script picks one by index; indices are small integers,
//! exact in Lua.
//!
//! # How long the attempts counter is kept
//!
//! The throttle key expires `retention` after its lockout ends. Forgetting
//! the counter gives a guesser a fresh set of free attempts and short
//! delays, so `retention` must be long enough that waiting for the key to
//! expire never pays. A guesser who makes `k` attempts, waits for the key
//! to expire and starts over makes `k` attempts per `T_k + retention`, where
//! `T_k` is the sum of the first `k` delays; one who never pauses settles at
//! one attempt per `max_delay`. Waiting never pays when, for every `k`,
//! `k * max_delay <= T_k + retention`, that is when `retention` is at least
//! the sum over all attempts of `max_delay - delay_after(n)`: the free
//! attempts count `max_delay` each, the doubling delays what they fall
//! short of the cap. We keep the key for that sum or for `2 * max_delay`,
//! whichever is longer. For the default policy (3 free, 1 s doubling to
//! 15 min) that is 10,677 s, just under 3 hours: the bound of
//! `docs/security.md` (2,892 guesses in 30 days) still holds, and a user
//! who mistyped a few codes starts clean the next morning.
//!
//! A policy whose sum exceeds [`MAX_RETENTION`] (or never ends, with a
//! base delay under a millisecond) keeps the key without expiry, as the
//! memory store does.

use std::time::Duration;

use tower_totp::clock::UnixTime;
use tower_totp::throttle::ThrottlePolicy;

use crate::codec::fixed20;

/// The longest the attempts counter is kept after a lockout ends; a policy
/// that would need longer keeps it until the next success.
pub(crate) const MAX_RETENTION: Duration = Duration::from_secs(366 * 24 * 3600);

/// `delay_after` is constant beyond 63 doublings.
const MAX_RAMP: u32 = 64;

/// What the script stores as TTL when the key must not expire.
pub(crate) const PERSIST: &str = "persist";

/// How long to keep a user's throttle state after its lockout ends; `None`
/// for "until the next success".
pub(crate) fn retention(policy: &ThrottlePolicy) -> Option<Duration> {
    let max = policy.max_delay();
    let mut total = max.checked_mul(policy.free_attempts())?;
    let mut capped = false;
    for j in 1..=MAX_RAMP {
        let Some(n) = policy.free_attempts().checked_add(j) else {
            capped = true;
            break;
        };
        let delay = policy.delay_after(n);
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
    (keep <= MAX_RETENTION).then_some(keep)
}

/// One possible outcome of a charged attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// `now + delay`, as 20 digits.
    pub(crate) until: String,
    /// The key's time to live in milliseconds, or [`PERSIST`].
    pub(crate) ttl: String,
}

/// The outcomes for attempt counts `<= free`, `free + 1`, ..., up to where
/// the delay stops changing; the script uses the last for all larger counts.
pub(crate) fn ramp(now: UnixTime, policy: &ThrottlePolicy) -> Vec<Step> {
    let keep = retention(policy);
    let step = |delay: Duration| Step {
        until: fixed20(now.saturating_add(delay).as_millis()),
        ttl: keep
            .and_then(|k| k.checked_add(delay))
            .filter(|t| *t <= MAX_RETENTION.saturating_mul(2))
            .map(|t| t.as_millis().max(1).to_string())
            .unwrap_or_else(|| PERSIST.to_owned()),
    };
    let mut steps = vec![step(Duration::ZERO)];
    for j in 1..=MAX_RAMP {
        let Some(n) = policy.free_attempts().checked_add(j) else {
            break;
        };
        let delay = policy.delay_after(n);
        steps.push(step(delay));
        if delay >= policy.max_delay() || n == u32::MAX {
            break;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn default_policy_keeps_the_counter_about_three_hours() {
        assert_eq!(
            retention(&ThrottlePolicy::default()),
            Some(Duration::from_secs(10_677))
        );
    }

    /// A guesser who waits for the key to expire before each burst never
    /// beats one who keeps going, whatever the burst length.
    #[test]
    fn waiting_for_expiry_never_pays() {
        let policies = [
            ThrottlePolicy::default(),
            ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(10)).unwrap(),
            ThrottlePolicy::new(0, Duration::from_secs(5), Duration::from_secs(5)).unwrap(),
            ThrottlePolicy::new(10, Duration::from_secs(1), Duration::from_secs(3600)).unwrap(),
        ];
        for p in policies {
            let keep = retention(&p).unwrap();
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
        assert_eq!(retention(&tiny), None);
        let many = ThrottlePolicy::new(1_000_000, Duration::from_secs(1), Duration::from_secs(900))
            .unwrap();
        assert_eq!(retention(&many), None);
        assert!(
            ramp(UnixTime::EPOCH, &many)
                .iter()
                .all(|s| s.ttl == PERSIST)
        );
    }

    #[test]
    fn ramp_matches_delay_after() {
        let p = ThrottlePolicy::default();
        let now = UnixTime::from_secs(1_000);
        let steps = ramp(now, &p);
        // Free attempts, then 1, 2, 4, ..., 512 s, then the 900 s cap.
        assert_eq!(steps.len(), 1 + 11);
        assert_eq!(steps[0].until, fixed20(now.as_millis()));
        for (j, s) in steps.iter().enumerate().skip(1) {
            let n = p.free_attempts() + u32::try_from(j).unwrap();
            let until = now.saturating_add(p.delay_after(n));
            assert_eq!(s.until, fixed20(until.as_millis()));
        }
        assert_eq!(steps[11].ttl, (900_000 + 10_677_000).to_string());
    }

    #[test]
    fn ramp_saturates_far_in_the_future() {
        let steps = ramp(
            UnixTime::from_millis(u64::MAX - 5),
            &ThrottlePolicy::default(),
        );
        assert_eq!(steps.last().unwrap().until, fixed20(u64::MAX));
    }
}
