//! Secrets at rest: sealed with AES-256-GCM under a server key.
//!
//! AES-256-GCM rather than XChaCha20-Poly1305: it opens faster with AES-NI,
//! and a secret is opened on every verification (`docs/performance.md`,
//! bench `verification`, `breakdown/open sealed secret`). Its 96-bit random
//! nonces are safe for up to 2^32 seals per key (NIST SP 800-38D), far
//! beyond the enrollments and re-seals a key sees before rotation.
//!
//! Each sealed record names the key it was sealed with, so keys can be
//! rotated while old records stay readable, and binds the user id as
//! associated data, so a record copied to another user does not open.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::HEXLOWER_PERMISSIVE;
use zeroize::Zeroizing;

use crate::code::Secret;
use crate::user::UserId;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AAD_DOMAIN: &[u8] = b"tower-totp/secret/v1\0";

/// A 256-bit server key for sealing secrets. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl SealingKey {
    /// A new random key from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`SealError::Random`] if the operating system's random source fails.
    pub fn generate() -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key).map_err(|_| SealError::Random)?;
        Ok(Self(key))
    }

    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from 64 hexadecimal digits (surrounding white space ignored).
    ///
    /// # Errors
    ///
    /// [`SealError::KeyFormat`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = Zeroizing::new(
            HEXLOWER_PERMISSIVE
                .decode(text.trim().as_bytes())
                .map_err(|_| SealError::KeyFormat)?,
        );
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::KeyFormat)?;
        Ok(Self::from_bytes(array))
    }

    /// The key as 64 lower-case hexadecimal digits, for a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::HEXLOWER.encode(&*self.0))
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

/// A sealed secret as stores keep it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    key_id: u32,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SealedSecret {
    /// The id of the key it was sealed under.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// One byte string for storage: key id (4 bytes, big-endian), nonce, ciphertext.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + NONCE_LEN + self.ciphertext.len());
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Read back what [`SealedSecret::to_bytes`] wrote.
    ///
    /// # Errors
    ///
    /// [`SealError::Damaged`] when it is too short to be a sealed secret.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        // A tag of 16 bytes follows even an empty plaintext.
        if bytes.len() < 4 + NONCE_LEN + TAG_LEN {
            return Err(SealError::Damaged);
        }
        let (id, rest) = bytes.split_at(4);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Self {
            key_id: u32::from_be_bytes(id.try_into().map_err(|_| SealError::Damaged)?),
            nonce: nonce.try_into().map_err(|_| SealError::Damaged)?,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// What tells one seal of a record from another: the key id, the nonce
/// (random, new with every seal) and the authentication tag (which covers
/// the ciphertext). Equal versions mean the same sealed bytes, so the same
/// opened secret; not secret itself. The key cache compares it with what
/// every store read returns (`two_factor::key_cache`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealVersion {
    key_id: u32,
    nonce: [u8; NONCE_LEN],
    tag: [u8; TAG_LEN],
}

impl SealedSecret {
    /// This record's [`SealVersion`].
    pub(crate) fn version(&self) -> SealVersion {
        // AES-GCM appends its tag; `from_bytes` refuses anything shorter.
        let tail = &self.ciphertext[self.ciphertext.len().saturating_sub(TAG_LEN)..];
        let mut tag = [0u8; TAG_LEN];
        tag[..tail.len()].copy_from_slice(tail);
        SealVersion {
            key_id: self.key_id,
            nonce: self.nonce,
            tag,
        }
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record names a key this keyring does not hold.
    #[error("no sealing key with id {0}")]
    UnknownKey(u32),
    /// Authentication failed: the record was altered, or belongs to another user.
    #[error("sealed secret failed authentication")]
    Damaged,
    /// A key file did not hold 64 hexadecimal digits.
    #[error("a sealing key is 64 hexadecimal digits")]
    KeyFormat,
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

/// The server's sealing keys: one current key that seals, and older keys
/// that still open what they sealed.
///
/// ```
/// use tower_totp::code::Secret;
/// use tower_totp::seal::{Keyring, SealingKey};
/// use tower_totp::UserId;
///
/// let old = Keyring::new(1, SealingKey::generate().unwrap());
/// let secret = Secret::generate();
/// let alice = UserId::new("alice");
/// let sealed = old.seal(&alice, &secret).unwrap();
///
/// // Rotate: key 2 seals from now on, key 1 still opens old records.
/// let new = old.rotated_to(2, SealingKey::generate().unwrap());
/// assert_eq!(new.open(&alice, &sealed).unwrap(), secret);
/// assert!(!new.is_current(&sealed));
/// // Copied to another user, the record does not open.
/// assert!(new.open(&UserId::new("mallory"), &sealed).is_err());
/// ```
#[derive(Clone)]
pub struct Keyring {
    current: u32,
    keys: Arc<BTreeMap<u32, Aes256Gcm>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring whose current key is `key`, named `id`.
    pub fn new(id: u32, key: SealingKey) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(id, Aes256Gcm::new((&*key.0).into()));
        Self {
            current: id,
            keys: Arc::new(keys),
        }
    }

    /// A keyring with a random key, for tests and in-memory use where nothing
    /// outlives the process.
    ///
    /// # Errors
    ///
    /// [`SealError::Random`] if the operating system's random source fails.
    pub fn ephemeral() -> Result<Self, SealError> {
        Ok(Self::new(0, SealingKey::generate()?))
    }

    /// This keyring with `key` added as readable only (a retired key).
    #[must_use]
    pub fn with_retired(self, id: u32, key: SealingKey) -> Self {
        let mut keys = (*self.keys).clone();
        keys.insert(id, Aes256Gcm::new((&*key.0).into()));
        Self {
            current: self.current,
            keys: Arc::new(keys),
        }
    }

    /// This keyring with `key` as the new current key; the old keys stay
    /// readable.
    #[must_use]
    pub fn rotated_to(self, id: u32, key: SealingKey) -> Self {
        let mut ring = self.with_retired(id, key);
        ring.current = id;
        ring
    }

    /// This keyring without the key `id` (once nothing is sealed under it).
    /// The current key cannot be removed.
    #[must_use]
    pub fn without(self, id: u32) -> Self {
        if id == self.current {
            return self;
        }
        let mut keys = (*self.keys).clone();
        keys.remove(&id);
        Self {
            current: self.current,
            keys: Arc::new(keys),
        }
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> u32 {
        self.current
    }

    /// Whether `sealed` is sealed under the current key.
    pub fn is_current(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id == self.current
    }

    /// Seal `secret` for `user` under the current key.
    ///
    /// # Errors
    ///
    /// [`SealError::Random`] if no nonce can be drawn.
    pub fn seal(&self, user: &UserId, secret: &Secret) -> Result<SealedSecret, SealError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or(SealError::UnknownKey(self.current))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let aad = associated_data(user);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Damaged)?;
        Ok(SealedSecret {
            key_id: self.current,
            nonce,
            ciphertext,
        })
    }

    /// Open a secret sealed for `user`.
    ///
    /// # Errors
    ///
    /// [`SealError::UnknownKey`] if its key is not in this keyring,
    /// [`SealError::Damaged`] if it was altered or sealed for another user.
    pub fn open(&self, user: &UserId, sealed: &SealedSecret) -> Result<Secret, SealError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or(SealError::UnknownKey(sealed.key_id))?;
        let aad = associated_data(user);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&sealed.nonce),
                    Payload {
                        msg: &sealed.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| SealError::Damaged)?,
        );
        Secret::from_bytes(&plain).map_err(|_| SealError::Damaged)
    }
}

fn associated_data(user: &UserId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + user.as_str().len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(user.as_str().as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(id: u32) -> Keyring {
        Keyring::new(id, SealingKey::generate().unwrap())
    }

    #[test]
    fn round_trip_through_bytes() {
        let k = ring(7);
        let u = UserId::new("u");
        let s = Secret::generate();
        let sealed = k.seal(&u, &s).unwrap();
        let back = SealedSecret::from_bytes(&sealed.to_bytes()).unwrap();
        assert_eq!(back.key_id(), 7);
        assert_eq!(k.open(&u, &back).unwrap(), s);
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let k = ring(1);
        let u = UserId::new("u");
        let sealed = k.seal(&u, &Secret::generate()).unwrap();
        let mut bytes = sealed.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let bad = SealedSecret::from_bytes(&bytes).unwrap();
        assert_eq!(k.open(&u, &bad).err(), Some(SealError::Damaged));
        assert_eq!(
            ring(2).open(&u, &sealed).err(),
            Some(SealError::UnknownKey(1))
        );
        assert_eq!(ring(1).open(&u, &sealed).err(), Some(SealError::Damaged));
        assert_eq!(
            SealedSecret::from_bytes(&[0; 10]).err(),
            Some(SealError::Damaged)
        );
    }

    #[test]
    fn retired_keys_open_but_do_not_seal() {
        let old_key = SealingKey::generate().unwrap();
        let old = Keyring::new(1, old_key.clone());
        let u = UserId::new("u");
        let s = Secret::generate();
        let sealed_old = old.seal(&u, &s).unwrap();
        let new = old.rotated_to(2, SealingKey::generate().unwrap());
        let resealed = new.seal(&u, &new.open(&u, &sealed_old).unwrap()).unwrap();
        assert_eq!(resealed.key_id(), 2);
        let retired = new.without(1);
        assert_eq!(retired.open(&u, &resealed).unwrap(), s);
        assert!(retired.open(&u, &sealed_old).is_err());
        assert_eq!(retired.clone().without(2).current_id(), 2);
    }

    #[test]
    fn keys_round_trip_through_hex_and_never_print() {
        let key = SealingKey::generate().unwrap();
        let hex = key.to_hex();
        let again = SealingKey::from_hex(&format!(" {}\n", &*hex)).unwrap();
        assert_eq!(again.0, key.0);
        assert!(!format!("{key:?}").contains(&hex[..8]));
        assert_eq!(
            SealingKey::from_hex("abc").err(),
            Some(SealError::KeyFormat)
        );
    }
}
