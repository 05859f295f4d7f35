//! Closed forms the simulator is checked against; `docs/simulator.md`
//! derives them.

use std::time::Duration;

use tower_totp::throttle::ThrottlePolicy;

/// The chance that a login is accepted on its first attempt, for a phone
/// `offset_s` ahead of the true time, a reaction delay of `delay_s`, steps
/// of `period_s` seconds, a window of `behind`/`ahead` steps around the
/// learned offset `learned` (steps), and a login at a uniformly random
/// moment.
///
/// With `x = (offset − delay) / period`, `m = ⌊x⌋` and `f = x − m`, the step
/// difference is `m` with probability `1 − f` and `m + 1` with probability
/// `f`; each counts when it lies in `[learned − behind, learned + ahead]`.
///
/// ```
/// use totp_sim::analytic::first_try_accept_probability;
///
/// // In sync, 6 s to type: always inside a ±1 window.
/// assert_eq!(first_try_accept_probability(0.0, 6.0, 30, 1, 1, 0), 1.0);
/// // 45 s behind with no window at all: never.
/// assert_eq!(first_try_accept_probability(-45.0, 0.0, 30, 0, 0, 0), 0.0);
/// // 15 s ahead, no delay, only the exact step: half the time.
/// assert!((first_try_accept_probability(15.0, 0.0, 30, 0, 0, 0) - 0.5).abs() < 1e-12);
/// ```
pub fn first_try_accept_probability(
    offset_s: f64,
    delay_s: f64,
    period_s: u32,
    behind: u32,
    ahead: u32,
    learned: i64,
) -> f64 {
    let x = (offset_s - delay_s) / f64::from(period_s);
    let m = x.floor();
    let f = x - m;
    let lo = learned as f64 - f64::from(behind);
    let hi = learned as f64 + f64::from(ahead);
    let inside = |k: f64| if (lo..=hi).contains(&k) { 1.0 } else { 0.0 };
    (1.0 - f) * inside(m) + f * inside(m + 1.0)
}

/// The bound on one account's compromise by guessing for `span`:
/// at most [`ThrottlePolicy::max_attempts_within`] guesses get checked, and
/// each matches one of at most `width` codes out of `10^digits`; capped at 1.
///
/// ```
/// use std::time::Duration;
/// use tower_totp::throttle::ThrottlePolicy;
/// use totp_sim::analytic::guess_success_bound;
///
/// let thirty_days = Duration::from_secs(30 * 86_400);
/// let b = guess_success_bound(&ThrottlePolicy::default(), thirty_days, 3, 6);
/// assert!((b - 2892.0 * 3.0 / 1e6).abs() < 1e-12);
/// ```
pub fn guess_success_bound(policy: &ThrottlePolicy, span: Duration, width: u32, digits: u8) -> f64 {
    let attempts = policy.max_attempts_within(span) as f64;
    (attempts * f64::from(width) / 10f64.powi(i32::from(digits))).min(1.0)
}

/// `P(X >= k)` for `X` Poisson with mean `lambda`: how surprising `k`
/// successes are when `lambda` are expected at most.
pub fn poisson_tail(lambda: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    // 1 − P(X <= k − 1), summing terms in log space.
    let mut term = (-lambda).exp();
    let mut below = term;
    for i in 1..k {
        term *= lambda / i as f64;
        below += term;
    }
    (1.0 - below).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_is_linear_between_steps() {
        // Ahead by 40 s, window only the exact step and one ahead: the
        // difference is 1 (2/3 of the time) or 2 (1/3).
        let p = first_try_accept_probability(40.0, 0.0, 30, 0, 1, 0);
        assert!((p - 2.0 / 3.0).abs() < 1e-12, "{p}");
        // A learned offset of 1 recentres the window.
        assert_eq!(first_try_accept_probability(40.0, 10.0, 30, 0, 0, 1), 1.0);
    }

    #[test]
    fn poisson_tail_is_sane() {
        assert_eq!(poisson_tail(0.5, 0), 1.0);
        assert!((poisson_tail(0.5, 1) - (1.0 - (-0.5f64).exp())).abs() < 1e-12);
        assert!(poisson_tail(0.01, 5) < 1e-10);
    }
}
