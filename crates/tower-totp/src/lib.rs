//! A TOTP second factor for any `tower::Service<http::Request<_>>`.
//!
//! This crate holds the verification core: codes ([`code`]), the window with
//! per-device drift, replay refusal and throttling ([`verify`],
//! [`throttle`]), enrollment with QR codes ([`enroll`]), recovery codes
//! ([`recovery`]), secrets sealed at rest ([`seal`]), the admin policy
//! ([`policy`]) and the stores ([`store`]). [`TwoFactor`] ties them
//! together.
//!
//! Guides, with examples compiled as doc tests: [`_guide`] (the README,
//! integration, policy, verification, security, performance).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The guides are Markdown files of the workspace, outside this crate's
// folder: only rustdoc reads them (rendered docs and doc tests).
#[cfg(any(doc, doctest))]
pub mod _guide;
pub mod audit;
pub mod clock;
pub mod code;
mod config;
mod config_error;
pub mod enroll;
mod error;
pub mod events;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod recovery;
pub mod seal;
pub mod store;
pub mod throttle;
mod two_factor;
mod user;
pub mod verify;

/// The tower-sessions this crate is built against (0.15): the
/// `SessionManagerLayer` around [`http::TotpLayer`] must be of this version,
/// or the layer finds no session. Use it through this path, or depend on
/// the same version.
pub use tower_sessions;

pub use config::TotpConfig;
pub use config_error::ConfigError;
pub use error::Error;
pub use two_factor::{
    AuthenticatorInfo, CodeCheck, ConfirmAs, Confirmation, KeyCacheConfig, KeyCacheStats,
    RecoveryVerdict, TwoFactor, TwoFactorBuilder,
};
pub use user::{UserId, UserInfo, UserKind};
pub use verify::{RejectReason, Verdict};
