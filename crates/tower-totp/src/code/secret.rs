use std::fmt;

use data_encoding::BASE32_NOPAD;
use zeroize::{Zeroize, Zeroizing};

/// The smallest secret accepted, in bits (RFC 4226 section 4 asks for 128).
pub const MIN_SECRET_BITS: usize = 128;

/// A shared TOTP secret: zeroized on drop, never printed.
///
/// ```
/// use tower_totp::code::Secret;
///
/// let secret = Secret::generate();
/// assert_eq!(secret.len() * 8, 160);
/// assert_eq!(format!("{secret:?}"), "[redacted]");
/// let again = Secret::from_base32(&secret.to_base32()).unwrap();
/// assert_eq!(again.as_bytes(), secret.as_bytes());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

/// Why a secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_BITS`].
    #[error("secret too short: {bits} bits, at least {MIN_SECRET_BITS} required")]
    TooShort {
        /// The length given, in bits.
        bits: usize,
    },
    /// Not valid base32 (RFC 4648, spaces and padding allowed).
    #[error("secret is not valid base32")]
    Base32,
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

impl Secret {
    /// A new 160-bit secret from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot supply random bytes, as no safe
    /// secret can be made then; see [`Secret::try_generate`].
    pub fn generate() -> Self {
        #[allow(clippy::expect_used)]
        Self::try_generate(160).expect("the OS random number generator failed")
    }

    /// A new secret of `bits` bits (rounded up to whole bytes).
    ///
    /// # Errors
    ///
    /// [`SecretError::TooShort`] under 128 bits, [`SecretError::Random`] if
    /// the operating system's random source fails.
    pub fn try_generate(bits: usize) -> Result<Self, SecretError> {
        if bits < MIN_SECRET_BITS {
            return Err(SecretError::TooShort { bits });
        }
        let mut bytes = Zeroizing::new(vec![0u8; bits.div_ceil(8)]);
        getrandom::fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Ok(Self { bytes })
    }

    /// A secret from raw bytes.
    ///
    /// # Errors
    ///
    /// [`SecretError::TooShort`] under 128 bits.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() * 8 < MIN_SECRET_BITS {
            return Err(SecretError::TooShort {
                bits: bytes.len() * 8,
            });
        }
        Ok(Self {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// A secret from base32 as authenticator apps show it: case, spaces,
    /// dashes and `=` padding do not matter.
    ///
    /// # Errors
    ///
    /// [`SecretError::Base32`] for anything else, [`SecretError::TooShort`]
    /// under 128 bits.
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        let mut clean: Zeroizing<Vec<u8>> = Zeroizing::new(
            text.bytes()
                .filter(|b| !matches!(b, b' ' | b'-' | b'=' | b'\t'))
                .map(|b| b.to_ascii_uppercase())
                .collect(),
        );
        let decoded = BASE32_NOPAD.decode(&clean).map_err(|_| SecretError::Base32);
        clean.zeroize();
        Self::from_bytes(&Zeroizing::new(decoded?))
    }

    /// The secret in unpadded upper-case base32, as otpauth URIs carry it.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a secret has at least 16 bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            Secret::try_generate(127).err(),
            Some(SecretError::TooShort { bits: 127 })
        );
        assert!(Secret::from_bytes(&[0; 15]).is_err());
        assert!(Secret::from_bytes(&[0; 16]).is_ok());
    }

    #[test]
    fn base32_is_lenient_about_layout_only() {
        let s = Secret::from_base32("gezd gnbv-gy3t qojq gezd gnbv gy3t qojq====").unwrap();
        assert_eq!(s.as_bytes(), b"12345678901234567890");
        assert_eq!(&*s.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(Secret::from_base32("GEZ!").err(), Some(SecretError::Base32));
    }

    #[test]
    fn display_and_debug_are_redacted() {
        let s = Secret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(s.to_string(), "[redacted]");
        assert!(!format!("{s:?}").contains("123"));
    }
}
