//! `totp-sim recommend`: on a small scenario it finds a setting that a
//! direct run confirms meets both bounds, and rejects one that a run shows
//! breaks a bound; its snippet compiles; its files are written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use totp_sim::recommend::{RecommendSpec, Setting, recommend, rust_snippet, summary, write};
use totp_sim::run::{DriverKind, RunOptions, run};
use totp_sim::scenario::{Scenario, ThrottleSettings};
use totp_sim::stats::Report;

/// 40 users for 3 days, a fifth of them 40 s ahead (a narrow window
/// without tracking refuses them), no typos, a guesser on 5 accounts.
fn small() -> Scenario {
    Scenario::from_toml_str(
        r#"
        name = "small"
        users = 40
        days = 3
        [fleet]
        typo_rate = 0.0
        clock_offset_s = { kind = "mixture", parts = [
            { weight = 0.8, dist = { kind = "normal", mean = 0.0, sd = 0.5 } },
            { weight = 0.2, dist = { kind = "normal", mean = 40.0, sd = 2.0 } },
        ] }
        [brute_force]
        accounts = 5
        sessions = 2
        "#,
    )
    .unwrap()
}

const MAX_FR: f64 = 0.005;
const MAX_ODDS: f64 = 0.001;

fn spec() -> RecommendSpec {
    RecommendSpec {
        max_false_reject: MAX_FR,
        max_attacker_odds: MAX_ODDS,
        budget: Duration::from_secs(120),
        threads: 1,
    }
}

/// A direct `run` of `base` with `setting`: the fleet alone (the users'
/// false rejects) and with its guesser (the report's bound).
fn direct(base: &Scenario, setting: &Setting) -> (Report, Report) {
    let mut s = base.clone();
    s.server.behind = setting.behind;
    s.server.ahead = setting.ahead;
    s.server.drift_tracking = setting.drift_tracking;
    s.server.max_drift = setting.max_drift.max(setting.behind).max(setting.ahead);
    s.server.throttle = ThrottleSettings {
        free_attempts: setting.free_attempts,
        base_delay_s: setting.base_delay_s,
        max_delay_s: setting.max_delay_s,
    };
    let options = RunOptions {
        driver: DriverKind::Engine,
        ..RunOptions::default()
    };
    let with_attacker = run(&s.model().unwrap(), &options).unwrap().report;
    s.brute_force = None;
    let fleet = run(&s.model().unwrap(), &options).unwrap().report;
    (fleet, with_attacker)
}

fn meets(fleet: &Report, with_attacker: &Report) -> bool {
    fleet.false_reject_rate_not_hours_out <= MAX_FR
        && with_attacker.guess_success_bound.unwrap() <= MAX_ODDS
}

#[test]
fn recommend_finds_a_setting_a_run_confirms_and_rejects_one_a_run_breaks() {
    let base = small();
    let rec = recommend(&base, &spec(), |_| {}).unwrap();
    assert_eq!(rec.users, 40, "{:?}", rec.scaled);
    assert_eq!(rec.tried, rec.grid_size, "the budget cut the sweep");
    let best = rec.recommended().expect("some setting meets both bounds");
    let check = best
        .attacker_check
        .as_ref()
        .expect("the best one is checked");
    assert!(check.agrees && check.guesses > 0, "{check:?}");

    let (fleet, attacked) = direct(&base, &best.setting);
    assert!(meets(&fleet, &attacked), "{:?}", best.setting);
    assert_eq!(
        fleet.false_reject_rate_not_hours_out,
        best.false_reject_rate
    );
    assert_eq!(attacked.guess_success_bound, Some(best.attacker_odds));

    // Every setting refused for a bound breaks it in a direct run too: one
    // for false rejects and one for the odds.
    let refused: Vec<_> = rec.trials.iter().filter(|t| !t.meets).collect();
    let by_fr = refused
        .iter()
        .find(|t| t.false_reject_rate > MAX_FR)
        .expect("a setting refused for false rejects");
    let by_odds = refused
        .iter()
        .find(|t| t.attacker_odds > MAX_ODDS && t.false_reject_rate <= MAX_FR)
        .expect("a setting refused for the odds");
    for t in [by_fr, by_odds] {
        let (fleet, attacked) = direct(&base, &t.setting);
        assert!(!meets(&fleet, &attacked), "{:?}", t.setting);
    }
    let table = summary(&rec, 5);
    assert!(table.contains("settings meet both bounds"), "{table}");
}

#[test]
fn with_bounds_nothing_meets_it_says_so_and_shows_the_nearest() {
    let mut base = small();
    base.users = 20;
    base.days = 1;
    let spec = RecommendSpec {
        max_attacker_odds: 1e-9,
        ..spec()
    };
    let rec = recommend(&base, &spec, |_| {}).unwrap();
    assert!(!rec.any_meets && rec.recommended().is_none());
    let table = summary(&rec, 3);
    assert!(table.contains("no setting meets both bounds"), "{table}");
    assert!(table.contains("the nearest"), "{table}");
    // The nearest is the one overshooting least: the odds bound dominates,
    // so it has the smallest bound of all.
    let least = rec
        .trials
        .iter()
        .map(|t| t.attacker_odds)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(rec.trials[0].attacker_odds, least);

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &rec, &base).unwrap();
    for f in [
        "recommend.json",
        "pareto.svg",
        "recommended.rs",
        "index.html",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let svg = std::fs::read_to_string(dir.path().join("pareto.svg")).unwrap();
    assert!(svg.contains("<text"), "labels are text");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("recommend.json")).unwrap()).unwrap();
    assert_eq!(json["trials"].as_array().unwrap().len(), rec.tried);
    let snippet = std::fs::read_to_string(dir.path().join("recommended.rs")).unwrap();
    assert!(snippet.contains("NO setting"), "{snippet}");
}

/// The snippet's shape, as `rust_snippet` writes it for one setting.
#[allow(unreachable_pub)]
mod snippet {
    include!("snippet/recommended.rs");
}

#[test]
fn the_rust_snippet_compiles_and_builds_the_setting() {
    let setting = Setting {
        behind: 2,
        ahead: 1,
        drift_tracking: true,
        max_drift: 60,
        free_attempts: 5,
        base_delay_s: 2.0,
        max_delay_s: 3600.0,
    };
    // The generator writes exactly the file compiled above, so every
    // snippet it writes has this shape, with other numbers.
    let text = rust_snippet(&setting, 10_000, "a test");
    assert_eq!(text, include_str!("snippet/recommended.rs"));
    let config = snippet::recommended_totp_config("example").unwrap();
    let (w, t) = (config.window(), config.throttle());
    assert_eq!((w.behind(), w.ahead(), w.max_drift()), (2, 1, 60));
    assert_eq!(w.max_drift_rate(), 10_000);
    assert_eq!(t.free_attempts(), 5);
    assert_eq!(t.base_delay(), Duration::from_secs(2));
    assert_eq!(t.max_delay(), Duration::from_secs(3600));
}

#[test]
fn a_spent_budget_stops_the_sweep_and_scales_the_fleet_down() {
    let mut base = small();
    base.users = 150;
    base.days = 1;
    let spec = RecommendSpec {
        budget: Duration::from_millis(50),
        ..spec()
    };
    let rec = recommend(&base, &spec, |_| {}).unwrap();
    assert!(rec.tried >= 1 && rec.tried < rec.grid_size, "{}", rec.tried);
    assert_eq!(rec.users, totp_sim::recommend::MIN_USERS);
    assert!(rec.scaled.as_ref().is_some_and(|s| s.contains("150 users")));
    let table = summary(&rec, 3);
    assert!(
        table.contains(&format!(
            "{} of {} settings tried",
            rec.tried, rec.grid_size
        )),
        "{table}"
    );
    assert!(table.contains("scaled down"), "{table}");
}
