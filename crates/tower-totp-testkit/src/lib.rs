//! The fixtures tower-totp's tests, benches and fuzz targets share, written
//! once (`publish = false`).
//!
//! - [`app`]: the in-process reference application (tower-sessions'
//!   `SessionManagerLayer`, [`TotpLayer`](tower_totp::http::TotpLayer), the
//!   `/2fa` endpoints, a password login and guarded routes), and a
//!   [`Client`](app::Client) that keeps cookies like a browser.
//! - [`store`]: [`TestStore`](store::TestStore), a wrapper that forwards
//!   every store trait to an inner store, fails on demand and counts calls
//!   per operation.
//! - [`round_trips`]: how many store operations a code may cost, checked
//!   on any store through a [`TestStore`](store::TestStore).
//! - [`session_store`]: the rules every shared session store keeps, one
//!   function a case, for the Redis and PostgreSQL session stores' tests.
//! - [`phone`]: [`Phone`](phone::Phone), an authenticator app: codes from
//!   a secret and a clock, possibly off by some steps.
//! - [`server`]: real database servers on free loopback ports
//!   ([`RedisServer`](server::redis::RedisServer); `PostgresServer` with
//!   the feature `postgres`), stopped by their own pid.
//!
//! Nothing here sleeps for time to pass: a
//! [`ManualClock`](tower_totp::clock::ManualClock) drives time, and
//! services are called in process.
//!
//! ```
//! use tower_totp::UserKind;
//! use tower_totp_testkit::app::App;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let app = App::new();
//! let alice = app.user("alice", UserKind::Internal, true);
//! let phone = app.enroll_directly(&alice).await;
//! app.next_step();
//!
//! let mut browser = app.client();
//! browser.login_verified(&alice, &phone).await;
//! assert_eq!(browser.get("/hello").await.hello_factor(), "verified");
//! # });
//! ```

// The fixtures panic on a broken setup: that is a failed test.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod app;
pub mod phone;
pub mod round_trips;
pub mod server;
pub mod session_store;
pub mod store;

/// 2023-11-14T22:13:20Z plus 10 s: inside a 30 s step, never at its edge.
pub const START: u64 = 1_700_000_010;

/// How long one code step lasts with the default parameters.
pub const STEP: std::time::Duration = std::time::Duration::from_secs(30);
