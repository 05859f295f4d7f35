//! The simulator against the closed form of docs/simulator.md: the share of
//! first attempts accepted for a fixed clock offset and reaction delay,
//! with logins at uniformly random moments. It checks the simulator's
//! arithmetic, not the server, so it runs on the engine driver
//! (`DriverKind::Engine`, about four times faster than the HTTP stack, with
//! the same results: `tests/drivers.rs`).
//!
//! Drift tracking is off, so the window stays centred on the server's step
//! (learned offset 0) and every login is an independent draw. First
//! attempts refused as replays (a second login inside the same 30 s as the
//! previous one) are left out: the formula is about the window alone.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, missing_docs)]

use totp_sim::analytic::first_try_accept_probability;
use totp_sim::dist::Dist;
use totp_sim::driver::{Outcome, Refusal};
use totp_sim::run::{DriverKind, RunOptions, run};
use totp_sim::scenario::Scenario;

/// (offset s, delay s, period s, behind, ahead)
const CASES: [(f64, f64, u32, u32, u32); 8] = [
    (0.0, 6.0, 30, 0, 0),
    (10.0, 0.0, 30, 0, 0),
    (-45.0, 5.0, 30, 1, 1),
    (40.0, 2.0, 30, 0, 1),
    (75.0, 0.0, 30, 2, 2),
    (-20.0, 10.0, 30, 1, 0),
    (100.0, 3.0, 30, 1, 1),
    (20.0, 5.0, 60, 0, 0),
];

#[test]
fn first_try_acceptance_matches_the_formula_within_three_standard_errors() {
    for (i, (offset, delay, period, behind, ahead)) in CASES.into_iter().enumerate() {
        let mut s = Scenario::default();
        s.seed = 100 + i as u64;
        s.users = 80;
        s.days = 6;
        s.server.period_s = period;
        s.server.behind = behind;
        s.server.ahead = ahead;
        s.server.drift_tracking = false;
        s.server.throttle.free_attempts = u32::MAX;
        s.fleet.clock_offset_s = Dist::fixed(offset);
        s.fleet.reaction_delay_s = Dist::fixed(delay);
        s.fleet.typo_rate = 0.0;
        s.fleet.max_attempts = 1;
        s.fleet.logins_per_day = 5.0;
        let out = run(
            &s.model().unwrap(),
            &RunOptions {
                trace: true,
                driver: DriverKind::Engine,
                ..RunOptions::default()
            },
        )
        .unwrap();
        let firsts: Vec<_> = out.trace.iter().filter(|r| r.attempt == 1).collect();
        let replays = firsts
            .iter()
            .filter(|r| r.outcome == Outcome::Rejected(Refusal::Replayed))
            .count();
        let decided: Vec<_> = firsts
            .iter()
            .filter(|r| r.outcome != Outcome::Rejected(Refusal::Replayed))
            .collect();
        let n = decided.len() as f64;
        assert!(n > 2000.0, "{n}");
        assert!((replays as f64) < n * 0.01, "{replays} replays");
        let accepted = decided.iter().filter(|r| r.outcome.is_accepted()).count() as f64;
        let observed = accepted / n;
        let expected = first_try_accept_probability(offset, delay, period, behind, ahead, 0);
        let se = (expected * (1.0 - expected) / n).sqrt();
        assert!(
            (observed - expected).abs() <= 3.0 * se,
            "offset {offset} delay {delay} period {period} window -{behind}/+{ahead}: \
             observed {observed:.4}, formula {expected:.4}, 3 SE {:.4}",
            3.0 * se
        );
    }
}
