//! "Remember this device": a signed cookie that stands in for the second
//! step on one browser, bound to the user and their enrollment epoch, with
//! an expiry. Any reset, re-sync or revocation changes the epoch and so
//! revokes every such cookie. Off unless the application turns it on.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, header};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::seal::SealError;
use crate::user::UserId;

type HmacSha256 = Hmac<Sha256>;

/// Settings and key of the remember-device cookie.
#[derive(Clone)]
pub struct RememberDevice {
    key: Zeroizing<[u8; 32]>,
    ttl: Duration,
    cookie_name: String,
    secure: bool,
}

impl fmt::Debug for RememberDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RememberDevice")
            .field("ttl", &self.ttl)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl RememberDevice {
    /// Remember devices for `ttl`, signing with `key` (keep it secret and
    /// stable across restarts and instances).
    pub fn new(key: [u8; 32], ttl: Duration) -> Self {
        Self {
            key: Zeroizing::new(key),
            ttl,
            cookie_name: "tower_totp_device".into(),
            secure: true,
        }
    }

    /// A random key: remembered devices are forgotten at restart.
    ///
    /// # Errors
    ///
    /// [`SealError::Random`] if the random source fails.
    pub fn with_random_key(ttl: Duration) -> Result<Self, SealError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| SealError::Random)?;
        Ok(Self::new(key, ttl))
    }

    /// Send the cookie over plain HTTP too (for local development only).
    #[must_use]
    pub fn insecure_cookie(mut self) -> Self {
        self.secure = false;
        self
    }

    /// How long a device is remembered.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, user: &UserId, epoch: u64, expiry: u64) -> HmacSha256 {
        // HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&*self.key).expect("any key length");
        mac.update(b"tower-totp/remember/v1\0");
        mac.update(user.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(&epoch.to_be_bytes());
        mac.update(&expiry.to_be_bytes());
        mac
    }

    /// The `Set-Cookie` value remembering this device for `user` at `epoch`.
    pub fn issue(&self, user: &UserId, epoch: u64, now: UnixTime) -> Option<HeaderValue> {
        let expiry = now.saturating_add(self.ttl).as_millis();
        let tag = self.mac(user, epoch, expiry).finalize().into_bytes();
        let value = format!(
            "{name}=v1.{expiry}.{epoch}.{tag}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}",
            name = self.cookie_name,
            tag = data_encoding::HEXLOWER.encode(&tag),
            age = self.ttl.as_secs(),
            secure = if self.secure { "; Secure" } else { "" },
        );
        HeaderValue::from_str(&value).ok()
    }

    /// The cookie's value in a request, if present.
    pub(crate) fn cookie_value<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie_name)
            .map(|(_, value)| value)
    }

    /// Whether `cookie` remembers this device for `user` at `epoch` at `now`.
    pub fn verify(&self, cookie: &str, user: &UserId, epoch: u64, now: UnixTime) -> bool {
        let mut parts = cookie.split('.');
        let (Some("v1"), Some(expiry), Some(cookie_epoch), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return false;
        };
        let (Ok(expiry), Ok(cookie_epoch), Ok(tag)) = (
            expiry.parse::<u64>(),
            cookie_epoch.parse::<u64>(),
            data_encoding::HEXLOWER.decode(tag.as_bytes()),
        ) else {
            return false;
        };
        if cookie_epoch != epoch || now.as_millis() >= expiry {
            return false;
        }
        // Constant-time tag comparison.
        self.mac(user, epoch, expiry).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_bound_to_user_epoch_and_time() {
        let r = RememberDevice::new([7; 32], Duration::from_secs(3600));
        let alice = UserId::new("alice");
        let now = UnixTime::from_secs(1_000_000);
        let header = r.issue(&alice, 4, now).unwrap();
        let text = header.to_str().unwrap();
        let value = text.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(r.verify(value, &alice, 4, now));
        assert!(!r.verify(value, &alice, 5, now), "another epoch");
        assert!(
            !r.verify(value, &UserId::new("bob"), 4, now),
            "another user"
        );
        assert!(!r.verify(
            value,
            &alice,
            4,
            now.saturating_add(Duration::from_secs(3600))
        ));
        let other_key = RememberDevice::new([8; 32], Duration::from_secs(3600));
        assert!(!other_key.verify(value, &alice, 4, now));
        let forged = value.replace(".4.", ".5.");
        assert!(!r.verify(&forged, &alice, 5, now));
        assert!(!r.verify("garbage", &alice, 4, now));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {text}")).unwrap(),
        );
        assert_eq!(r.cookie_value(&headers), Some(value));
    }
}
