//! Scenario files: every model value is a TOML key with a default, and an
//! unknown key is an error.
//!
//! `scenarios/defaults.toml` lists every key with its default; the guide
//! `docs/simulator.md` explains each.
//!
//! ```
//! use totp_sim::scenario::Scenario;
//!
//! let s = Scenario::from_toml_str("users = 50\n[server]\nbehind = 2\nahead = 2\n").unwrap();
//! assert_eq!(s.users, 50);
//! assert_eq!(s.server.period_s, 30); // a default
//! let err = Scenario::from_toml_str("[server]\nwindow = 2\n").unwrap_err();
//! assert!(err.to_string().contains("unknown field `window`"));
//! ```

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_totp::TotpConfig;
use tower_totp::code::{Algorithm, CodeParams};
use tower_totp::http::ClockHintRule;
use tower_totp::throttle::ThrottlePolicy;
use tower_totp::verify::{DEFAULT_MAX_DRIFT_RATE, Window};

use crate::dist::{Dist, DistError, Sampler};

pub use crate::scenario_error::ScenarioError;

/// A whole scenario: the server's settings, the fleet of users, the
/// attackers and what the report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// A short name, shown in the report (default `"unnamed"`).
    pub name: String,
    /// What the scenario is about (default empty).
    pub description: String,
    /// Seed of every random draw (default 1). The same seed gives the same
    /// run, whatever `--threads`.
    pub seed: u64,
    /// Number of virtual users (default 1000).
    pub users: u32,
    /// Simulated days (default 30).
    pub days: u32,
    /// The true time at the start of day 0, in Unix seconds (default
    /// 1,700,000,000). Users enrol during the hour before it.
    pub start_unix: u64,
    /// The server's settings.
    pub server: ServerSettings,
    /// The users.
    pub fleet: Fleet,
    /// A brute-force campaign, if any (default none).
    pub brute_force: Option<BruteForce>,
    /// A replay attacker, if any (default none).
    pub replay: Option<Replay>,
    /// A shoulder surfer, if any (default none).
    pub shoulder_surfer: Option<ShoulderSurfer>,
    /// A co-enroller, if any (default none).
    pub co_enroller: Option<CoEnroller>,
    /// A cross-origin form submitter, if any (default none).
    pub cross_origin: Option<CrossOrigin>,
    /// What the report shows.
    pub report: ReportSettings,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "unnamed".into(),
            description: String::new(),
            seed: 1,
            users: 1000,
            days: 30,
            start_unix: 1_700_000_000,
            server: ServerSettings::default(),
            fleet: Fleet::default(),
            brute_force: None,
            replay: None,
            shoulder_surfer: None,
            co_enroller: None,
            cross_origin: None,
            report: ReportSettings::default(),
        }
    }
}

/// The server's settings: code parameters, window, drift tracking, throttle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Seconds per code (default 30).
    pub period_s: u32,
    /// Digits per code, 6 to 8 (default 6).
    pub digits: u8,
    /// `"SHA1"`, `"SHA256"` or `"SHA512"` (default `"SHA1"`).
    pub algorithm: Algorithm,
    /// Steps accepted behind the expected one (default 1).
    pub behind: u32,
    /// Steps accepted ahead of the expected one (default 1).
    pub ahead: u32,
    /// The largest learned offset, in steps (default 10); at least `behind`
    /// and `ahead`.
    pub max_drift: u32,
    /// Whether the server learns each device's offset and resynchronises
    /// drifted devices (default true). Off, the window stays centred on the
    /// server's own step.
    pub drift_tracking: bool,
    /// How fast, in parts per million of the steps since the device's last
    /// accepted code, its offset may change beyond what the window absorbs
    /// (default the library's, 10,000: one step per 100): a resynchronisation
    /// faster than that is refused. 1,000,000 lets `max_drift` alone decide;
    /// 0 turns resynchronisation off.
    pub max_drift_rate: u32,
    /// Steps fast an accepted code must be for the clock hint (default the
    /// library's, 1; 0: never for fast phones).
    pub clock_hint_fast_steps: u32,
    /// Steps slow an accepted code must be for the clock hint (default the
    /// library's, 2; 0: never for slow phones).
    pub clock_hint_slow_steps: u32,
    /// The throttle.
    pub throttle: ThrottleSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            period_s: 30,
            digits: 6,
            algorithm: Algorithm::Sha1,
            behind: 1,
            ahead: 1,
            max_drift: 10,
            drift_tracking: true,
            max_drift_rate: DEFAULT_MAX_DRIFT_RATE,
            clock_hint_fast_steps: ClockHintRule::default().fast_steps(),
            clock_hint_slow_steps: ClockHintRule::default().slow_steps(),
            throttle: ThrottleSettings::default(),
        }
    }
}

/// The throttle: free failures, then delays doubling up to a cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failures before the first delay (default 3).
    pub free_attempts: u32,
    /// The first delay in seconds (default 1).
    pub base_delay_s: f64,
    /// The longest delay in seconds (default 900).
    pub max_delay_s: f64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            free_attempts: 3,
            base_delay_s: 1.0,
            max_delay_s: 900.0,
        }
    }
}

/// How users enrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enrollment {
    /// The first code is computed from the true time: the user enrolled when
    /// the phone was right, and the offset grew since. Nobody fails to enrol.
    Synced,
    /// The first code comes from the phone's clock; a user whose code falls
    /// outside the window fails to enrol and takes no further part.
    Phone,
}

/// The virtual users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fleet {
    /// How users enrol (default `"synced"`).
    pub enrollment: Enrollment,
    /// The phone clock's offset from the true time at day 0, in seconds,
    /// positive when the phone is ahead (default normal, mean 0, sd 0.5).
    pub clock_offset_s: Dist,
    /// How fast each phone's offset grows, in seconds per day (default
    /// fixed 0).
    pub drift_s_per_day: Dist,
    /// Logins per user per day, at uniformly random moments (default 2). A
    /// fraction gives that chance of one more login on a day.
    pub logins_per_day: f64,
    /// Seconds from the moment the user reads the code in the app to the
    /// moment the server checks it: reading, typing, network (default
    /// log-normal, median 6, sigma 0.4). Negative draws count as 0.
    pub reaction_delay_s: Dist,
    /// Chance that a typed code has one wrong digit (default 0.02).
    pub typo_rate: f64,
    /// Attempts per login, the first included (default 3).
    pub max_attempts: u32,
    /// Seconds between a refusal and reading the app again (default fixed 2).
    pub retry_pause_s: Dist,
    /// After a wrong-code refusal, wait until the app shows a new code before
    /// retyping, as the server's message asks (default true). A throttled
    /// user waits for the `Retry-After` instead.
    pub wait_for_next_code: bool,
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            enrollment: Enrollment::Synced,
            clock_offset_s: Dist::normal(0.0, 0.5),
            drift_s_per_day: Dist::fixed(0.0),
            logins_per_day: 2.0,
            reaction_delay_s: Dist::LogNormal {
                median: 6.0,
                sigma: 0.4,
            },
            typo_rate: 0.02,
            max_attempts: 3,
            retry_pause_s: Dist::fixed(2.0),
            wait_for_next_code: true,
        }
    }
}

/// A brute-force campaign: guessers submitting random codes as fast as the
/// throttle lets them, honouring `Retry-After`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForce {
    /// How many accounts are attacked (default 10).
    pub accounts: u32,
    /// The first attacked user; users `first_account..first_account +
    /// accounts` are attacked (default 0).
    pub first_account: u32,
    /// Parallel sessions per account (default 4).
    pub sessions: u32,
    /// Guesses per second per session when not throttled (default 1).
    pub rate_per_s: f64,
    /// When the campaign starts, in days (default 0).
    pub start_day: f64,
    /// How long it lasts, in days (default: to the end of the run).
    pub duration_days: Option<f64>,
    /// Stop guessing an account once in (default true).
    pub stop_on_success: bool,
}

impl Default for BruteForce {
    fn default() -> Self {
        Self {
            accounts: 10,
            first_account: 0,
            sessions: 4,
            rate_per_s: 1.0,
            start_day: 0.0,
            duration_days: None,
            stop_on_success: true,
        }
    }
}

/// A replay attacker who sees the codes a victim's logins got accepted with
/// and submits them again a little later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replay {
    /// How many users are watched (default 10).
    pub victims: u32,
    /// The first watched user; users `first_victim..first_victim + victims`
    /// are watched (default 0).
    pub first_victim: u32,
    /// Chance the attacker sees a given accepted code (default 1).
    pub observe_rate: f64,
    /// Seconds from the victim's accepted code to the replay (default
    /// uniform 1 to 10).
    pub delay_s: Dist,
}

impl Default for Replay {
    fn default() -> Self {
        Self {
            victims: 10,
            first_victim: 0,
            observe_rate: 1.0,
            delay_s: Dist::uniform(1.0, 10.0),
        }
    }
}

/// A shoulder surfer: sees the last `observe_codes` codes the victim's
/// phone showed up to the moment an accepted login was submitted (the
/// typed code among them), and `delay_s` later tries each alone and each
/// pair of consecutive ones, the second one period after the first (what a
/// resynchronisation needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShoulderSurfer {
    /// How many users are watched (default 10).
    pub victims: u32,
    /// The first watched user (default 0).
    pub first_victim: u32,
    /// Chance the surfer watches a given accepted login (default 1).
    pub observe_rate: f64,
    /// Consecutive codes seen per login, the newest the one the phone
    /// showed when the code was submitted (default 2, 1 to 10).
    pub observe_codes: u32,
    /// Codes the phone showed after the login that are seen too, never
    /// typed (default 0, 0 to 10).
    pub observe_after: u32,
    /// Seconds from the victim's login to the surfer's first try (default
    /// uniform 120 to 300: every seen code is then outside the window).
    pub delay_s: Dist,
}

impl Default for ShoulderSurfer {
    fn default() -> Self {
        Self {
            victims: 10,
            first_victim: 0,
            observe_rate: 1.0,
            observe_codes: 2,
            observe_after: 0,
            delay_s: Dist::uniform(120.0, 300.0),
        }
    }
}

/// A co-enroller: knows the password of users who have not synced an app
/// yet, and starts enrollments in sessions of its own before and after the
/// victim's, to read the victim's secret or get its own activated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoEnroller {
    /// How many users' enrollments are attacked (default 5).
    pub victims: u32,
    /// The first attacked user (default 0).
    pub first_victim: u32,
    /// Attacker sessions that start an enrollment before the victim's
    /// (default 1, 0 to 8).
    pub sessions_before: u32,
    /// Attacker sessions that start one after the victim's (default 1,
    /// 0 to 8; at least one session in all).
    pub sessions_after: u32,
}

impl Default for CoEnroller {
    fn default() -> Self {
        Self {
            victims: 5,
            first_victim: 0,
            sessions_before: 1,
            sessions_after: 1,
        }
    }
}

/// A cross-origin attacker: a page on a foreign origin that makes a
/// logged-in victim's browser submit the service's state-changing forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossOrigin {
    /// How many users are lured to the page (default 2).
    pub victims: u32,
    /// The first lured user (default 0).
    pub first_victim: u32,
    /// The attacker page's origin, sent as `Origin` (default
    /// `"http://evil.example"`).
    pub origin: String,
    /// When the victims visit the page, in days (default 0.5).
    pub at_day: f64,
}

impl Default for CrossOrigin {
    fn default() -> Self {
        Self {
            victims: 2,
            first_victim: 0,
            origin: "http://evil.example".into(),
            at_day: 0.5,
        }
    }
}

/// What the report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportSettings {
    /// Width in seconds of the clock-offset bins of the acceptance plot
    /// (default 1).
    pub offset_bin_s: f64,
    /// How many users, spread evenly over the fleet, have their learned and
    /// true offsets plotted over the days (default 8).
    pub sample_users: u32,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            offset_bin_s: 1.0,
            sample_users: 8,
        }
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

fn dist(key: &str, d: &Dist) -> Result<Sampler, ScenarioError> {
    d.sampler()
        .map_err(|e: DistError| invalid(key, e.to_string()))
}

fn probability(key: &str, p: f64) -> Result<f64, ScenarioError> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(invalid(key, format!("{p} is not a probability in [0, 1]")))
    }
}

fn seconds(key: &str, s: f64) -> Result<Duration, ScenarioError> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| invalid(key, format!("{s} is not a number of seconds >= 0")))
}

impl Scenario {
    /// Parse a scenario from TOML text.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Parse`] with line and column for malformed TOML and
    /// unknown keys.
    pub fn from_toml_str(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|source| ScenarioError::Parse {
            context: "scenario".into(),
            source,
        })
    }

    /// Read a scenario file.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Read`] or [`ScenarioError::Parse`].
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = read(path)?;
        toml::from_str(&text).map_err(|source| ScenarioError::Parse {
            context: path.display().to_string(),
            source,
        })
    }

    /// Read a scenario file and apply `overrides` (see
    /// [`crate::overrides`]) before parsing it.
    ///
    /// # Errors
    ///
    /// As [`Scenario::load`], and [`ScenarioError::Override`].
    pub fn load_with(
        path: &Path,
        overrides: &[(String, toml::Value)],
    ) -> Result<Self, ScenarioError> {
        if overrides.is_empty() {
            return Self::load(path);
        }
        let text = read(path)?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|source| ScenarioError::Parse {
                context: path.display().to_string(),
                source,
            })?;
        for (key, value) in overrides {
            crate::overrides::apply(&mut table, key, value.clone())?;
        }
        table.try_into().map_err(|source| ScenarioError::Parse {
            context: format!("{} with overrides", path.display()),
            source,
        })
    }

    /// This scenario as TOML.
    ///
    /// # Errors
    ///
    /// Only if a value cannot be written as TOML (a NaN, for example).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// Check every value and prepare the model for running.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Invalid`] naming the first bad key.
    pub fn model(&self) -> Result<Model, ScenarioError> {
        let s = &self.server;
        let params = CodeParams::new(s.algorithm, s.digits, s.period_s)
            .map_err(|e| invalid("server.digits/period_s", e.to_string()))?;
        let window = Window::new(s.behind, s.ahead, s.max_drift)
            .map_err(|e| invalid("server.behind/ahead/max_drift", e.to_string()))?
            .with_max_drift_rate(s.max_drift_rate)
            .map_err(|e| invalid("server.max_drift_rate", e.to_string()))?;
        let t = &s.throttle;
        let throttle = ThrottlePolicy::new(
            t.free_attempts,
            seconds("server.throttle.base_delay_s", t.base_delay_s)?,
            seconds("server.throttle.max_delay_s", t.max_delay_s)?,
        )
        .map_err(|e| invalid("server.throttle", e.to_string()))?;
        let config = TotpConfig::new("totp-sim")
            .map_err(|e| invalid("issuer", e.to_string()))?
            .with_params(params)
            .with_window(window)
            .with_throttle(throttle);

        let f = &self.fleet;
        if !(f.logins_per_day.is_finite() && f.logins_per_day >= 0.0) {
            return Err(invalid("fleet.logins_per_day", "must be a number >= 0"));
        }
        if f.max_attempts == 0 {
            return Err(invalid("fleet.max_attempts", "must be at least 1"));
        }
        if f.max_attempts > 200 {
            return Err(invalid("fleet.max_attempts", "must be at most 200"));
        }
        if self.users == 0 {
            return Err(invalid("users", "must be at least 1"));
        }
        if self.days == 0 {
            return Err(invalid("days", "must be at least 1"));
        }
        if !(self.report.offset_bin_s.is_finite() && self.report.offset_bin_s > 0.0) {
            return Err(invalid("report.offset_bin_s", "must be > 0"));
        }
        let fleet = FleetModel {
            enrollment: f.enrollment,
            clock_offset_s: dist("fleet.clock_offset_s", &f.clock_offset_s)?,
            drift_s_per_day: dist("fleet.drift_s_per_day", &f.drift_s_per_day)?,
            logins_per_day: f.logins_per_day,
            reaction_delay_s: dist("fleet.reaction_delay_s", &f.reaction_delay_s)?,
            typo_rate: probability("fleet.typo_rate", f.typo_rate)?,
            max_attempts: f.max_attempts,
            retry_pause_s: dist("fleet.retry_pause_s", &f.retry_pause_s)?,
            wait_for_next_code: f.wait_for_next_code,
        };

        let run_ms = u64::from(self.days) * DAY_MS;
        let brute_force = match &self.brute_force {
            None => None,
            Some(b) => {
                if !(b.rate_per_s.is_finite() && b.rate_per_s > 0.0) {
                    return Err(invalid("brute_force.rate_per_s", "must be > 0"));
                }
                if b.sessions == 0 || b.sessions > 1 << 20 {
                    return Err(invalid("brute_force.sessions", "must be 1 to 1,048,576"));
                }
                let start = days_ms("brute_force.start_day", b.start_day)?;
                let duration = match b.duration_days {
                    Some(d) => days_ms("brute_force.duration_days", d)?,
                    None => run_ms.saturating_sub(start),
                };
                Some(BruteForceModel {
                    accounts: range(b.first_account, b.accounts, self.users),
                    sessions: b.sessions,
                    interval_ms: (1000.0 / b.rate_per_s).max(1.0) as u64,
                    start_ms: start,
                    end_ms: start.saturating_add(duration).min(run_ms),
                    stop_on_success: b.stop_on_success,
                })
            }
        };
        let replay = match &self.replay {
            None => None,
            Some(r) => Some(ReplayModel {
                victims: range(r.first_victim, r.victims, self.users),
                observe_rate: probability("replay.observe_rate", r.observe_rate)?,
                delay_s: dist("replay.delay_s", &r.delay_s)?,
            }),
        };
        let shoulder_surfer = match &self.shoulder_surfer {
            None => None,
            Some(r) => {
                if !(1..=MAX_OBSERVED_CODES).contains(&r.observe_codes) {
                    return Err(invalid(
                        "shoulder_surfer.observe_codes",
                        format!("{} is not 1 to {MAX_OBSERVED_CODES}", r.observe_codes),
                    ));
                }
                if r.observe_after > MAX_OBSERVED_CODES {
                    return Err(invalid(
                        "shoulder_surfer.observe_after",
                        format!("{} is not 0 to {MAX_OBSERVED_CODES}", r.observe_after),
                    ));
                }
                Some(ShoulderSurferModel {
                    victims: range(r.first_victim, r.victims, self.users),
                    observe_rate: probability("shoulder_surfer.observe_rate", r.observe_rate)?,
                    observe_codes: r.observe_codes,
                    observe_after: r.observe_after,
                    delay_s: dist("shoulder_surfer.delay_s", &r.delay_s)?,
                })
            }
        };
        let co_enroller = match &self.co_enroller {
            None => None,
            Some(c) => {
                for (key, n) in [
                    ("co_enroller.sessions_before", c.sessions_before),
                    ("co_enroller.sessions_after", c.sessions_after),
                ] {
                    if n > MAX_CO_SESSIONS {
                        return Err(invalid(key, format!("{n} is not 0 to {MAX_CO_SESSIONS}")));
                    }
                }
                if c.sessions_before + c.sessions_after == 0 {
                    return Err(invalid(
                        "co_enroller.sessions_before/sessions_after",
                        "the attacker needs at least one session",
                    ));
                }
                Some(CoEnrollerModel {
                    victims: range(c.first_victim, c.victims, self.users),
                    sessions_before: c.sessions_before,
                    sessions_after: c.sessions_after,
                })
            }
        };
        let cross_origin = match &self.cross_origin {
            None => None,
            Some(c) => {
                let at = days_ms("cross_origin.at_day", c.at_day)?;
                if at >= run_ms {
                    return Err(invalid(
                        "cross_origin.at_day",
                        format!("{} is not within the run's {} days", c.at_day, self.days),
                    ));
                }
                Some(CrossOriginModel {
                    victims: range(c.first_victim, c.victims, self.users),
                    origin: foreign_origin(&c.origin)?,
                    at_ms: at,
                })
            }
        };
        Ok(Model {
            name: self.name.clone(),
            seed: self.seed,
            users: self.users,
            days: self.days,
            start_ms: self.start_unix.saturating_mul(1000),
            config,
            drift_tracking: s.drift_tracking,
            clock_hint: ClockHintRule::new(s.clock_hint_fast_steps, s.clock_hint_slow_steps),
            fleet,
            brute_force,
            replay,
            shoulder_surfer,
            co_enroller,
            cross_origin,
            offset_bin_s: self.report.offset_bin_s,
            sample_users: self.report.sample_users,
        })
    }
}

/// The most codes a shoulder surfer sees per login.
pub const MAX_OBSERVED_CODES: u32 = 10;

/// The most sessions a co-enroller opens before (or after) its victim.
pub const MAX_CO_SESSIONS: u32 = 8;

/// `origin` if it is an origin (`scheme://host[:port]`, http or https,
/// nothing after), as the `Origin` header carries it.
fn foreign_origin(origin: &str) -> Result<http::HeaderValue, ScenarioError> {
    let bad = |why: &str| invalid("cross_origin.origin", format!("{origin:?}: {why}"));
    let uri: http::Uri = origin.parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("the scheme must be http or https"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if origin.trim_end_matches('/').len() != origin.len() || !matches!(uri.path(), "" | "/") {
        return Err(bad("an origin has no path (scheme://host[:port])"));
    }
    if uri.query().is_some() {
        return Err(bad("an origin has no query"));
    }
    http::HeaderValue::from_str(origin).map_err(|_| bad("not a header value"))
}

/// Users `first..first + count`, cut at the fleet's size.
fn range(first: u32, count: u32, users: u32) -> std::ops::Range<u32> {
    first.min(users)..first.saturating_add(count).min(users)
}

fn read(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })
}

fn days_ms(key: &str, days: f64) -> Result<u64, ScenarioError> {
    if days.is_finite() && days >= 0.0 {
        Ok((days * DAY_MS as f64) as u64)
    } else {
        Err(invalid(key, "must be a number of days >= 0"))
    }
}

/// Milliseconds per day.
pub const DAY_MS: u64 = 86_400_000;

/// A checked scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Model {
    /// The scenario's name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// Number of users.
    pub users: u32,
    /// Simulated days.
    pub days: u32,
    /// True time at the start of day 0, in Unix milliseconds.
    pub start_ms: u64,
    /// The engine's configuration.
    pub config: TotpConfig,
    /// Whether the server learns offsets.
    pub drift_tracking: bool,
    /// When an accepted code earns a clock hint.
    pub clock_hint: ClockHintRule,
    /// The users.
    pub fleet: FleetModel,
    /// The brute-force campaign.
    pub brute_force: Option<BruteForceModel>,
    /// The replay attacker.
    pub replay: Option<ReplayModel>,
    /// The shoulder surfer.
    pub shoulder_surfer: Option<ShoulderSurferModel>,
    /// The co-enroller.
    pub co_enroller: Option<CoEnrollerModel>,
    /// The cross-origin attacker.
    pub cross_origin: Option<CrossOriginModel>,
    /// Offset bin width of the acceptance plot.
    pub offset_bin_s: f64,
    /// Users whose offsets are plotted.
    pub sample_users: u32,
}

impl Model {
    /// The code parameters.
    pub fn params(&self) -> CodeParams {
        self.config.params()
    }

    /// Milliseconds per step.
    pub fn period_ms(&self) -> u64 {
        u64::from(self.params().period()) * 1000
    }

    /// The end of the last day, in Unix milliseconds.
    pub fn end_ms(&self) -> u64 {
        self.start_ms
            .saturating_add(u64::from(self.days).saturating_mul(DAY_MS))
    }
}

/// The fleet, checked.
#[derive(Debug, Clone)]
pub struct FleetModel {
    /// How users enrol.
    pub enrollment: Enrollment,
    /// Offset at day 0, seconds.
    pub clock_offset_s: Sampler,
    /// Drift, seconds per day.
    pub drift_s_per_day: Sampler,
    /// Logins per day.
    pub logins_per_day: f64,
    /// Reaction delay, seconds.
    pub reaction_delay_s: Sampler,
    /// Chance of a typo per typed code.
    pub typo_rate: f64,
    /// Attempts per login.
    pub max_attempts: u32,
    /// Pause after a refusal, seconds.
    pub retry_pause_s: Sampler,
    /// Wait for a new code after a wrong-code refusal.
    pub wait_for_next_code: bool,
}

/// The brute-force campaign, checked.
#[derive(Debug, Clone)]
pub struct BruteForceModel {
    /// Attacked users (global indices).
    pub accounts: std::ops::Range<u32>,
    /// Sessions per account.
    pub sessions: u32,
    /// Milliseconds between a session's guesses when not throttled.
    pub interval_ms: u64,
    /// Start, milliseconds after day 0.
    pub start_ms: u64,
    /// End, milliseconds after day 0.
    pub end_ms: u64,
    /// Stop once an account is in.
    pub stop_on_success: bool,
}

/// The replay attacker, checked.
#[derive(Debug, Clone)]
pub struct ReplayModel {
    /// Watched users (global indices).
    pub victims: std::ops::Range<u32>,
    /// Chance of seeing an accepted code.
    pub observe_rate: f64,
    /// Delay before the replay, seconds.
    pub delay_s: Sampler,
}

/// The shoulder surfer, checked.
#[derive(Debug, Clone)]
pub struct ShoulderSurferModel {
    /// Watched users (global indices).
    pub victims: std::ops::Range<u32>,
    /// Chance of watching an accepted login.
    pub observe_rate: f64,
    /// Codes seen per login, up to the typed one.
    pub observe_codes: u32,
    /// Codes seen per login after the typed one.
    pub observe_after: u32,
    /// Delay before the first try, seconds.
    pub delay_s: Sampler,
}

/// The co-enroller, checked.
#[derive(Debug, Clone)]
pub struct CoEnrollerModel {
    /// Users whose enrollment is attacked (global indices).
    pub victims: std::ops::Range<u32>,
    /// Attacker sessions started before the victim's enrollment.
    pub sessions_before: u32,
    /// Attacker sessions started after it.
    pub sessions_after: u32,
}

/// The cross-origin attacker, checked.
#[derive(Debug, Clone)]
pub struct CrossOriginModel {
    /// Lured users (global indices).
    pub victims: std::ops::Range<u32>,
    /// The foreign `Origin`.
    pub origin: http::HeaderValue,
    /// When the victims visit the page, milliseconds after day 0.
    pub at_ms: u64,
}
