//! A discrete-event simulator of a TOTP fleet: what a window, drift
//! tracking or a throttle does to real users and to attackers, before the
//! setting changes in production.
//!
//! A scenario ([`scenario`]) describes the server's settings, a fleet of
//! virtual users (phone clock offsets and drift, login schedule, reaction
//! delay, typos, retries) and attackers (brute-force guessers, a replay
//! attacker, a shoulder surfer ([`surfer`]), a co-enroller ([`co_enroll`])
//! and a cross-origin page ([`cross_origin`])). [`run::run`] plays it on a manual clock through a
//! [`driver::Driver`] and reports what users and attackers got
//! ([`stats::Report`]). The drivers:
//!
//! - [`http_driver::HttpDriver`] (the default): the whole HTTP stack in
//!   process, as a deployed service runs it (tower-sessions, `TotpLayer`, the
//!   `/2fa` endpoints, a password login), through `tower::Service`;
//! - [`engine_driver::EngineDriver`]: the `TwoFactor` engine called
//!   directly, with the same figures for the same seed, several times faster;
//! - [`target::TargetDriver`]: a running server over real HTTP, on real time
//!   ([`target::run_target`], `totp-sim run --target URL`).
//!
//! [`bench`](mod@bench) times full logins through the in-process stack. The guide is
//! [`_guide`] (`docs/simulator.md`).
//!
//! ```
//! use totp_sim::run::{RunOptions, run};
//! use totp_sim::scenario::Scenario;
//!
//! let scenario = Scenario::from_toml_str(r#"
//!     users = 30
//!     days = 3
//!     [fleet]
//!     typo_rate = 0.0
//!     [replay]
//!     victims = 5
//! "#).unwrap();
//! let out = run(&scenario.model().unwrap(), &RunOptions::default()).unwrap();
//! assert!(out.report.first_try_accept_rate > 0.9);
//! assert!(out.report.replays_attempted > 0);
//! assert_eq!(out.report.replays_accepted, 0);
//! ```

#![forbid(unsafe_code)]

/// The simulator's guide (`docs/simulator.md` in the repository), here so
/// that its examples are compiled as doc tests. Only rustdoc reads it: the
/// Markdown lives outside this crate's folder.
#[cfg(any(doc, doctest))]
#[doc = include_str!("../../docs/simulator.md")]
pub mod _guide {}

pub mod analytic;
pub mod bench;
pub mod browser;
pub mod co_enroll;
pub mod cross_origin;
pub mod dist;
pub mod driver;
pub mod engine_driver;
pub mod http_driver;
pub mod output;
pub mod overrides;
pub mod plot;
pub mod recommend;
pub mod run;
pub mod scenario;
mod scenario_error;
pub mod sessions;
pub mod sim;
pub mod stats;
pub mod surfer;
pub mod sweep;
pub mod target;
mod target_error;
pub mod wire;
