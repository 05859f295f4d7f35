//! The drivers against each other: the in-process HTTP stack gives the run
//! the engine gives, attempt by attempt; and `--target` mode runs
//! a tiny fleet over real HTTP against the demo started in process on
//! 127.0.0.1:0.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, missing_docs)]

mod demo_target;

use std::time::Duration;

use totp_sim::dist::Dist;
use totp_sim::driver::{Account, Driver, Outcome, Refusal};
use totp_sim::http_driver::HttpDriver;
use totp_sim::run::{DriverKind, RunOptions, RunOutput, run, run_with};
use totp_sim::scenario::{BruteForce, Replay, Scenario};
use totp_sim::stats::Report;
use totp_sim::target::{TargetError, TargetOptions, demo_accounts, run_target};
use tower_totp::UserId;

fn hostile() -> Scenario {
    let mut s = Scenario::default();
    s.seed = 42;
    s.users = 40;
    s.days = 4;
    s.fleet.clock_offset_s = Dist::normal(0.0, 25.0);
    s.fleet.drift_s_per_day = Dist::normal(0.0, 5.0);
    s.fleet.typo_rate = 0.1;
    s.fleet.logins_per_day = 3.0;
    s.replay = Some(Replay {
        victims: 10,
        ..Replay::default()
    });
    s.brute_force = Some(BruteForce {
        accounts: 2,
        sessions: 2,
        rate_per_s: 1.0,
        duration_days: Some(0.005),
        ..BruteForce::default()
    });
    // No throttle: over HTTP, `Retry-After` has whole seconds (rounded
    // up), which moves a throttled user's next attempt by under a second.
    // (Not u32::MAX: `ThrottlePolicy::max_attempts_within`, behind the
    // report's guess bound, steps through the free attempts one by one.)
    s.server.throttle.free_attempts = 100_000;
    s
}

fn traced(s: &Scenario, driver: DriverKind, threads: usize) -> RunOutput {
    let options = RunOptions {
        trace: true,
        driver,
        threads,
        ..RunOptions::default()
    };
    run(&s.model().unwrap(), &options).unwrap()
}

/// The report without what depends on the machine.
fn figures(r: &Report) -> Report {
    Report {
        wall_s: 0.0,
        logins_per_s: 0.0,
        threads: 0,
        peak_memory_bytes: None,
        ..r.clone()
    }
}

#[test]
fn the_http_stack_and_the_engine_give_the_same_run() {
    for tracking in [true, false] {
        let mut s = hostile();
        s.server.drift_tracking = tracking;
        let engine = traced(&s, DriverKind::Engine, 1);
        let http = traced(&s, DriverKind::Http, 2);
        assert!(engine.report.logins > 300, "{}", engine.report.logins);
        assert!(engine.report.guesses > 1000 && engine.report.replays_attempted > 0);
        assert!(engine.report.first_try_accept_rate < 1.0);
        assert_eq!(
            figures(&engine.report),
            figures(&http.report),
            "tracking {tracking}"
        );
        assert_eq!(engine.trace.len(), http.trace.len());
        for (e, h) in engine.trace.iter().zip(&http.trace) {
            assert_eq!(e, h, "tracking {tracking}");
        }
    }
}

#[test]
fn the_http_driver_maps_the_answers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let model = Scenario::default().model().unwrap();
        let clock = tower_totp::clock::ManualClock::new(tower_totp::clock::UnixTime::from_secs(
            1_700_000_010,
        ));
        let driver = HttpDriver::simulated(model.config.clone(), clock, true, 3)
            .unwrap()
            .confirm_access(true);
        let me = Account::simulated(4);
        // Not enrolled: the login asks to enrol, no code is checked.
        assert_eq!(
            driver.login(&me, "123456").await.unwrap(),
            Outcome::Rejected(Refusal::NotEnrolled)
        );
        // A wrong password is no answer of the contract.
        let wrong = Account {
            id: UserId::new("u4"),
            password: "pw-5".into(),
        };
        assert!(driver.login(&wrong, "123456").await.is_err());
        // Confirm without enroll.
        assert!(driver.confirm(&me, "123456").await.is_err());
        // A wrong first code, then the throttle after the free failures.
        driver.enroll(&me).await.unwrap();
        let mut saw_throttle = false;
        for _ in 0..20 {
            driver.enroll(&me).await.unwrap();
            match driver.confirm(&me, "000000").await.unwrap() {
                Outcome::Rejected(Refusal::Invalid) => {}
                Outcome::Throttled { retry_after } => {
                    assert!(retry_after > Duration::ZERO);
                    saw_throttle = true;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(saw_throttle);
    });
}

#[test]
fn run_with_takes_an_http_driver_over_the_engines_own_secrets() {
    let mut s = Scenario::default();
    s.users = 10;
    s.days = 2;
    s.fleet.typo_rate = 0.0;
    let model = s.model().unwrap();
    let out = run_with(&model, &RunOptions::default(), |clock| {
        let tfa = tower_totp::TwoFactor::builder(model.config.clone())
            .clock(clock)
            .build()?;
        Ok(HttpDriver::from_engine(tfa).confirm_access(true))
    })
    .unwrap();
    assert_eq!(out.report.enrolled, 10);
    assert_eq!(out.report.logins, 40);
    assert_eq!(out.report.eventual_accept_rate, 1.0);
}

#[test]
fn target_mode_refuses_remote_hosts_and_too_few_accounts() {
    let model = Scenario::default().model().unwrap();
    let target = |url: &str, accounts| TargetOptions {
        url: url.into(),
        accounts,
        max_duration: Duration::from_secs(1),
        max_requests: None,
        allow_remote: false,
    };
    let err = run_target(
        &model,
        &RunOptions::default(),
        &target("http://192.0.2.1:3000", demo_accounts("demo")),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            totp_sim::run::SimError::Target(TargetError::Remote { .. })
        ),
        "{err}"
    );
    let err = run_target(
        &model,
        &RunOptions::default(),
        &target("http://127.0.0.1:9", demo_accounts("demo")),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            totp_sim::run::SimError::Target(TargetError::TooFewAccounts { .. })
        ),
        "{err}"
    );
}

/// The demo on a loopback port, its TOTP engine on the system clock; the
/// three seeded users, with "TFA for External Users" on so that `portal`
/// is asked for codes too; a fleet of three for three seconds.
#[test]
fn target_mode_loads_the_demo_over_real_http() {
    let (_rt, addr) = demo_target::start();

    let mut s = Scenario::default();
    s.users = 3;
    s.days = 1;
    // Enrolled with the server's code (step N), phones a step ahead: the
    // first login shows step N + 1, inside the window; later logins in the
    // same 30 s repeat it and must be refused as replays.
    s.fleet.enrollment = totp_sim::scenario::Enrollment::Synced;
    s.fleet.clock_offset_s = Dist::fixed(30.0);
    s.fleet.reaction_delay_s = Dist::fixed(0.2);
    s.fleet.retry_pause_s = Dist::fixed(0.2);
    s.fleet.typo_rate = 0.0;
    // About two logins a second each.
    s.fleet.logins_per_day = 2.0 * 86_400.0;
    let accounts = demo_target::accounts();
    let target = TargetOptions {
        url: format!("http://{addr}"),
        accounts,
        max_duration: Duration::from_secs(3),
        max_requests: Some(2_000),
        allow_remote: false,
    };
    let started = std::time::Instant::now();
    let options = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let out = run_target(&s.model().unwrap(), &options, &target).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "{took:?}");
    let r = &out.report;
    assert_eq!(r.enrolled, 3, "{r:?}");
    assert!(r.attempts >= 6, "{r:?}");
    assert!(r.drift_mae_s.is_none());
    // Every user's first code is accepted; no step is accepted twice.
    let mut accepted = std::collections::BTreeSet::new();
    for t in &out.trace {
        if t.login == 1 && t.attempt == 1 {
            assert!(t.outcome.is_accepted(), "{t:?}");
        }
        if t.outcome.is_accepted() {
            assert!(accepted.insert((t.user, t.phone_step)), "{t:?}");
        } else {
            assert!(
                matches!(
                    t.outcome,
                    Outcome::Rejected(Refusal::Replayed) | Outcome::Throttled { .. }
                ),
                "{t:?}"
            );
        }
    }
    assert!(accepted.len() >= 3, "{r:?}");
    // A second run against the same (now enrolled) accounts says why it
    // cannot enrol them.
    let err = run_target(&s.model().unwrap(), &RunOptions::default(), &target).unwrap_err();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    assert!(text.contains("fresh database"), "{text}");
}
