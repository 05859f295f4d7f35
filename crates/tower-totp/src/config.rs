//! Settings of the verification engine, checked when built.

use std::time::Duration;

use crate::code::{CodeParams, MIN_SECRET_BITS};
use crate::config_error::ConfigError;
use crate::throttle::ThrottlePolicy;
use crate::verify::Window;

/// Everything that decides how codes are issued and checked.
///
/// ```
/// use tower_totp::TotpConfig;
/// use tower_totp::verify::Window;
///
/// let config = TotpConfig::new("Acme")
///     .unwrap()
///     .with_window(Window::new(1, 1, 10).unwrap());
/// assert_eq!(config.recovery_codes(), 10);
/// assert!(TotpConfig::new("bad:issuer").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    issuer: String,
    params: CodeParams,
    window: Window,
    throttle: ThrottlePolicy,
    recovery_codes: usize,
    secret_bits: usize,
    pending_ttl: Duration,
    max_authenticators: usize,
    max_pending_enrollments: usize,
}

impl TotpConfig {
    /// Defaults under the issuer name shown in authenticator apps.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Issuer`] if `issuer` is empty or contains `:` (the
    /// otpauth label separator).
    pub fn new(issuer: impl Into<String>) -> Result<Self, ConfigError> {
        let issuer = issuer.into();
        if issuer.trim().is_empty() || issuer.contains(':') {
            return Err(ConfigError::Issuer);
        }
        Ok(Self {
            issuer,
            params: CodeParams::default(),
            window: Window::default(),
            throttle: ThrottlePolicy::default(),
            recovery_codes: 10,
            secret_bits: 160,
            pending_ttl: Duration::from_secs(15 * 60),
            max_authenticators: 5,
            max_pending_enrollments: 5,
        })
    }

    /// Code parameters for new enrollments (default SHA1, 6 digits, 30 s).
    #[must_use]
    pub fn with_params(mut self, params: CodeParams) -> Self {
        self.params = params;
        self
    }

    /// The acceptance window and maximum drift (default 1 behind, 1 ahead, 10).
    #[must_use]
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// The throttle (default 3 free, 1 s doubling to 15 minutes).
    #[must_use]
    pub fn with_throttle(mut self, throttle: ThrottlePolicy) -> Self {
        self.throttle = throttle;
        self
    }

    /// How many recovery codes a set has (default 10).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Recovery`] for zero.
    pub fn with_recovery_codes(mut self, count: usize) -> Result<Self, ConfigError> {
        if count == 0 {
            return Err(ConfigError::Recovery);
        }
        self.recovery_codes = count;
        Ok(self)
    }

    /// Bits of new secrets (default 160).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretBits`] under 128.
    pub fn with_secret_bits(mut self, bits: usize) -> Result<Self, ConfigError> {
        if bits < MIN_SECRET_BITS {
            return Err(ConfigError::SecretBits);
        }
        self.secret_bits = bits;
        Ok(self)
    }

    /// How long a pending enrollment waits for its first code (default 15 minutes).
    #[must_use]
    pub fn with_pending_ttl(mut self, ttl: Duration) -> Self {
        self.pending_ttl = ttl;
        self
    }

    /// At most this many active authenticators per user (default 5). Each
    /// one is a code a guess can hit, so the brute-force margin per guess
    /// shrinks with every authenticator: see "Authenticator cap" in
    /// `docs/security.md`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Limit`] for zero.
    pub fn with_max_authenticators(mut self, max: usize) -> Result<Self, ConfigError> {
        if max == 0 {
            return Err(ConfigError::Limit);
        }
        self.max_authenticators = max;
        Ok(self)
    }

    /// At most this many pending enrollments per user at once, one per
    /// session that started one (default 5). Expired ones do not count.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Limit`] for zero.
    pub fn with_max_pending_enrollments(mut self, max: usize) -> Result<Self, ConfigError> {
        if max == 0 {
            return Err(ConfigError::Limit);
        }
        self.max_pending_enrollments = max;
        Ok(self)
    }

    /// The issuer shown in authenticator apps.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Parameters of new enrollments.
    pub fn params(&self) -> CodeParams {
        self.params
    }

    /// The window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The throttle.
    pub fn throttle(&self) -> ThrottlePolicy {
        self.throttle
    }

    /// Codes per recovery set.
    pub fn recovery_codes(&self) -> usize {
        self.recovery_codes
    }

    /// Bits of new secrets.
    pub fn secret_bits(&self) -> usize {
        self.secret_bits
    }

    /// Lifetime of a pending enrollment.
    pub fn pending_ttl(&self) -> Duration {
        self.pending_ttl
    }

    /// Active authenticators allowed per user.
    pub fn max_authenticators(&self) -> usize {
        self.max_authenticators
    }

    /// Pending enrollments allowed per user at once.
    pub fn max_pending_enrollments(&self) -> usize {
        self.max_pending_enrollments
    }
}
