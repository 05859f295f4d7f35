//! Configuration mistakes, refused when a configuration value is built.
//!
//! Its own module, depending on nothing else in the crate: the modules that
//! check their values (`code`, `verify`, `throttle`, `config`, the HTTP
//! layer's origins) all name it, and `error` (which names the store) must
//! not be one of them.

/// A configuration value was refused when the configuration was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Codes have 6, 7 or 8 digits.
    #[error("codes have 6 to 8 digits, not {0}")]
    Digits(u8),
    /// The period is 1 to 3600 seconds.
    #[error("the period must be 1 to 3600 seconds, not {0}")]
    Period(u32),
    /// Not SHA1, SHA256 or SHA512.
    #[error("unknown algorithm (expected SHA1, SHA256 or SHA512)")]
    UnknownAlgorithm,
    /// The window does not fit inside the maximum drift.
    #[error(
        "the window ({behind} behind, {ahead} ahead) must not exceed the maximum drift ({max_drift})"
    )]
    Window {
        /// Steps behind.
        behind: u32,
        /// Steps ahead.
        ahead: u32,
        /// The maximum drift.
        max_drift: u32,
    },
    /// A maximum drift rate over one step per step (1,000,000 ppm).
    #[error("the maximum drift rate is at most 1000000 ppm (one step per step), not {0}")]
    DriftRate(u32),
    /// Throttle delays must grow from a non-zero base up to a cap at least as long.
    #[error("throttle base delay must be non-zero and no longer than its cap")]
    Throttle,
    /// Too few recovery codes, or too few bits each.
    #[error("recovery codes: at least 1 code of at least 50 bits")]
    Recovery,
    /// The issuer or account label is empty or contains a colon.
    #[error("issuer must be non-empty and must not contain ':'")]
    Issuer,
    /// A secret length under 128 bits.
    #[error("secrets must have at least 128 bits")]
    SecretBits,
    /// Not an origin (`scheme://host[:port]`, without path): the value.
    #[error("not an origin (scheme://host[:port], without path): {0:?}")]
    Origin(String),
    /// A per-user limit (authenticators, pending enrollments) of zero.
    #[error("a per-user limit must be at least 1")]
    Limit,
}
