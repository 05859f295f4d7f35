//! Key rotation: secrets sealed under a retired key are sealed again under
//! the current one, on use and in the background.

use super::TwoFactor;
use crate::audit::TARGET as AUDIT_TARGET;
use crate::error::Error;
#[cfg(doc)]
use crate::seal::Keyring;
use crate::store::{Authenticator, ResealOutcome};
use crate::user::UserId;

impl TwoFactor {
    /// Key rotation on use: a secret sealed under a retired key is sealed
    /// again under the current one. A failure here is logged, not returned:
    /// the old record still opens.
    pub(super) async fn reseal_if_old(&self, user: &UserId, a: &Authenticator) {
        if self.inner.keys.is_current(&a.secret) {
            return;
        }
        let resealed = self
            .inner
            .keys
            .open(user, &a.secret)
            .and_then(|s| self.inner.keys.seal(user, &s));
        let outcome = match resealed {
            Ok(sealed) => self
                .inner
                .store
                .reseal(user, &a.id, sealed)
                .await
                .map(|_| self.inner.key_cache.evict(user, &a.id))
                .map_err(Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            tracing::warn!(target: AUDIT_TARGET, event = "reseal_failed", user.id = %user, error = %e);
        }
    }

    /// Key rotation in the background: seal again, under the current key,
    /// every authenticator of `user` sealed under another key; how many were
    /// re-sealed. Run it over the user list after [`Keyring::rotated_to`];
    /// once it has passed every user without an error, and pending
    /// enrollments sealed before the rotation have expired, the old key can
    /// leave the keyring ([`Keyring::without`]). See "Key rotation" in
    /// `docs/security.md`.
    ///
    /// Re-sealing leaves the sync state alone (used steps stay used) and is
    /// safe alongside logins, which re-seal on use: both write a record
    /// under the current key. Running it again finds nothing to do.
    ///
    /// # Errors
    ///
    /// [`Error::Seal`] when a record does not open (its key is no longer in
    /// the keyring, or it is damaged), [`Error::Store`] when the store
    /// fails. Records re-sealed before the error stay re-sealed.
    pub async fn reseal_user(&self, user: &UserId) -> Result<usize, Error> {
        let keys = &self.inner.keys;
        let mut resealed = 0;
        for a in self.inner.store.authenticators(user).await? {
            if keys.is_current(&a.secret) {
                continue;
            }
            let sealed = keys.seal(user, &keys.open(user, &a.secret)?)?;
            let outcome = self.inner.store.reseal(user, &a.id, sealed).await?;
            self.inner.key_cache.evict(user, &a.id);
            match outcome {
                ResealOutcome::Resealed => resealed += 1,
                // Revoked meanwhile: nothing left to re-seal.
                ResealOutcome::NotFound => {}
            }
        }
        Ok(resealed)
    }
}
