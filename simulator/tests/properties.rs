//! Invariants over random fleets and settings, through the whole HTTP
//! stack in process (`run`'s default driver: sessions, `TotpLayer`, the
//! `/2fa` endpoints, a password login).
//!
//! Case counts are small: every case runs a whole simulation in a debug
//! build. Failures are kept in `properties.proptest-regressions`.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use totp_sim::analytic::{guess_success_bound, poisson_tail};
use totp_sim::dist::Dist;
use totp_sim::driver::Outcome;
use totp_sim::run::{RunOptions, RunOutput, run};
use totp_sim::scenario::{BruteForce, Replay, Scenario};

fn traced(s: &Scenario) -> RunOutput {
    run(
        &s.model().unwrap(),
        &RunOptions {
            trace: true,
            ..RunOptions::default()
        },
    )
    .unwrap()
}

/// Users whose logins followed one another, each finished before the next
/// began, and who never typed a code that also matched a later step of the
/// window (one chance in 10^6 per step: the engine takes the later step,
/// which moves the learned offset). Overlapping logins of one user (two
/// tabs) interleave their retries, and each wrong code replaces the other's
/// resynchronisation candidate: a real but different situation.
fn orderly_users(out: &RunOutput) -> BTreeSet<u32> {
    let mut spans: BTreeMap<(u32, u32), (u64, u64)> = BTreeMap::new();
    let mut unruly = BTreeSet::new();
    for r in &out.trace {
        let span = spans.entry((r.user, r.login)).or_insert((r.at_ms, r.at_ms));
        span.0 = span.0.min(r.at_ms);
        span.1 = span.1.max(r.at_ms);
        if matches!(r.outcome, Outcome::Accepted { step: Some(step), .. } if step != r.phone_step) {
            unruly.insert(r.user);
        }
    }
    let mut last_end: BTreeMap<u32, u64> = BTreeMap::new();
    for ((user, _), (start, end)) in spans {
        if last_end.get(&user).is_some_and(|e| start <= *e) {
            unruly.insert(user);
        }
        last_end.insert(user, end);
    }
    out.trace
        .iter()
        .map(|r| r.user)
        .filter(|u| !unruly.contains(u))
        .collect()
}

/// A random fleet under random settings, with a replay attacker on every
/// user and sometimes a guesser on a few.
fn hostile_world() -> impl Strategy<Value = Scenario> {
    (
        (
            any::<u64>(),
            3u32..20,
            1u32..4,
            0u32..3,
            0u32..3,
            any::<bool>(),
        ),
        (
            0.0..40.0f64,
            0.0..10.0f64,
            0.0..0.3f64,
            1.0..6.0f64,
            1u32..5,
        ),
        (
            0.0..20.0f64,
            0.0..30.0f64,
            0.2..1.0f64,
            any::<bool>(),
            1.0..15.0f64,
        ),
    )
        .prop_map(
            |(
                (seed, users, days, behind, ahead, tracking),
                (spread, drift, typo, per_day, attempts),
                (replay_min, replay_span, observe, guessers, delay_median),
            )| {
                let mut s = Scenario::default();
                s.seed = seed;
                s.users = users;
                s.days = days;
                s.server.behind = behind;
                s.server.ahead = ahead;
                s.server.max_drift = behind.max(ahead).max(4);
                s.server.drift_tracking = tracking;
                s.fleet.clock_offset_s = Dist::normal(0.0, spread);
                s.fleet.drift_s_per_day = Dist::normal(0.0, drift);
                s.fleet.typo_rate = typo;
                s.fleet.logins_per_day = per_day;
                s.fleet.max_attempts = attempts;
                s.fleet.reaction_delay_s = Dist::LogNormal {
                    median: delay_median,
                    sigma: 0.5,
                };
                s.replay = Some(Replay {
                    victims: users,
                    first_victim: 0,
                    observe_rate: observe,
                    delay_s: Dist::uniform(replay_min, replay_min + replay_span),
                });
                if guessers {
                    s.brute_force = Some(BruteForce {
                        accounts: 2,
                        sessions: 2,
                        rate_per_s: 1.0,
                        duration_days: Some(0.2),
                        ..BruteForce::default()
                    });
                }
                s
            },
        )
}

/// Users with a constant clock offset (each their own) and a fixed delay,
/// both chosen so that the step difference stays within `reach` steps
/// either way; the pause and delay together stay under half a step, so
/// that retries read consecutive codes.
fn steady_fleet(tracking: bool) -> impl Strategy<Value = Scenario> {
    (
        (any::<u64>(), 4u32..14, 4u32..7, 1u32..3, 1u32..3, 0u32..9),
        (0.0..13.0f64, 1.0..3.0f64, 5u32..7),
    )
        .prop_map(
            move |((seed, users, days, behind, ahead, extra), (delay, per_day, attempts))| {
                let mut s = Scenario::default();
                s.seed = seed;
                s.users = users;
                s.days = days;
                let period = f64::from(s.server.period_s);
                s.server.behind = behind;
                s.server.ahead = ahead;
                s.server.max_drift = behind.max(ahead) + 1 + extra;
                s.server.drift_tracking = tracking;
                // These phones jump to their offset right after enrolling:
                // `max_drift` alone decides here, and the library's rate
                // rule (`Window::allows_offset_change`) has a property of
                // its own below.
                s.server.max_drift_rate = 1_000_000;
                // x = (offset - delay) / period; the difference is floor(x)
                // or floor(x) + 1, which must stay within the window (no
                // tracking) or the maximum drift (tracking).
                let (lo, hi) = if tracking {
                    let max = f64::from(s.server.max_drift);
                    (-max, max - 1.0)
                } else {
                    (-f64::from(behind), f64::from(ahead) - 1.0)
                };
                let margin = 0.01;
                s.fleet.clock_offset_s = Dist::uniform(
                    (lo + margin) * period + delay,
                    (hi - margin) * period + delay,
                );
                s.fleet.drift_s_per_day = Dist::fixed(0.0);
                s.fleet.reaction_delay_s = Dist::fixed(delay);
                s.fleet.retry_pause_s = Dist::fixed(2.0);
                s.fleet.typo_rate = 0.0;
                s.fleet.logins_per_day = per_day;
                s.fleet.max_attempts = attempts;
                s.fleet.wait_for_next_code = true;
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A step is accepted once: replays never get in, and no legitimate
    /// attempt is accepted for a step at or before the last accepted one.
    #[test]
    fn no_replayed_code_is_ever_accepted(s in hostile_world()) {
        let out = traced(&s);
        prop_assert_eq!(out.report.replays_accepted, 0);
        if out.stats.eventual > 0 {
            let observe = s.replay.as_ref().unwrap().observe_rate;
            prop_assert!(out.report.replays_attempted > 0 || observe < 1.0);
        }
        for r in &out.trace {
            if let Outcome::Accepted { step: Some(step), .. } = r.outcome {
                prop_assert!(r.last_step_before.is_none_or(|last| step > last), "{:?}", r);
            }
        }
    }

    /// A correctly typed, unused code whose step lies inside the window
    /// around the learned offset is accepted, unless the account is
    /// throttled: on the first try and on every retry.
    #[test]
    fn a_code_inside_the_window_is_accepted_unless_throttled(s in hostile_world()) {
        let out = traced(&s);
        let (behind, ahead) = (i128::from(s.server.behind), i128::from(s.server.ahead));
        for r in &out.trace {
            let diff = i128::from(r.phone_step) - i128::from(r.server_step) - i128::from(r.learned_before);
            let fresh = r.last_step_before.is_none_or(|last| r.phone_step > last);
            if !r.typo && fresh && (-behind..=ahead).contains(&diff) {
                prop_assert!(
                    matches!(r.outcome, Outcome::Accepted { .. } | Outcome::Throttled { .. }),
                    "{:?}", r
                );
            }
        }
    }

    /// With drift tracking, a phone with a constant offset within the
    /// maximum drift is accepted on the first try from its third login on
    /// (the first may be spent resynchronising), and stays so. Checked for
    /// the users of [`orderly_users`].
    #[test]
    fn drift_tracking_settles_within_two_logins(s in steady_fleet(true)) {
        let out = traced(&s);
        prop_assert!(out.stats.logins > 0);
        let orderly = orderly_users(&out);
        for r in out.trace.iter().filter(|r| r.attempt == 1 && r.login >= 3 && orderly.contains(&r.user)) {
            let fresh = r.last_step_before.is_none_or(|last| r.phone_step > last);
            if fresh {
                prop_assert!(r.outcome.is_accepted(), "{:?}", r);
            }
        }
        for r in out.trace.iter().filter(|r| orderly.contains(&r.user)) {
            let throttled = matches!(r.outcome, Outcome::Throttled { .. });
            prop_assert!(!throttled, "{:?}", r);
        }
    }

    /// Users who never mistype, with clocks the server can reach (inside
    /// the window, or within the maximum drift when it tracks drift), are
    /// never throttled, under any throttle that allows the few failures a
    /// resynchronisation takes. Checked for the users of [`orderly_users`].
    #[test]
    fn users_who_never_mistype_are_never_locked_out(
        s in any::<bool>().prop_flat_map(steady_fleet),
        free in 5u32..9,
        base in 1.0..10.0f64,
        max in 60.0..900.0f64,
    ) {
        let mut s = s;
        s.server.throttle.free_attempts = free;
        s.server.throttle.base_delay_s = base;
        s.server.throttle.max_delay_s = max;
        let out = traced(&s);
        prop_assert!(out.stats.logins > 0);
        let orderly = orderly_users(&out);
        let throttled = out
            .trace
            .iter()
            .filter(|r| orderly.contains(&r.user) && matches!(r.outcome, Outcome::Throttled { .. }))
            .count();
        prop_assert_eq!(throttled, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Under the library's rate rule (the default `max_drift_rate`, one
    /// step of offset change per 100 steps since the last accepted code),
    /// the same phones are accepted on the first try from the third login
    /// that starts once the rule allows their whole offset (`max_drift + 1`
    /// steps of change, so `(max_drift + 1) × 100` steps after day 0; the
    /// users enrolled before it). The throttle is out of the way: it is not
    /// what this is about.
    #[test]
    fn drift_tracking_settles_once_the_rate_allows_the_offset(s in steady_fleet(true)) {
        let mut s = s;
        s.server.max_drift_rate = tower_totp::verify::DEFAULT_MAX_DRIFT_RATE;
        s.server.throttle.free_attempts = 100_000;
        let out = traced(&s);
        prop_assert!(out.stats.logins > 0);
        let per_step = u64::from(1_000_000 / tower_totp::verify::DEFAULT_MAX_DRIFT_RATE);
        let allowed_from = s.start_unix * 1000
            + (u64::from(s.server.max_drift) + 1) * per_step * u64::from(s.server.period_s) * 1000;
        let orderly = orderly_users(&out);
        let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
        for r in out.trace.iter().filter(|r| r.attempt == 1 && orderly.contains(&r.user)) {
            if r.at_ms < allowed_from {
                continue;
            }
            let n = seen.entry(r.user).or_insert(0);
            *n += 1;
            let fresh = r.last_step_before.is_none_or(|last| r.phone_step > last);
            if *n >= 3 && fresh {
                prop_assert!(r.outcome.is_accepted(), "{:?}", r);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Guessers against idle accounts: no account gets more guesses checked
    /// than `ThrottlePolicy::max_attempts_within` the campaign, however many
    /// parallel sessions, and the number of accounts guessed is no surprise
    /// under the analytic bound (Poisson tail above one in a million).
    #[test]
    fn brute_force_stays_within_the_analytic_bound(
        seed in any::<u64>(),
        accounts in 1u32..6,
        sessions in 1u32..5,
        rate in 0.5..20.0f64,
        hours in 1.0..6.0f64,
        (behind, ahead) in (0u32..3, 0u32..3),
        (free, base, max) in (0u32..6, 0.5..5.0f64, 60.0..900.0f64),
    ) {
        let mut s = Scenario::default();
        s.seed = seed;
        s.users = accounts;
        s.days = 1;
        s.server.behind = behind;
        s.server.ahead = ahead;
        s.server.throttle.free_attempts = free;
        s.server.throttle.base_delay_s = base;
        s.server.throttle.max_delay_s = max;
        s.fleet.logins_per_day = 0.0;
        s.brute_force = Some(BruteForce {
            accounts,
            sessions,
            rate_per_s: rate,
            start_day: 0.0,
            duration_days: Some(hours / 24.0),
            stop_on_success: true,
            ..BruteForce::default()
        });
        let model = s.model().unwrap();
        let out = run(&model, &RunOptions::default()).unwrap();
        let b = model.brute_force.as_ref().unwrap();
        let span = Duration::from_millis(b.end_ms - b.start_ms);
        let cap = model.config.throttle().max_attempts_within(span);
        prop_assert_eq!(out.stats.attacked.len() as u32, accounts);
        for a in &out.stats.attacked {
            prop_assert!(a.guesses <= cap, "{} guesses, bound {}", a.guesses, cap);
            prop_assert!(a.guesses > 0);
        }
        let bound = guess_success_bound(
            &model.config.throttle(),
            span,
            model.config.window().width(),
            model.params().digits(),
        );
        let won = out.stats.attacked.iter().filter(|a| a.success_day.is_some()).count() as u64;
        let surprise = poisson_tail(bound * f64::from(accounts), won);
        prop_assert!(surprise > 1e-6, "{} of {} accounts guessed, bound {} each", won, accounts, bound);
        let per_account: BTreeMap<u32, u64> = out.stats.attacked.iter().map(|a| (a.user, a.guesses)).collect();
        prop_assert_eq!(per_account.values().sum::<u64>(), out.report.guesses);
    }
}
