//! How values are written as Redis strings, and read back.
//!
//! Lua numbers are doubles, exact only up to 2^53, so no step, epoch or time
//! ever goes through Lua arithmetic. Steps and the throttle's `until` are
//! written as 20-digit zero-padded decimals (`u64::MAX` has 20 digits), which
//! the scripts compare as two exact 10-digit halves; epochs grow with the
//! server's 64-bit `INCR`; everything else is only stored and read back.

use std::fmt;

use tower_totp::clock::UnixTime;
use tower_totp::code::CodeParams;
use tower_totp::seal::SealedSecret;
use tower_totp::store::StoreError;

/// Stored data that does not decode. Says what and where, never the value.
#[derive(Debug)]
pub(crate) struct CorruptData(pub(crate) String);

impl fmt::Display for CorruptData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt data in Redis: {}", self.0)
    }
}

impl std::error::Error for CorruptData {}

/// A [`StoreError::Corrupt`] saying what is wrong.
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::corrupt(CorruptData(what.into()))
}

/// A `u64` as 20 zero-padded digits, so equal-length strings compare as the
/// numbers do.
pub(crate) fn fixed20(n: u64) -> String {
    format!("{n:020}")
}

/// A decimal `u64`, as written by [`fixed20`], `to_string` or `INCR`.
pub(crate) fn parse_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    if bytes.is_empty() || bytes.len() > 20 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(corrupt(format!("{what} is not a decimal number")));
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(format!("{what} is out of range")))
}

/// A decimal `i64`.
pub(crate) fn parse_i64(bytes: &[u8], what: &str) -> Result<i64, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(format!("{what} is not a signed decimal number")))
}

/// Milliseconds since the epoch.
pub(crate) fn parse_time(bytes: &[u8], what: &str) -> Result<UnixTime, StoreError> {
    parse_u64(bytes, what).map(UnixTime::from_millis)
}

/// UTF-8 text.
pub(crate) fn parse_text(bytes: Vec<u8>, what: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| corrupt(format!("{what} is not UTF-8")))
}

/// Code parameters as JSON (their serde form, checked on the way in).
pub(crate) fn encode_params(params: &CodeParams) -> Result<String, StoreError> {
    // Serialising a plain struct of an enum and two integers cannot fail;
    // if it ever did, the record could not be written, so say so.
    serde_json::to_string(params).map_err(|e| corrupt(format!("code parameters: {e}")))
}

/// Read back what [`encode_params`] wrote.
pub(crate) fn parse_params(bytes: &[u8], what: &str) -> Result<CodeParams, StoreError> {
    serde_json::from_slice(bytes).map_err(|_| corrupt(format!("{what} are not valid")))
}

/// A sealed secret from `SealedSecret::to_bytes`.
pub(crate) fn parse_secret(bytes: &[u8], what: &str) -> Result<SealedSecret, StoreError> {
    SealedSecret::from_bytes(bytes).map_err(|_| corrupt(format!("{what} is damaged")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_steps_sort_as_numbers() {
        assert_eq!(fixed20(0), "00000000000000000000");
        assert_eq!(fixed20(u64::MAX), "18446744073709551615");
        assert!(fixed20(99) < fixed20(100));
        assert_eq!(
            parse_u64(fixed20(u64::MAX).as_bytes(), "x").ok(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn bad_numbers_are_corrupt_not_panics() {
        for bad in [
            &b""[..],
            b"-1",
            b"1e3",
            b" 1",
            b"184467440737095516150",
            b"99999999999999999999",
        ] {
            assert!(
                matches!(parse_u64(bad, "x"), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_i64(b"--1", "x"),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(parse_i64(b"-7", "x").ok(), Some(-7));
    }
}
