//! Running a model: shards on threads, each with its own engine, store and
//! clock; their counts merged into one [`Report`].

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tower_totp::clock::{ManualClock, UnixTime};

use crate::analytic::guess_success_bound;
use crate::driver::{Driver, DriverError};
use crate::engine_driver::EngineDriver;
use crate::http_driver::HttpDriver;
use crate::scenario::Model;
use crate::sim::{ManualTimeline, ShardOptions, ShardOutput, simulate_shard};
use crate::stats::{AttemptRecord, OffsetRow, Report, Stats, ratio};
use crate::target_error::TargetError;

/// Which server the fleet logs in to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverKind {
    /// The whole HTTP stack in process ([`HttpDriver`]): sessions, the
    /// layer, the endpoints and a password login, through
    /// `tower::Service`. The default.
    #[default]
    Http,
    /// The `TwoFactor` engine called directly ([`EngineDriver`]): the same
    /// figures for the same seed, several times faster.
    Engine,
}

impl std::str::FromStr for DriverKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(Self::Http),
            "engine" => Ok(Self::Engine),
            other => Err(format!("unknown driver `{other}` (http or engine)")),
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Shards run in parallel, each on its own thread with its own engine
    /// (default 1). Results do not depend on it.
    pub threads: usize,
    /// Record every legitimate attempt (for tests; costs memory).
    pub trace: bool,
    /// Show a progress bar, if standard error is a terminal.
    pub progress: bool,
    /// The driver of [`run`] (default [`DriverKind::Http`]).
    pub driver: DriverKind,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            trace: false,
            progress: false,
            driver: DriverKind::Http,
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutput {
    /// The figures.
    pub report: Report,
    /// The merged counts behind them.
    pub stats: Stats,
    /// Every legitimate attempt, when traced, ordered by user and time.
    pub trace: Vec<AttemptRecord>,
}

/// A run could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The driver failed.
    #[error("driver failed")]
    Driver(#[from] DriverError),
    /// No async runtime could be started.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A shard's thread panicked.
    #[error("a simulation thread panicked")]
    Panicked,
    /// The `--target` run cannot start.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// An attacker of the scenario needs sessions of its own, which the
    /// engine driver has not.
    #[error("[{section}] needs an HTTP driver: run with --driver http (the default) or --target")]
    NeedsHttp {
        /// The scenario section.
        section: &'static str,
    },
}

/// Run `model` in process on the discrete-event clock, through the
/// driver `options.driver` names: by default the whole HTTP stack
/// ([`HttpDriver`]), else the engine ([`EngineDriver`]). Both give the
/// same figures for the same seed.
///
/// ```
/// use totp_sim::run::{RunOptions, run};
/// use totp_sim::scenario::Scenario;
///
/// let mut s = Scenario::default();
/// s.users = 20;
/// s.days = 2;
/// let out = run(&s.model().unwrap(), &RunOptions::default()).unwrap();
/// assert!(out.report.logins > 0);
/// assert_eq!(out.report.replays_accepted, 0);
/// ```
///
/// # Errors
///
/// [`SimError`] when a shard cannot run to its end.
pub fn run(model: &Model, options: &RunOptions) -> Result<RunOutput, SimError> {
    if options.driver == DriverKind::Engine {
        if model.co_enroller.is_some() {
            return Err(SimError::NeedsHttp {
                section: "co_enroller",
            });
        }
        if model.cross_origin.is_some() {
            return Err(SimError::NeedsHttp {
                section: "cross_origin",
            });
        }
    }
    let (config, tracking, seed) = (&model.config, model.drift_tracking, model.seed);
    match options.driver {
        DriverKind::Http => run_with(model, options, |clock| {
            HttpDriver::simulated(config.clone(), clock, tracking, seed)
        }),
        DriverKind::Engine => run_with(model, options, |clock| {
            EngineDriver::simulated(config.clone(), clock, tracking, seed)
        }),
    }
}

/// Run `model` through drivers made by `make_driver`, one per shard, each
/// given the shard's [`ManualClock`] (the server under test must read its
/// time from it). This is how another driver runs the same fleet.
///
/// # Errors
///
/// [`SimError`] when a driver cannot be made or a shard cannot run to its
/// end.
pub fn run_with<D, F>(
    model: &Model,
    options: &RunOptions,
    make_driver: F,
) -> Result<RunOutput, SimError>
where
    D: Driver,
    F: Fn(ManualClock) -> Result<D, DriverError> + Sync,
{
    run_shards(model, options, |shard, shards, shard_options| {
        let clock = ManualClock::new(UnixTime::from_millis(
            model.start_ms.saturating_sub(3_600_000),
        ));
        let driver = make_driver(clock.clone())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(SimError::Runtime)?;
        Ok(runtime.block_on(simulate_shard(
            model,
            shard,
            shards,
            driver,
            ManualTimeline(clock),
            shard_options,
        ))?)
    })
}

/// Run `run_shard(shard, shards, options)` for every shard, each on its own
/// thread, and merge what they found.
pub(crate) fn run_shards<F>(
    model: &Model,
    options: &RunOptions,
    run_shard: F,
) -> Result<RunOutput, SimError>
where
    F: Fn(u32, u32, ShardOptions) -> Result<ShardOutput, SimError> + Sync,
{
    let shards = options.threads.clamp(1, model.users.max(1) as usize) as u32;
    let bar = progress_bar(
        options.progress,
        u64::from(shards) * u64::from(model.days) * 24,
    );
    let started = Instant::now();
    let run_shard = &run_shard;
    let outputs: Vec<ShardOutput> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..shards)
            .map(|shard| {
                let shard_options = ShardOptions {
                    trace: options.trace,
                    progress: bar.clone(),
                };
                scope.spawn(move || run_shard(shard, shards, shard_options))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| SimError::Panicked)?)
            .collect::<Result<_, _>>()
    })?;
    let wall = started.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut stats = Stats::default();
    let mut trace = Vec::new();
    for out in outputs {
        stats.merge(out.stats);
        trace.extend(out.trace);
    }
    trace.sort_by_key(|r| (r.user, r.login, r.attempt));
    let report = report(model, &stats, shards as usize, wall);
    Ok(RunOutput {
        report,
        stats,
        trace,
    })
}

fn progress_bar(wanted: bool, hours: u64) -> Option<ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(hours);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} simulated shard-hours, {eta} left",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// The report of a run from its merged counts.
pub fn report(model: &Model, s: &Stats, threads: usize, wall: Duration) -> Report {
    let wall_s = wall.as_secs_f64();
    let window = model.config.window();
    let guess_bound = model.brute_force.as_ref().map(|b| {
        guess_success_bound(
            &model.config.throttle(),
            Duration::from_millis(b.end_ms.saturating_sub(b.start_ms)),
            window.width(),
            model.params().digits(),
        )
    });
    let by_offset = s
        .by_offset
        .iter()
        .map(|(bin, b)| OffsetRow {
            offset_s: *bin as f64 * model.offset_bin_s,
            logins: b.logins,
            first_try_accept_rate: ratio(b.first_try, b.logins),
            eventual_accept_rate: ratio(b.eventual, b.logins),
        })
        .collect();
    Report {
        scenario: model.name.clone(),
        users: model.users,
        days: model.days,
        seed: model.seed,
        threads,
        logins: s.logins,
        first_try_accept_rate: ratio(s.first_try, s.logins),
        eventual_accept_rate: ratio(s.eventual, s.logins),
        false_reject_rate: ratio(s.false_rejects, s.correct_checked),
        legit_lockouts: s.legit_lockouts,
        replays_attempted: s.replays_attempted,
        replays_accepted: s.replays_accepted,
        guesses: s.guesses,
        guess_successes: s.guess_successes,
        surfer_attempts: s.surfer_attempts,
        surfer_successes: s.surfer_successes,
        co_enroll_attempts: s.co_enroll_attempts,
        co_enroll_secrets_seen: s.co_enroll_secrets_seen,
        co_enroll_takeovers: s.co_enroll_takeovers,
        cross_origin_attempts: s.cross_origin_attempts,
        cross_origin_accepted: s.cross_origin_accepted,
        drift_mae_s: (s.drift_err_n > 0)
            .then(|| s.drift_err_ms as f64 / s.drift_err_n as f64 / 1000.0),
        wall_s,
        logins_per_s: if wall_s > 0.0 {
            (s.attempts + s.replays_attempted + s.guesses + s.guesses_throttled) as f64 / wall_s
        } else {
            0.0
        },
        peak_memory_bytes: crate::stats::peak_memory_bytes(),
        enrolled: s.enrolled,
        enroll_failures: s.enroll_failures,
        attempts: s.attempts,
        driver_calls: s.driver_calls,
        offset_jumps: s.offset_jumps,
        clock_hints: (s.steps_seen > 0).then_some(s.clock_hints),
        clock_hint_users: (s.steps_seen > 0).then_some(s.clock_hint_users),
        clock_hints_on_time_phones: (s.steps_seen > 0).then_some(s.clock_hints_on_time_phones),
        clock_hints_missed: (s.steps_seen > 0).then_some(s.clock_hints_missed),
        replay_collisions: s.replay_collisions,
        replays_throttled: s.replays_throttled,
        guesses_throttled: s.guesses_throttled,
        attacked_accounts: s.attacked.len() as u64,
        compromised_accounts: s
            .attacked
            .iter()
            .filter(|a| a.success_day.is_some())
            .count() as u64,
        guess_success_bound: guess_bound,
        by_offset,
    }
}
