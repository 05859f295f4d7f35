//! The report's split of lockouts by cause, the phones hours out counted
//! apart, and the brute-forced accounts apart in the acceptance figures.
#![allow(clippy::unwrap_used)]

use totp_sim::run::{DriverKind, RunOptions, run};
use totp_sim::scenario::Scenario;
use totp_sim::stats::Report;

fn report(toml: &str) -> Report {
    let s = Scenario::from_toml_str(toml).unwrap();
    let options = RunOptions {
        driver: DriverKind::Engine,
        ..RunOptions::default()
    };
    run(&s.model().unwrap(), &options).unwrap().report
}

fn causes_add_up(r: &Report) {
    assert_eq!(
        r.lockouts_attacked + r.lockouts_own_typos + r.lockouts_drift,
        r.legit_lockouts,
        "{r:?}"
    );
    assert!(r.lockouts_hours_out <= r.lockouts_drift);
}

#[test]
fn typos_alone_lock_out_for_typos() {
    // Phones on time, every code mistyped, a throttle after one failure.
    let r = report(
        "users = 20\ndays = 2\n[server.throttle]\nfree_attempts = 1\nbase_delay_s = 600.0\n\
         [fleet]\ntypo_rate = 1.0\nclock_offset_s = { kind = \"fixed\", value = 0.0 }\n",
    );
    causes_add_up(&r);
    assert!(r.lockouts_own_typos > 0, "{r:?}");
    assert_eq!((r.lockouts_drift, r.lockouts_attacked), (0, 0));
    assert_eq!(r.clock_hours_out_logins, 0);
}

#[test]
fn phones_hours_out_are_counted_apart_and_lock_out_for_drift() {
    // Half the phones an hour ahead, no typos.
    let r = report(
        "users = 20\ndays = 2\n[server.throttle]\nfree_attempts = 1\nbase_delay_s = 600.0\n\
         [fleet]\ntypo_rate = 0.0\nclock_offset_s = { kind = \"mixture\", parts = [\n\
         { weight = 1.0, dist = { kind = \"fixed\", value = 0.0 } },\n\
         { weight = 1.0, dist = { kind = \"fixed\", value = 3600.0 } } ] }\n",
    );
    causes_add_up(&r);
    assert!(r.clock_hours_out_logins > 0);
    assert_eq!(r.clock_hours_out_accepted, 0);
    assert!(r.lockouts_hours_out > 0);
    assert_eq!(r.lockouts_hours_out, r.lockouts_drift, "only they drift");
    assert_eq!(r.lockouts_own_typos, 0);
    // Every refused correct code is theirs.
    assert!(r.false_reject_rate > 0.1);
    assert_eq!(r.false_reject_rate_not_hours_out, 0.0);
}

#[test]
fn a_guessers_victims_lock_out_for_the_attacker_and_are_shown_apart() {
    let r = report(
        "users = 20\ndays = 2\n[fleet]\ntypo_rate = 0.0\n[brute_force]\naccounts = 4\nsessions = 2\n",
    );
    causes_add_up(&r);
    assert!(r.lockouts_attacked > 0);
    assert_eq!(r.lockouts_own_typos + r.lockouts_drift, 0);
    let attacked: u64 = r.by_offset_attacked.iter().map(|b| b.logins).sum();
    let all: u64 = r.by_offset.iter().map(|b| b.logins).sum();
    assert!(attacked > 0 && attacked < all);
    // A fifth of the users, a fifth of the logins, give or take.
    assert!(
        attacked * 10 > all && attacked * 10 < all * 3,
        "{attacked} of {all}"
    );
    for b in &r.by_offset_attacked {
        let row = r
            .by_offset
            .iter()
            .find(|a| a.offset_s == b.offset_s)
            .unwrap();
        assert!(b.logins <= row.logins);
    }
}
