//! `totp-sim recommend`: sweep the window, drift tracking and the throttle
//! over a scenario's fleet and say which settings keep both the users'
//! false rejects and a guesser's odds under their bounds, best first.
//!
//! For each setting the fleet runs alone (engine driver, attackers left
//! out, so that their throttle does not pollute the users' figures) and the
//! brute-force attacker's odds over the campaign come from the documented
//! arithmetic ([`guess_success_bound`]: `N(T) · w / 10^digits`). The
//! settings that meet both bounds are then checked, best first, by a
//! simulated guesser on the same fleet ([`AttackerCheck`]) until one
//! passes: that one is recommended.
//!
//! The false-reject rate is the one of phones not hours out (under 30 min off)
//! ([`Report::false_reject_rate_not_hours_out`]): no window helps a phone
//! hours out, so counting them would make every setting fail alike; they are
//! reported apart (`clock_hours_out_logins`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::analytic::{guess_success_bound, poisson_tail};
use crate::output::{self, OutputError};
use crate::plot::{self, format_value};
use crate::run::{DriverKind, RunOptions, SimError, run};
use crate::scenario::{BruteForce, Scenario, ScenarioError, ThrottleSettings};
use crate::stats::Report;

/// The bounds and the time budget.
#[derive(Debug, Clone)]
pub struct RecommendSpec {
    /// The largest acceptable share of correct codes refused (phones not
    /// hours out: under 30 min off true time).
    pub max_false_reject: f64,
    /// The largest acceptable chance that a guesser gets into one account
    /// over the scenario's campaign (or its days, without a campaign).
    pub max_attacker_odds: f64,
    /// Stop sweeping once this much wall-clock time is spent.
    pub budget: Duration,
    /// Shards per run.
    pub threads: usize,
}

/// One server setting of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Setting {
    /// Steps accepted behind.
    pub behind: u32,
    /// Steps accepted ahead.
    pub ahead: u32,
    /// Drift tracking.
    pub drift_tracking: bool,
    /// The largest learned offset, steps (with tracking).
    pub max_drift: u32,
    /// Failures before the first delay.
    pub free_attempts: u32,
    /// First delay, seconds.
    pub base_delay_s: f64,
    /// Longest delay, seconds.
    pub max_delay_s: f64,
}

/// A delay in seconds as people write it: `2`, `900`, `0.5`.
fn seconds(s: f64) -> String {
    if s.fract() == 0.0 && s.abs() < 1e15 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

impl Setting {
    /// Short text: `±1/1 tracking, throttle 3 free, 1 s..900 s`.
    pub fn label(&self) -> String {
        format!(
            "-{}/+{} {}, throttle {} free {}..{} s",
            self.behind,
            self.ahead,
            if self.drift_tracking {
                format!("tracking to {}", self.max_drift)
            } else {
                "no tracking".to_owned()
            },
            self.free_attempts,
            seconds(self.base_delay_s),
            seconds(self.max_delay_s)
        )
    }

    fn apply(&self, s: &mut Scenario) {
        s.server.behind = self.behind;
        s.server.ahead = self.ahead;
        s.server.max_drift = self.max_drift.max(self.behind).max(self.ahead);
        s.server.drift_tracking = self.drift_tracking;
        s.server.throttle = ThrottleSettings {
            free_attempts: self.free_attempts,
            base_delay_s: self.base_delay_s,
            max_delay_s: self.max_delay_s,
        };
    }
}

/// The throttles tried: the library's default, more free attempts, and
/// longer caps (the cap sets how many guesses a long campaign gets).
pub const THROTTLES: [(u32, f64, f64); 4] = [
    (3, 1.0, 900.0),
    (5, 1.0, 900.0),
    (3, 1.0, 1800.0),
    (5, 2.0, 3600.0),
];

/// The largest learned offsets tried with tracking, in steps, beside the
/// scenario's own: 60 steps (30 minutes at 30 s) follows a phone drifting
/// 78 ppm for a year, where the default 10 (5 minutes) is reached within a
/// month by free-running quartz past about 10 s a day.
pub const MAX_DRIFTS: [u32; 1] = [60];

/// Every setting of the sweep, the scenario's own first, then by how far
/// each is from it (so a budget cut keeps the nearest alternatives).
pub fn grid(base: &Scenario) -> Vec<Setting> {
    let own = Setting {
        behind: base.server.behind,
        ahead: base.server.ahead,
        drift_tracking: base.server.drift_tracking,
        max_drift: base.server.max_drift,
        free_attempts: base.server.throttle.free_attempts,
        base_delay_s: base.server.throttle.base_delay_s,
        max_delay_s: base.server.throttle.max_delay_s,
    };
    let mut out = vec![own];
    for behind in 0..=2 {
        for ahead in 0..=2 {
            let trackings = std::iter::once(base.server.max_drift)
                .chain(
                    MAX_DRIFTS
                        .into_iter()
                        .filter(|m| *m != base.server.max_drift),
                )
                .map(|m| (true, m))
                .chain(std::iter::once((false, base.server.max_drift)));
            for (drift_tracking, max_drift) in trackings {
                for (free_attempts, base_delay_s, max_delay_s) in THROTTLES {
                    let s = Setting {
                        behind,
                        ahead,
                        drift_tracking,
                        max_drift,
                        free_attempts,
                        base_delay_s,
                        max_delay_s,
                    };
                    if s != own {
                        out.push(s);
                    }
                }
            }
        }
    }
    let distance = |s: &Setting| {
        s.behind.abs_diff(own.behind)
            + s.ahead.abs_diff(own.ahead)
            + u32::from(s.drift_tracking != own.drift_tracking)
            + u32::from(s.max_drift != own.max_drift)
            + u32::from(s.free_attempts != own.free_attempts)
            + u32::from(s.max_delay_s != own.max_delay_s)
    };
    out.sort_by_key(distance);
    out
}

/// The simulated guesser's run on a setting.
#[derive(Debug, Clone, Serialize)]
pub struct AttackerCheck {
    /// Accounts guessed at.
    pub accounts: u64,
    /// Guesses the server checked, all accounts.
    pub guesses: u64,
    /// The most guesses checked on one account.
    pub max_guesses_per_account: u64,
    /// Accounts with an accepted guess.
    pub compromised: u64,
    /// The odds the measured guesses give one account:
    /// `max_guesses_per_account · w / 10^digits` (a victim who logs in
    /// clears the throttle, so this can exceed the documented bound).
    pub measured_odds: f64,
    /// `P(X ≥ compromised)` for `X` Poisson with mean `guesses · w /
    /// 10^digits`: how surprising the accounts guessed are.
    pub surprise: f64,
    /// Whether the simulated guesser agrees with the arithmetic: the
    /// accounts guessed are not surprising (`surprise ≥ 10⁻⁶`) and the
    /// measured odds meet the bound too.
    pub agrees: bool,
}

/// One setting tried.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The setting.
    pub setting: Setting,
    /// Correct codes refused, phones not hours out (under 30 min off).
    pub false_reject_rate: f64,
    /// Correct codes refused, every phone.
    pub false_reject_rate_all: f64,
    /// Logins accepted on the first try.
    pub first_try_accept_rate: f64,
    /// Logins accepted within the retries.
    pub eventual_accept_rate: f64,
    /// Logins.
    pub logins: u64,
    /// Logins that met the throttle (no attacker in these runs).
    pub legit_lockouts: u64,
    /// Of those, with a typo.
    pub lockouts_own_typos: u64,
    /// Of those, correct codes refused.
    pub lockouts_drift: u64,
    /// Of `lockouts_drift`, phones hours out (the same for every setting).
    pub lockouts_hours_out: u64,
    /// Logins of phones hours out.
    pub clock_hours_out_logins: u64,
    /// Resynchronisations.
    pub offset_jumps: u64,
    /// Logins per resynchronisation; null when none resynchronised.
    pub mean_logins_until_resync: Option<f64>,
    /// The brute-force bound over the campaign: `N(T) · w / 10^digits`.
    pub attacker_odds: f64,
    /// Whether both bounds are met (and the simulated guesser, where it
    /// ran, agrees).
    pub meets: bool,
    /// Of each bound, the share used, summed: lower is better.
    pub score: f64,
    /// The larger of the two shares: above 1 a bound is broken.
    pub overshoot: f64,
    /// The simulated guesser, where it ran.
    pub attacker_check: Option<AttackerCheck>,
}

/// What `recommend` found.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// Scenario name.
    pub scenario: String,
    /// Users per run (after any scaling).
    pub users: u32,
    /// Users in the scenario.
    pub scenario_users: u32,
    /// Days per run.
    pub days: u32,
    /// Why the fleet was scaled down, if it was.
    pub scaled: Option<String>,
    /// The bound on false rejects.
    pub max_false_reject: f64,
    /// The bound on the attacker's odds.
    pub max_attacker_odds: f64,
    /// The campaign the odds are for, days.
    pub campaign_days: f64,
    /// Settings in the grid.
    pub grid_size: usize,
    /// Settings tried before the budget ran out.
    pub tried: usize,
    /// The budget, seconds.
    pub budget_s: f64,
    /// Time spent, seconds.
    pub spent_s: f64,
    /// Whether some setting meets both bounds.
    pub any_meets: bool,
    /// The scenario's own setting (tried first).
    pub own: Setting,
    /// Every setting tried, best first: those that meet both bounds by
    /// score, then the rest by overshoot.
    pub trials: Vec<Trial>,
}

impl Recommendation {
    /// The recommended setting (the first trial, if it meets both bounds),
    /// else `None`: then `trials[0]` is the nearest.
    pub fn recommended(&self) -> Option<&Trial> {
        self.trials.first().filter(|t| t.meets)
    }
}

/// `recommend` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecommendError {
    /// A setting makes an invalid scenario.
    #[error("invalid setting")]
    Scenario(#[from] ScenarioError),
    /// A run failed.
    #[error("run failed")]
    Run(#[from] SimError),
    /// A bound is not a probability.
    #[error("--{0} must be a number in (0, 1]")]
    Bound(&'static str),
}

/// Fewer users than this are not worth a sweep: the false-reject rate of
/// a smaller fleet is mostly noise.
pub const MIN_USERS: u32 = 100;

/// Share of the budget the sweep may use; the rest is for the simulated
/// guesser.
const SWEEP_SHARE: f64 = 0.8;

/// Sweep `base` (its attackers are left out of the fleet runs) and rank the
/// settings. `on_trial` sees each setting as it is tried.
///
/// # Errors
///
/// [`RecommendError`] for a bad bound, an invalid setting or a failed run.
pub fn recommend(
    base: &Scenario,
    spec: &RecommendSpec,
    mut on_trial: impl FnMut(&Trial),
) -> Result<Recommendation, RecommendError> {
    for (name, v) in [
        ("max-false-reject", spec.max_false_reject),
        ("max-attacker-odds", spec.max_attacker_odds),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            return Err(RecommendError::Bound(name));
        }
    }
    let started = Instant::now();
    let budget = spec.budget.as_secs_f64();
    let settings = grid(base);
    let mut fleet = base.clone();
    fleet.brute_force = None;
    fleet.replay = None;
    fleet.shoulder_surfer = None;
    fleet.co_enroller = None;
    fleet.cross_origin = None;
    let campaign = campaign_days(base);
    let options = RunOptions {
        threads: spec.threads,
        driver: DriverKind::Engine,
        ..RunOptions::default()
    };
    let mut trials = Vec::new();
    let mut scaled = None;
    for (i, setting) in settings.iter().enumerate() {
        let elapsed = started.elapsed().as_secs_f64();
        if i > 0 && elapsed + elapsed / i as f64 > budget * SWEEP_SHARE {
            break;
        }
        let t0 = Instant::now();
        let trial = try_setting(&fleet, setting, campaign, spec, &options)?;
        if i == 0 {
            // The first run tells what a run costs: scale the fleet down
            // so that the whole grid fits the budget.
            let per_run = t0.elapsed().as_secs_f64();
            let need = per_run * settings.len() as f64;
            let room = budget * SWEEP_SHARE * 0.9;
            if need > room && fleet.users > MIN_USERS {
                let users = ((f64::from(fleet.users) * room / need) as u32).max(MIN_USERS);
                scaled = Some(format!(
                    "{} users × {} days take {:.1} s a setting, {:.0} s for {} settings: ran {users} users (the days unchanged, so the attacker's odds are the scenario's)",
                    fleet.users,
                    fleet.days,
                    per_run,
                    need,
                    settings.len()
                ));
                if users < fleet.users {
                    fleet.users = users;
                    let trial = try_setting(&fleet, setting, campaign, spec, &options)?;
                    on_trial(&trial);
                    trials.push(trial);
                    continue;
                }
            }
        }
        on_trial(&trial);
        trials.push(trial);
    }
    let tried = trials.len();
    rank(&mut trials);
    // Check the best settings with a simulated guesser until one agrees.
    let mut attacked = base.clone();
    attacked.users = fleet.users;
    if attacked.brute_force.is_none() {
        attacked.brute_force = Some(BruteForce {
            accounts: fleet.users.min(50),
            ..BruteForce::default()
        });
    }
    attacked.replay = None;
    attacked.shoulder_surfer = None;
    attacked.co_enroller = None;
    attacked.cross_origin = None;
    for (checked, t) in trials.iter_mut().filter(|t| t.meets).enumerate() {
        if checked > 0 && started.elapsed().as_secs_f64() > budget {
            break;
        }
        let check = check_attacker(&attacked, &t.setting, spec, &options)?;
        let agrees = check.agrees;
        t.attacker_check = Some(check);
        if agrees {
            break;
        }
        t.meets = false;
    }
    rank(&mut trials);
    Ok(Recommendation {
        scenario: base.name.clone(),
        users: fleet.users,
        scenario_users: base.users,
        days: fleet.days,
        scaled,
        max_false_reject: spec.max_false_reject,
        max_attacker_odds: spec.max_attacker_odds,
        campaign_days: campaign,
        grid_size: settings.len(),
        tried,
        budget_s: budget,
        spent_s: started.elapsed().as_secs_f64(),
        any_meets: trials.first().is_some_and(|t| t.meets),
        own: settings[0],
        trials,
    })
}

/// The days the brute-force bound is taken over: the scenario's campaign,
/// or its whole run when it has none.
fn campaign_days(s: &Scenario) -> f64 {
    let days = f64::from(s.days);
    s.brute_force.as_ref().map_or(days, |b| {
        let start = b.start_day.clamp(0.0, days);
        b.duration_days
            .map_or(days - start, |d| d.min(days - start))
    })
}

/// Best first: settings meeting both bounds by score (then fewer
/// lockouts), then the others by how far they overshoot.
fn rank(trials: &mut [Trial]) {
    trials.sort_by(|a, b| {
        b.meets.cmp(&a.meets).then_with(|| {
            let key = |t: &Trial| if t.meets { t.score } else { t.overshoot };
            key(a)
                .total_cmp(&key(b))
                .then(a.legit_lockouts.cmp(&b.legit_lockouts))
                .then(a.attacker_odds.total_cmp(&b.attacker_odds))
        })
    });
}

fn try_setting(
    fleet: &Scenario,
    setting: &Setting,
    campaign_days: f64,
    spec: &RecommendSpec,
    options: &RunOptions,
) -> Result<Trial, RecommendError> {
    let mut s = fleet.clone();
    setting.apply(&mut s);
    let model = s.model()?;
    let r = run(&model, options)?.report;
    let span = Duration::from_secs_f64(campaign_days.max(0.0) * 86_400.0);
    let attacker_odds = guess_success_bound(
        &model.config.throttle(),
        span,
        model.config.window().width(),
        model.params().digits(),
    );
    Ok(trial(setting, &r, attacker_odds, spec))
}

fn trial(setting: &Setting, r: &Report, attacker_odds: f64, spec: &RecommendSpec) -> Trial {
    let fr = r.false_reject_rate_not_hours_out / spec.max_false_reject;
    let odds = attacker_odds / spec.max_attacker_odds;
    Trial {
        setting: *setting,
        false_reject_rate: r.false_reject_rate_not_hours_out,
        false_reject_rate_all: r.false_reject_rate,
        first_try_accept_rate: r.first_try_accept_rate,
        eventual_accept_rate: r.eventual_accept_rate,
        logins: r.logins,
        legit_lockouts: r.legit_lockouts,
        lockouts_own_typos: r.lockouts_own_typos,
        lockouts_drift: r.lockouts_drift,
        lockouts_hours_out: r.lockouts_hours_out,
        clock_hours_out_logins: r.clock_hours_out_logins,
        offset_jumps: r.offset_jumps,
        mean_logins_until_resync: (r.offset_jumps > 0)
            .then(|| r.logins as f64 / r.offset_jumps as f64),
        attacker_odds,
        meets: fr <= 1.0 && odds <= 1.0,
        score: fr + odds,
        overshoot: fr.max(odds),
        attacker_check: None,
    }
}

fn check_attacker(
    attacked: &Scenario,
    setting: &Setting,
    spec: &RecommendSpec,
    options: &RunOptions,
) -> Result<AttackerCheck, RecommendError> {
    let mut s = attacked.clone();
    setting.apply(&mut s);
    let model = s.model()?;
    let out = run(&model, options)?;
    let per_guess =
        f64::from(model.config.window().width()) / 10f64.powi(i32::from(model.params().digits()));
    let accounts = out.stats.attacked.len() as u64;
    let max_guesses = out
        .stats
        .attacked
        .iter()
        .map(|a| a.guesses)
        .max()
        .unwrap_or(0);
    let compromised = out.report.compromised_accounts;
    let measured_odds = (max_guesses as f64 * per_guess).min(1.0);
    let surprise = poisson_tail(out.report.guesses as f64 * per_guess, compromised);
    Ok(AttackerCheck {
        accounts,
        guesses: out.report.guesses,
        max_guesses_per_account: max_guesses,
        compromised,
        measured_odds,
        surprise,
        agrees: surprise >= 1e-6 && measured_odds <= spec.max_attacker_odds,
    })
}

/// The Rust code of `setting`: a function building the `TotpConfig`
/// (`Window`, `ThrottlePolicy`) it describes; `max_drift_rate` is the
/// scenario's.
pub fn rust_snippet(setting: &Setting, max_drift_rate: u32, why: &str) -> String {
    let (max_drift, rate, tracking_note) = if setting.drift_tracking {
        (
            setting.max_drift.max(setting.behind).max(setting.ahead),
            max_drift_rate,
            "drift tracking on: the server learns each phone's offset".to_owned(),
        )
    } else {
        (
            setting.behind.max(setting.ahead),
            0,
            "drift tracking off: tower-totp always learns an offset; a max_drift of the window and a rate of 0 keep it within the window, with no resynchronisation beyond it (the closest the library comes)".to_owned(),
        )
    };
    let ms = |s: f64| (s * 1000.0).round() as u64;
    format!(
        "// Generated by `totp-sim recommend`: {why}\n\
         // Window: {b} behind, {a} ahead; {tracking_note}.\n\
         // Throttle: {free} failures free, then {base} s doubling up to {max} s.\n\
         use std::time::Duration;\n\
         \n\
         use tower_totp::throttle::ThrottlePolicy;\n\
         use tower_totp::verify::Window;\n\
         use tower_totp::{{ConfigError, TotpConfig}};\n\
         \n\
         /// The recommended tower-totp configuration, under `issuer`.\n\
         pub fn recommended_totp_config(issuer: &str) -> Result<TotpConfig, ConfigError> {{\n\
         \x20   let window = Window::new({b}, {a}, {max_drift})?.with_max_drift_rate({rate})?;\n\
         \x20   let throttle = ThrottlePolicy::new(\n\
         \x20       {free},\n\
         \x20       Duration::from_millis({base_ms}),\n\
         \x20       Duration::from_millis({max_ms}),\n\
         \x20   )?;\n\
         \x20   Ok(TotpConfig::new(issuer)?\n\
         \x20       .with_window(window)\n\
         \x20       .with_throttle(throttle))\n\
         }}\n",
        b = setting.behind,
        a = setting.ahead,
        free = setting.free_attempts,
        base = seconds(setting.base_delay_s),
        max = seconds(setting.max_delay_s),
        base_ms = ms(setting.base_delay_s),
        max_ms = ms(setting.max_delay_s),
    )
}

/// Why a trial ranks where it does, in words.
pub fn why(t: &Trial, rec: &Recommendation) -> String {
    let resync = t.mean_logins_until_resync.map_or_else(
        || "no resync".to_owned(),
        |v| format!("a resync every {v:.0} logins"),
    );
    let check = t.attacker_check.as_ref().map_or_else(String::new, |c| {
        format!(
            "; simulated guesser: {} of {} accounts in, at most {} guesses on one ({}), {}",
            c.compromised,
            c.accounts,
            c.max_guesses_per_account,
            format_value(c.measured_odds),
            if c.agrees { "agrees" } else { "DISAGREES" }
        )
    });
    format!(
        "false rejects {} (bound {}), attacker odds {} over {} days (bound {}), {} legitimate lockouts ({} typos, {} drift, {} of them hours out), {resync}{check}",
        format_value(t.false_reject_rate),
        format_value(rec.max_false_reject),
        format_value(t.attacker_odds),
        format_value(rec.campaign_days),
        format_value(rec.max_attacker_odds),
        t.legit_lockouts,
        t.lockouts_own_typos,
        t.lockouts_drift,
        t.lockouts_hours_out,
    )
}

/// The table `recommend` prints: the settings meeting both bounds, best
/// first (or the nearest ones when none does), with why.
pub fn summary(rec: &Recommendation, rows: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}: {} users × {} days, {} of {} settings tried in {:.1} s (budget {:.0} s)",
        rec.scenario, rec.users, rec.days, rec.tried, rec.grid_size, rec.spent_s, rec.budget_s
    );
    if let Some(why) = &rec.scaled {
        let _ = writeln!(out, "scaled down: {why}");
    }
    let meeting: Vec<&Trial> = rec.trials.iter().filter(|t| t.meets).collect();
    if meeting.is_empty() {
        let _ = writeln!(
            out,
            "no setting meets both bounds (false rejects <= {}, attacker odds <= {}); the nearest:",
            format_value(rec.max_false_reject),
            format_value(rec.max_attacker_odds)
        );
    } else {
        let _ = writeln!(
            out,
            "{} settings meet both bounds (false rejects <= {}, attacker odds <= {}), best first:",
            meeting.len(),
            format_value(rec.max_false_reject),
            format_value(rec.max_attacker_odds)
        );
    }
    let shown: Vec<&Trial> = if meeting.is_empty() {
        rec.trials.iter().take(rows).collect()
    } else {
        meeting.into_iter().take(rows).collect()
    };
    let _ = writeln!(
        out,
        "  {:<3} {:<40} {:>10} {:>10} {:>9} {:>10}",
        "#", "setting", "false rej", "odds", "lockouts", "per resync"
    );
    for (i, t) in shown.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:<3} {:<40} {:>10} {:>10} {:>9} {:>10}",
            i + 1,
            t.setting.label(),
            format_value(t.false_reject_rate),
            format_value(t.attacker_odds),
            t.legit_lockouts,
            t.mean_logins_until_resync
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
        );
        let _ = writeln!(out, "      {}", why(t, rec));
    }
    if let Some((rank, t)) = rec
        .trials
        .iter()
        .enumerate()
        .find(|(_, t)| t.setting == rec.own)
    {
        let _ = writeln!(
            out,
            "the scenario's own setting ({}) ranks {} of {}: {}",
            t.setting.label(),
            rank + 1,
            rec.trials.len(),
            if t.meets {
                "it meets both bounds".to_owned()
            } else {
                format!("it breaks a bound: {}", why(t, rec))
            }
        );
    }
    out
}

/// Write `recommend.json`, `pareto.svg`, `recommended.rs` and `index.html`
/// into `dir`.
///
/// # Errors
///
/// [`OutputError`] for the first file that cannot be written.
pub fn write(dir: &Path, rec: &Recommendation, base: &Scenario) -> Result<(), OutputError> {
    output::create_dir(dir)?;
    output::write(
        &dir.join("recommend.json"),
        serde_json::to_string_pretty(rec)?.as_bytes(),
    )?;
    let points: Vec<plot::ParetoPoint> = rec
        .trials
        .iter()
        .map(|t| plot::ParetoPoint {
            false_reject_rate: t.false_reject_rate,
            attacker_odds: t.attacker_odds,
            meets: t.meets,
        })
        .collect();
    plot::pareto(
        &dir.join("pareto.svg"),
        &points,
        (rec.max_false_reject, rec.max_attacker_odds),
        rec.recommended()
            .map(|t| (t.false_reject_rate, t.attacker_odds)),
    )?;
    let chosen = rec.trials.first();
    if let Some(t) = chosen {
        let why = if t.meets {
            format!(
                "the best of {} settings for scenario `{}`",
                rec.tried, rec.scenario
            )
        } else {
            format!(
                "NO setting of scenario `{}` met both bounds; this is the nearest",
                rec.scenario
            )
        };
        output::write(
            &dir.join("recommended.rs"),
            rust_snippet(&t.setting, base.server.max_drift_rate, &why).as_bytes(),
        )?;
    }
    output::write(&dir.join("index.html"), page(rec).as_bytes())
}

fn page(rec: &Recommendation) -> String {
    use tower_totp::http::pages::escape;
    let mut body = String::new();
    let verdict = match rec.recommended() {
        Some(t) => format!(
            "Recommended: <b>{}</b>. {}",
            escape(&t.setting.label()),
            escape(&why(t, rec))
        ),
        None => "No setting tried meets both bounds; the first row is the nearest.".into(),
    };
    let _ = writeln!(
        body,
        "<p>{verdict}</p>\n<p>{} of {} settings tried, {} users × {} days{}. False rejects count phones not hours out (under 30 min off); phones hours out are counted apart (no window helps them). Attacker odds: the documented bound N(T)·w/10^digits over {} days.</p>",
        rec.tried,
        rec.grid_size,
        rec.users,
        rec.days,
        rec.scaled
            .as_ref()
            .map_or_else(String::new, |s| format!(" (scaled down: {})", escape(s))),
        format_value(rec.campaign_days)
    );
    body.push_str("<figure><img src=\"pareto.svg\" alt=\"Pareto plot\"><figcaption>Every setting tried: false rejects across, attacker odds up. Green settings meet both bounds (the dashed lines); the ringed one is recommended. Settings down and to the left are better on both counts.</figcaption></figure>\n<table>\n<tr><th>#</th><th>setting</th><th>false rejects</th><th>attacker odds</th><th>lockouts</th><th>logins per resync</th><th>meets</th></tr>\n");
    for (i, t) in rec.trials.iter().enumerate() {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            escape(&t.setting.label()),
            format_value(t.false_reject_rate),
            format_value(t.attacker_odds),
            t.legit_lockouts,
            t.mean_logins_until_resync
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
            if t.meets { "yes" } else { "no" }
        );
    }
    body.push_str("</table>\n<p><a href=\"recommend.json\">recommend.json</a> · <a href=\"recommended.rs\">recommended.rs</a></p>");
    output::page(&format!("totp-sim recommend: {}", rec.scenario), &body)
}
