use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::config_error::ConfigError;

/// The HMAC hash behind the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA1: the default, and the only one every authenticator app honours.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// The name used in otpauth URIs (`SHA1`, `SHA256`, `SHA512`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(ConfigError::UnknownAlgorithm),
        }
    }
}

/// The digit counts a code may have.
pub(crate) const DIGITS: std::ops::RangeInclusive<u8> = 6..=8;

/// Checked code parameters: algorithm, number of digits (6 to 8) and period.
///
/// The default, SHA1 with 6 digits every 30 seconds, is the combination every
/// authenticator app honours; others are for apps known to support them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawParams", into = "RawParams")]
pub struct CodeParams {
    algorithm: Algorithm,
    digits: u8,
    period: NonZeroU32,
}

impl Default for CodeParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: NonZeroU32::MIN.saturating_add(29),
        }
    }
}

impl CodeParams {
    /// Parameters after checking them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Digits`] unless `digits` is 6, 7 or 8, and
    /// [`ConfigError::Period`] for a period of zero or over one hour.
    pub fn new(algorithm: Algorithm, digits: u8, period_secs: u32) -> Result<Self, ConfigError> {
        if !DIGITS.contains(&digits) {
            return Err(ConfigError::Digits(digits));
        }
        let period = NonZeroU32::new(period_secs)
            .filter(|p| p.get() <= 3600)
            .ok_or(ConfigError::Period(period_secs))?;
        Ok(Self {
            algorithm,
            digits,
            period,
        })
    }

    /// The HMAC algorithm.
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// How many digits a code has.
    pub const fn digits(&self) -> u8 {
        self.digits
    }

    /// The time step in seconds.
    pub const fn period(&self) -> u32 {
        self.period.get()
    }

    /// The time step (RFC 6238 `T`) that contains `time`.
    pub fn step_at(&self, time: UnixTime) -> u64 {
        time.as_secs() / u64::from(self.period.get())
    }

    /// The first moment of `step` (saturating).
    pub fn step_start(&self, step: u64) -> UnixTime {
        UnixTime::from_secs(step.saturating_mul(u64::from(self.period.get())))
    }

    /// `10^digits`, the number of distinct codes.
    pub const fn modulus(&self) -> u32 {
        10u32.pow(self.digits as u32)
    }
}

#[derive(Serialize, Deserialize)]
struct RawParams {
    algorithm: Algorithm,
    digits: u8,
    period: u32,
}

impl TryFrom<RawParams> for CodeParams {
    type Error = ConfigError;
    fn try_from(raw: RawParams) -> Result<Self, Self::Error> {
        Self::new(raw.algorithm, raw.digits, raw.period)
    }
}

impl From<CodeParams> for RawParams {
    fn from(p: CodeParams) -> Self {
        Self {
            algorithm: p.algorithm,
            digits: p.digits,
            period: p.period.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sha1_six_digits_thirty_seconds() {
        let p = CodeParams::default();
        assert_eq!(
            (p.algorithm(), p.digits(), p.period()),
            (Algorithm::Sha1, 6, 30)
        );
        assert_eq!(p.modulus(), 1_000_000);
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        assert_eq!(
            CodeParams::new(Algorithm::Sha1, 5, 30),
            Err(ConfigError::Digits(5))
        );
        assert_eq!(
            CodeParams::new(Algorithm::Sha1, 9, 30),
            Err(ConfigError::Digits(9))
        );
        assert_eq!(
            CodeParams::new(Algorithm::Sha1, 6, 0),
            Err(ConfigError::Period(0))
        );
        assert!(CodeParams::new(Algorithm::Sha512, 8, 60).is_ok());
        assert!("sha256".parse::<Algorithm>().is_ok());
        assert!("md5".parse::<Algorithm>().is_err());
    }

    #[test]
    fn steps_follow_the_period() {
        let p = CodeParams::default();
        assert_eq!(p.step_at(UnixTime::from_secs(59)), 1);
        assert_eq!(p.step_at(UnixTime::from_secs(60)), 2);
        assert_eq!(p.step_start(2), UnixTime::from_secs(60));
        assert_eq!(p.step_start(u64::MAX), UnixTime::from_millis(u64::MAX));
    }
}
