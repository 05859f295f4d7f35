//! Recovery codes: shown once, stored only as hashes, each usable once.
//!
//! A code is 12 characters of base32 (60 bits), shown as `abcd-efgh-ijkl`.
//! Stores keep `SHA-256(domain, user id, code)`: the user id salts the hash
//! so equal codes of two users differ, and 60 bits make an offline search of
//! a stolen hash cost about 2^59 hashes per code.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::user::UserId;

/// Characters in a recovery code (base32: 5 bits each).
const CODE_CHARS: usize = 12;
/// Bits in a recovery code.
pub const RECOVERY_CODE_BITS: usize = CODE_CHARS * 5;
const HASH_DOMAIN: &[u8] = b"tower-totp/recovery/v1\0";

/// The hash of one recovery code, as stores keep it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveryHash([u8; 32]);

impl RecoveryHash {
    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Constant-time equality, for stores comparing hashes.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for RecoveryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryHash([redacted])")
    }
}

/// A fresh set of recovery codes, to show the user once.
#[derive(Clone)]
pub struct RecoveryCodes {
    codes: Vec<Zeroizing<String>>,
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes([{} redacted])", self.codes.len())
    }
}

impl RecoveryCodes {
    /// `count` new codes from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`crate::seal::SealError::Random`] if the random source fails.
    pub fn generate(count: usize) -> Result<Self, crate::seal::SealError> {
        let codes = (0..count)
            .map(|_| {
                let mut raw = Zeroizing::new([0u8; 8]);
                getrandom::fill(&mut *raw).map_err(|_| crate::seal::SealError::Random)?;
                // 8 bytes encode to 13 base32 characters; keep the first 12 (60 bits).
                let encoded = Zeroizing::new(BASE32_NOPAD.encode(&*raw).to_ascii_lowercase());
                let c = &encoded[..CODE_CHARS];
                Ok(Zeroizing::new(format!(
                    "{}-{}-{}",
                    &c[..4],
                    &c[4..8],
                    &c[8..]
                )))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { codes })
    }

    /// The codes as the user should write them down.
    pub fn as_strings(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(|c| c.as_str())
    }

    /// How many codes.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The hashes to store for `user`.
    pub fn hashes(&self, user: &UserId) -> Vec<RecoveryHash> {
        self.codes
            .iter()
            .filter_map(|c| hash_recovery_code(user, c))
            .collect()
    }
}

/// Hash what a user typed as a recovery code, after the same input rule as
/// codes (NFKC, spaces and dashes removed), and case folded.
///
/// `None` when it cannot be a recovery code (wrong length or characters), so
/// no store is asked.
pub fn hash_recovery_code(user: &UserId, typed: &str) -> Option<RecoveryHash> {
    if typed.len() > 128 {
        return None;
    }
    let clean: Zeroizing<String> = Zeroizing::new(
        typed
            .nfkc()
            .filter(|c| !matches!(c, ' ' | '\t' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let valid = clean.len() == CODE_CHARS
        && clean
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    if !valid {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(user.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(clean.as_bytes());
    Some(RecoveryHash(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_documented_shape_and_are_distinct() {
        let codes = RecoveryCodes::generate(10).unwrap();
        assert_eq!(codes.len(), 10);
        const { assert!(RECOVERY_CODE_BITS >= 50) };
        let mut seen = std::collections::HashSet::new();
        for c in codes.as_strings() {
            assert_eq!(c.len(), 14, "{}", c.len());
            assert!(seen.insert(c.to_string()));
        }
        assert!(!format!("{codes:?}").contains(codes.as_strings().next().unwrap()));
    }

    #[test]
    fn typing_variants_hash_the_same() {
        let user = UserId::new("alice");
        let codes = RecoveryCodes::generate(1).unwrap();
        let code = codes.as_strings().next().unwrap().to_string();
        let stored = codes.hashes(&user)[0];
        let variants = [
            code.clone(),
            code.to_uppercase(),
            code.replace('-', ""),
            code.replace('-', " "),
        ];
        for v in variants {
            assert_eq!(hash_recovery_code(&user, &v), Some(stored), "{v}");
        }
        assert_ne!(hash_recovery_code(&UserId::new("bob"), &code), Some(stored));
        assert_eq!(hash_recovery_code(&user, "short"), None);
        assert_eq!(hash_recovery_code(&user, "abcd-efgh-ijk1"), None);
    }
}
