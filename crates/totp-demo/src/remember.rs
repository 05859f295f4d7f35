//! "Remember this device" in the demo: the library's signed cookie, for 30
//! days, offered as a checkbox on the second screen (off unless ticked).
//!
//! The cookie's signing key must be the same on every instance and after
//! a restart, or a remembered device is forgotten. The demo already has
//! one such secret, the sealing key; [`DeviceKey::derive`] makes a
//! separate key from it (HMAC-SHA256 with a label), so the cookies and the
//! sealed secrets never share a key and the key file stays the only file to
//! keep.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tower_totp::http::RememberDevice;
use tower_totp::seal::SealingKey;
use zeroize::Zeroizing;

use crate::error::DemoError;

/// How long a ticked "Remember this device" spares the second step.
pub const REMEMBER_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the derivation mixes in, so that this key is used for nothing else.
const LABEL: &[u8] = b"totp-demo/remember-device/v1";

/// The key that signs "remember this device" cookies. Zeroized on drop,
/// never printed.
#[derive(Clone)]
pub struct DeviceKey(Zeroizing<[u8; 32]>);

impl DeviceKey {
    /// The device key that belongs to `sealing`: every instance with the
    /// same key file signs and accepts the same cookies.
    pub fn derive(sealing: &SealingKey) -> Self {
        // HMAC takes keys of any length; the hex form carries the key whole.
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(sealing.to_hex().as_bytes())
            .expect("any key length");
        mac.update(LABEL);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Self(key)
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey([redacted])")
    }
}

/// The library's remember-device settings for the demo: `key` (a random
/// one if `None`: devices are then forgotten at restart), [`REMEMBER_FOR`],
/// and a `Secure` cookie exactly when the session cookie is `Secure`.
pub(crate) fn settings(key: Option<&DeviceKey>, secure: bool) -> Result<RememberDevice, DemoError> {
    let remember = match key {
        Some(key) => RememberDevice::new(*key.0, REMEMBER_FOR),
        None => RememberDevice::with_random_key(REMEMBER_FOR).map_err(DemoError::Random)?,
    };
    Ok(if secure {
        remember
    } else {
        remember.insecure_cookie()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sealing_key_one_device_key() {
        let a = SealingKey::generate().unwrap();
        let b = SealingKey::generate().unwrap();
        assert_eq!(*DeviceKey::derive(&a).0, *DeviceKey::derive(&a).0);
        assert_ne!(*DeviceKey::derive(&a).0, *DeviceKey::derive(&b).0);
        assert_eq!(
            format!("{:?}", DeviceKey::derive(&a)),
            "DeviceKey([redacted])"
        );
    }
}
