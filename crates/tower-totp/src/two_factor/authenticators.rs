//! A user's authenticators: listed to their owner, revoked one by one, or
//! all reset at once (by the user or an administrator).

use super::TwoFactor;
use crate::audit::{self, AuditEvent};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::events::SecurityEventKind;
#[cfg(doc)]
use crate::store::UserStatus;
use crate::store::{AuthenticatorId, RevokeOutcome};
use crate::user::UserId;

/// An authenticator as listed to its owner (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorInfo {
    /// Its id.
    pub id: AuthenticatorId,
    /// Its name.
    pub name: String,
    /// When it was activated.
    pub created_at: UnixTime,
    /// The learned clock offset in steps.
    pub offset: i64,
}

impl TwoFactor {
    /// The user's active authenticators.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn authenticators(&self, user: &UserId) -> Result<Vec<AuthenticatorInfo>, Error> {
        Ok(self
            .inner
            .store
            .authenticators(user)
            .await?
            .into_iter()
            .map(|a| AuthenticatorInfo {
                id: a.id,
                name: a.name,
                created_at: a.created_at,
                offset: a.sync.offset,
            })
            .collect())
    }

    /// Revoke one authenticator: [`RevokeOutcome::Revoked`], or
    /// [`RevokeOutcome::NotFound`] if the user has none with that id.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, Error> {
        let outcome = self.inner.store.revoke(user, id).await?;
        // Wiped whatever the store answers: a revoked secret is not kept.
        self.inner.key_cache.evict(user, id);
        if outcome == RevokeOutcome::Revoked {
            audit::emit(AuditEvent::Revoked, user, "revoked");
            let authenticator = id.clone();
            self.notify(
                user,
                SecurityEventKind::AuthenticatorRevoked { authenticator },
            )
            .await;
        }
        Ok(outcome)
    }

    /// Remove every authenticator, every pending enrollment and the
    /// recovery codes, and end every session of the user: sessions whose
    /// password login is at or before now are logged out by the layer and
    /// the endpoints ([`UserStatus::sessions_ended_at`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn reset(&self, user: &UserId) -> Result<(), Error> {
        self.inner.store.reset(user, self.now()).await?;
        self.inner.key_cache.evict_user(user);
        audit::emit(AuditEvent::Reset, user, "reset");
        Ok(())
    }

    /// [`reset`](Self::reset) done by the administrator `admin`: the audit
    /// event names both.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn reset_by(&self, admin: &UserId, user: &UserId) -> Result<(), Error> {
        self.inner.store.reset(user, self.now()).await?;
        self.inner.key_cache.evict_user(user);
        audit::emit_admin(
            AuditEvent::AdminReset,
            admin,
            user,
            "second factor reset, sessions ended",
        );
        let admin = admin.clone();
        self.notify(user, SecurityEventKind::SecondFactorReset { admin })
            .await;
        Ok(())
    }
}
