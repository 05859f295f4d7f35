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
//! The throttle key expires [`ThrottlePolicy::retention`] after its lockout
//! ends (the core's `throttle` module says why that retention never lets
//! waiting pay). A policy without a retention keeps the key until the
//! next success.

use std::time::Duration;

use tower_totp::clock::UnixTime;
use tower_totp::throttle::ThrottlePolicy;

use crate::codec::fixed20;

/// `delay_after` is constant beyond 63 doublings.
const MAX_RAMP: u32 = 64;

/// What the script stores as TTL when the key must not expire.
pub(crate) const PERSIST: &str = "persist";

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
    let keep = policy.retention();
    let step = |delay: Duration| Step {
        until: fixed20(now.saturating_add(delay).as_millis()),
        ttl: keep
            .and_then(|k| k.checked_add(delay))
            .filter(|t| *t <= ThrottlePolicy::MAX_RETENTION.saturating_mul(2))
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
    fn degenerate_policies_keep_the_counter_forever() {
        let tiny =
            ThrottlePolicy::new(3, Duration::from_micros(1), Duration::from_secs(1)).unwrap();
        assert!(
            ramp(UnixTime::EPOCH, &tiny)
                .iter()
                .all(|s| s.ttl == PERSIST)
        );
        let many = ThrottlePolicy::new(1_000_000, Duration::from_secs(1), Duration::from_secs(900))
            .unwrap();
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
