//! Recovery codes: used instead of a code, issued in sets, counted.

use super::TwoFactor;
use crate::audit::{self, AuditEvent};
use crate::error::Error;
use crate::events::SecurityEventKind;
use crate::recovery::{RecoveryCodes, hash_recovery_code};
use crate::store::RecoveryOutcome;
use crate::user::UserId;
use crate::verify::RejectReason;

/// The outcome of a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryVerdict {
    /// Accepted and used up.
    Accepted {
        /// Unused codes left.
        remaining: usize,
    },
    /// Refused.
    Rejected(RejectReason),
}

impl TwoFactor {
    /// Use a recovery code instead of a code. Counted by the same throttle.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn use_recovery_code(
        &self,
        user: &UserId,
        input: &str,
    ) -> Result<RecoveryVerdict, Error> {
        let verdict = self.decide_recovery_code(user, input).await?;
        match &verdict {
            RecoveryVerdict::Accepted { remaining } => {
                crate::metrics::recovery_code_decided(None);
                let remaining = *remaining;
                self.notify(user, SecurityEventKind::RecoveryCodeUsed { remaining })
                    .await;
            }
            RecoveryVerdict::Rejected(reason) => {
                crate::metrics::recovery_code_decided(Some(reason));
            }
        }
        Ok(verdict)
    }

    /// [`use_recovery_code`](Self::use_recovery_code)'s verdict, before it
    /// is counted and told.
    async fn decide_recovery_code(
        &self,
        user: &UserId,
        input: &str,
    ) -> Result<RecoveryVerdict, Error> {
        let store = &self.inner.store;
        if !store.status(user).await?.enrolled {
            return Ok(RecoveryVerdict::Rejected(RejectReason::NotEnrolled));
        }
        let Some(hash) = hash_recovery_code(user, input) else {
            audit::emit(AuditEvent::Failed, user, "malformed recovery code");
            return Ok(RecoveryVerdict::Rejected(RejectReason::Malformed));
        };
        if let Some(reason) = self.charge_attempt(user).await? {
            return Ok(RecoveryVerdict::Rejected(reason));
        }
        if store.consume_recovery_code(user, &hash).await? == RecoveryOutcome::NoMatch {
            audit::emit(AuditEvent::Failed, user, "recovery code invalid or used");
            return Ok(RecoveryVerdict::Rejected(RejectReason::Invalid));
        }
        store.clear_throttle(user).await?;
        let remaining = store.recovery_codes_left(user).await?;
        audit::emit(AuditEvent::RecoveryCodeUsed, user, "accepted");
        Ok(RecoveryVerdict::Accepted { remaining })
    }

    /// Issue a new set of recovery codes, replacing the old set.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`] (no randomness).
    pub async fn issue_recovery_codes(&self, user: &UserId) -> Result<RecoveryCodes, Error> {
        let codes = RecoveryCodes::generate(self.inner.config.recovery_codes())?;
        self.inner
            .store
            .replace_recovery_codes(user, codes.hashes(user))
            .await?;
        audit::emit(AuditEvent::RecoveryCodesIssued, user, "issued");
        let count = codes.len();
        self.notify(user, SecurityEventKind::RecoveryCodesRegenerated { count })
            .await;
        Ok(codes)
    }

    /// Unused recovery codes left.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, Error> {
        Ok(self.inner.store.recovery_codes_left(user).await?)
    }
}
