//! The clock hint count: the report's `clock_hints` are the accepted
//! logins, attempt by attempt in the trace, whose matched step the
//! library's rule answers with a hint; healthy phones get none by the
//! default rule, and many misleading ones by the every-step rule.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, missing_docs)]

use std::collections::BTreeSet;

use totp_sim::dist::Dist;
use totp_sim::driver::Outcome;
use totp_sim::run::{DriverKind, RunOptions, RunOutput, run};
use totp_sim::scenario::Scenario;
use tower_totp::http::ClockHintRule;

fn traced(s: &Scenario) -> RunOutput {
    let options = RunOptions {
        trace: true,
        driver: DriverKind::Engine,
        ..RunOptions::default()
    };
    run(&s.model().unwrap(), &options).unwrap()
}

/// Clocks spread over a minute either way, drifting.
fn skewed() -> Scenario {
    let mut s = Scenario::default();
    s.seed = 7;
    s.users = 60;
    s.days = 5;
    s.fleet.clock_offset_s = Dist::normal(0.0, 40.0);
    s.fleet.drift_s_per_day = Dist::normal(0.0, 4.0);
    s.fleet.logins_per_day = 3.0;
    s
}

#[test]
fn the_count_is_the_rule_applied_to_every_accepted_code() {
    for (fast, slow) in [(1, 2), (1, 1), (2, 3), (0, 0)] {
        let mut s = skewed();
        s.server.clock_hint_fast_steps = fast;
        s.server.clock_hint_slow_steps = slow;
        let out = traced(&s);
        let rule = ClockHintRule::new(fast, slow);
        let mut hints = 0;
        let mut users = BTreeSet::new();
        for a in &out.trace {
            if let Outcome::Accepted {
                step: Some(step), ..
            } = a.outcome
            {
                let offset = step as i64 - a.server_step as i64;
                if rule.hint(offset, 30).is_some() {
                    hints += 1;
                    users.insert(a.user);
                }
            }
        }
        assert_eq!(out.report.clock_hints, Some(hints), "rule {fast}/{slow}");
        assert_eq!(out.report.clock_hint_users, Some(users.len() as u64));
        if (fast, slow) == (0, 0) {
            assert_eq!(hints, 0);
        } else {
            assert!(hints > 0, "rule {fast}/{slow}: no hint at all");
        }
    }
}

/// Phones within half a second of true time: a code a step behind is the
/// typing time crossing a step's end, which the every-step rule reports as
/// a slow clock and the default rule does not.
#[test]
fn healthy_phones_are_not_told_a_step_behind_is_a_slow_clock() {
    let mut s = Scenario::default();
    s.users = 200;
    s.days = 5;
    let default = traced(&s).report;
    assert_eq!(default.clock_hints, Some(0));
    s.server.clock_hint_slow_steps = 1;
    let every = traced(&s).report;
    let misleading = every.clock_hints_on_time_phones.unwrap();
    assert!(
        misleading > every.logins / 20,
        "{misleading} of {}",
        every.logins
    );
    assert_eq!(every.clock_hints, Some(misleading));
}
