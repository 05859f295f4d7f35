//! Scenario files, outputs, determinism and sharding.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, missing_docs)]

use std::path::{Path, PathBuf};

use totp_sim::dist::Dist;
use totp_sim::output::{PLOTS, summary_table, write_run};
use totp_sim::run::{RunOptions, run};
use totp_sim::scenario::{BruteForce, Replay, Scenario};
use totp_sim::sweep::{SweepSpec, sweep};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_parses_and_validates() {
    let files = scenario_files();
    assert!(files.len() >= 9, "{files:?}");
    for file in files {
        let s = Scenario::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        s.model()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_ne!(s.name, "unnamed", "{} needs a name", file.display());
        assert!(
            !s.description.is_empty(),
            "{} needs a description",
            file.display()
        );
    }
}

#[test]
fn defaults_toml_lists_exactly_the_defaults() {
    let file = Scenario::load(&scenario_dir().join("defaults.toml")).unwrap();
    let expected = Scenario {
        name: "defaults".into(),
        description: "Every key at its default value.".into(),
        ..Scenario::default()
    };
    assert_eq!(file, expected);
    // The commented-out attacker sections show their defaults too.
    let text = std::fs::read_to_string(scenario_dir().join("defaults.toml")).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|r| r.starts_with('[') || r.contains(" = "))
                .unwrap_or(l)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let with_attackers = Scenario::from_toml_str(&uncommented).unwrap();
    let mut brute_force = BruteForce::default();
    brute_force.duration_days = Some(30.0);
    assert_eq!(with_attackers.brute_force, Some(brute_force));
    assert_eq!(with_attackers.replay, Some(Replay::default()));
    assert_eq!(
        with_attackers.shoulder_surfer,
        Some(totp_sim::scenario::ShoulderSurfer::default())
    );
    assert_eq!(
        with_attackers.co_enroller,
        Some(totp_sim::scenario::CoEnroller::default())
    );
    assert_eq!(
        with_attackers.cross_origin,
        Some(totp_sim::scenario::CrossOrigin::default())
    );
}

#[test]
fn unknown_keys_are_errors_that_name_the_key_and_the_line() {
    let err = Scenario::from_toml_str("users = 5\n\n[fleet]\ntypo = 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `typo`"), "{err}");
    assert!(err.contains("typo_rate"), "lists the known keys: {err}");
    assert!(err.contains("line 4"), "{err}");
    let err = Scenario::from_toml_str(
        "[fleet]\nclock_offset_s = { kind = \"normal\", mean = 0.0, sigma = 1.0 }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("sigma"), "{err}");
    let err = Scenario::from_toml_str("[fleet]\nclock_offset_s = { kind = \"gaussian\" }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("gaussian"), "{err}");
}

#[test]
fn out_of_range_values_name_their_key() {
    let mut s = Scenario::default();
    s.fleet.typo_rate = 1.5;
    assert!(
        s.model()
            .unwrap_err()
            .to_string()
            .contains("fleet.typo_rate")
    );
    let mut s = Scenario::default();
    s.server.behind = 11;
    assert!(s.model().unwrap_err().to_string().contains("server.behind"));
    let mut s = Scenario::default();
    s.fleet.reaction_delay_s = Dist::uniform(5.0, 1.0);
    assert!(
        s.model()
            .unwrap_err()
            .to_string()
            .contains("reaction_delay_s")
    );
}

fn busy_scenario() -> Scenario {
    let mut s = Scenario::default();
    s.users = 40;
    s.days = 3;
    s.seed = 11;
    s.fleet.typo_rate = 0.1;
    s.fleet.drift_s_per_day = Dist::normal(0.0, 5.0);
    s.fleet.clock_offset_s = Dist::normal(0.0, 20.0);
    s.brute_force = Some(BruteForce {
        accounts: 5,
        sessions: 3,
        rate_per_s: 2.0,
        duration_days: Some(0.5),
        ..BruteForce::default()
    });
    s.replay = Some(Replay {
        victims: 10,
        first_victim: 3,
        ..Replay::default()
    });
    s
}

#[test]
fn a_seed_gives_the_same_run_whatever_the_number_of_threads() {
    let model = busy_scenario().model().unwrap();
    let one = run(&model, &RunOptions::default()).unwrap();
    let four = run(
        &model,
        &RunOptions {
            threads: 4,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(one.stats.logins > 100);
    assert!(one.stats.guesses > 0 && one.stats.replays_attempted > 0);
    assert_eq!(one.stats, four.stats);
    assert_eq!(four.report.threads, 4);
    let mut other = busy_scenario();
    other.seed = 12;
    let changed = run(&other.model().unwrap(), &RunOptions::default()).unwrap();
    assert_ne!(one.stats, changed.stats);
}

#[test]
fn a_run_writes_the_report_the_plots_and_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = busy_scenario();
    let model = scenario.model().unwrap();
    let out = run(&model, &RunOptions::default()).unwrap();
    write_run(dir.path(), &scenario, &model, &out).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    for key in [
        "logins",
        "first_try_accept_rate",
        "eventual_accept_rate",
        "false_reject_rate",
        "legit_lockouts",
        "replays_attempted",
        "replays_accepted",
        "guesses",
        "guess_successes",
        "drift_mae_s",
        "wall_s",
        "logins_per_s",
        "peak_memory_bytes",
    ] {
        assert!(json[key].is_number(), "{key} in {json}");
    }
    assert_eq!(json["logins"], out.report.logins);
    // The whole process's peak: at least what this run's fleet needed.
    assert!(json["peak_memory_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(summary_table(&out.report).contains("peak_memory_mib"));

    let page = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for (file, _) in PLOTS {
        assert!(page.contains(file), "{file}");
        let svg = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(svg.starts_with("<svg"), "{file}");
        assert!(svg.contains("<text"), "{file} has its labels as text");
        assert!(svg.contains("</svg>"), "{file}");
    }
}

#[test]
fn a_sweep_runs_the_grid_and_draws_the_heat_map() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"grid\"\nusers = 30\ndays = 2\n[server]\ndrift_tracking = false\n",
    )
    .unwrap();
    let spec = SweepSpec {
        param: "window".into(),
        values: vec!["0".into(), "1".into()],
        param2: Some("offset".into()),
        values2: vec!["0".into(), "-40".into()],
        metric: "first_try_accept_rate".into(),
    };
    let mut seen = 0;
    let result = sweep(
        &file,
        &[],
        &spec,
        &RunOptions::default(),
        &|s: &mut Scenario| s.fleet.typo_rate = 0.0,
        |_| seen += 1,
    )
    .unwrap();
    assert_eq!(seen, 4);
    let grid = result.grid(2);
    // In sync: a window of 0 misses the codes whose check crossed a step
    // boundary; a window of 1 takes them all.
    assert!(grid[0][0] < grid[0][1] && grid[0][1] == 1.0, "{grid:?}");
    // 40 s behind: out of reach of both windows most of the time.
    assert!(grid[1][1] < 0.5, "{grid:?}");
    result.write(dir.path(), &spec, "grid").unwrap();
    let svg = std::fs::read_to_string(dir.path().join("heatmap.svg")).unwrap();
    assert!(svg.contains("<rect") && svg.contains("<text"));
    assert!(dir.path().join("sweep.json").exists());
    assert!(
        std::fs::read_to_string(dir.path().join("index.html"))
            .unwrap()
            .contains("heatmap.svg")
    );
    let bad = SweepSpec {
        metric: "no_such_metric".into(),
        ..spec
    };
    assert!(sweep(&file, &[], &bad, &RunOptions::default(), &|_| {}, |_| {}).is_err());
}

#[test]
fn another_driver_runs_the_same_fleet() {
    use totp_sim::engine_driver::EngineDriver;
    use totp_sim::run::run_with;
    use tower_totp::TwoFactor;

    let mut s = Scenario::default();
    s.users = 20;
    s.days = 2;
    s.fleet.typo_rate = 0.0;
    let model = s.model().unwrap();
    // The engine's own enrollment, with secrets from the operating system.
    let out = run_with(&model, &RunOptions::default(), |clock| {
        let tfa = TwoFactor::builder(model.config.clone())
            .clock(clock)
            .build()?;
        Ok(EngineDriver::from_engine(tfa))
    })
    .unwrap();
    assert_eq!(out.report.enrolled, 20);
    assert_eq!(out.report.logins, 80);
    assert_eq!(out.report.eventual_accept_rate, 1.0);
}
