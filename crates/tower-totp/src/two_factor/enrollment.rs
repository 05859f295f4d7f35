//! Enrollment: a new secret waits, sealed, as a pending enrollment until
//! its first code confirms it.

use std::time::Duration;

use super::TwoFactor;
use crate::audit::{self, AuditEvent};
use crate::clock::UnixTime;
use crate::code::{Hotp, Secret, parse_typed_code};
use crate::enroll::{Enrollment, clean_name};
use crate::error::Error;
use crate::events::SecurityEventKind;
use crate::recovery::RecoveryCodes;
use crate::seal::SealError;
use crate::store::{
    Activated, Activation, AuthenticatorId, PendingEnrollment, PendingLimits, PutPending,
    StoreError,
};
use crate::throttle::Attempt;
use crate::user::UserId;
use crate::verify::matching::find_step;
use crate::verify::{RejectReason, offset_of};

/// Which confirmations may activate a pending enrollment. The store checks
/// it in the same atomic step as the activation, so that of two sessions
/// confirming at once without a second step, one at most wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmAs {
    /// Only while the user has no active authenticator: all that a session
    /// without a recent second step may do.
    FirstAuthenticator,
    /// Beside (or in place of) active authenticators: the session did a
    /// recent second step.
    AnotherAuthenticator,
}

/// The outcome of confirming an enrollment with its first code.
#[derive(Debug)]
#[non_exhaustive]
pub enum Confirmation {
    /// The authenticator is active.
    Confirmed {
        /// Its id.
        authenticator: AuthenticatorId,
        /// The user's new epoch.
        epoch: u64,
        /// New recovery codes, to show once: issued when the user had no
        /// active authenticator before this one, or no codes left.
        recovery_codes: Option<RecoveryCodes>,
        /// The device's offset in steps (matched step minus the server's
        /// step), as in [`Verdict::Accepted`](crate::Verdict::Accepted).
        offset: i64,
    },
    /// The code was refused.
    Rejected(RejectReason),
}

impl Confirmation {
    /// Whether the authenticator is now active.
    pub fn is_confirmed(&self) -> bool {
        matches!(self, Self::Confirmed { .. })
    }
}

/// Whether `p` is younger than `ttl` at `now`. Elapsed time, not a
/// saturating deadline: `created_at + ttl` saturates near the end of `u64`
/// milliseconds and would expire every enrollment there at once.
fn is_fresh(p: &PendingEnrollment, now: UnixTime, ttl: Duration) -> bool {
    now.duration_since(p.created_at) < ttl
}

impl TwoFactor {
    /// Start an enrollment: a new secret, kept sealed as a pending
    /// enrollment until its first code confirms it. `account` labels it in
    /// the app; `name` is cleaned ([`clean_name`]); `replaces` names an
    /// authenticator the new one replaces on confirmation (a new phone).
    ///
    /// The enrollment's [`id`](Enrollment::id) is what the caller keeps in
    /// the session that started it: the user's other pending enrollments
    /// (other sessions) stay as they are, and only this id shows or
    /// confirms this one.
    ///
    /// `Ok(Err(reason))` when a cap refuses it:
    /// [`RejectReason::TooManyAuthenticators`] (counting without the one
    /// `replaces` names) or [`RejectReason::TooManyPendingEnrollments`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`].
    pub async fn start_enrollment(
        &self,
        user: &UserId,
        account: &str,
        name: &str,
        replaces: Option<AuthenticatorId>,
    ) -> Result<Result<Enrollment, RejectReason>, Error> {
        let cfg = &self.inner.config;
        let store = &self.inner.store;
        let staying = store
            .authenticators(user)
            .await?
            .iter()
            .filter(|a| Some(&a.id) != replaces.as_ref())
            .count();
        if staying >= cfg.max_authenticators() {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "too many authenticators",
            );
            return Ok(Err(RejectReason::TooManyAuthenticators));
        }
        let name = clean_name(name);
        let secret = Secret::try_generate(cfg.secret_bits()).map_err(|_| SealError::Random)?;
        let id = AuthenticatorId::generate()?;
        let now = self.now();
        let pending = PendingEnrollment {
            id: id.clone(),
            name: name.clone(),
            secret: self.inner.keys.seal(user, &secret)?,
            params: cfg.params(),
            created_at: now,
            replaces,
        };
        let limits = PendingLimits {
            // Fresh means younger than the pending time (`fresh_pending`):
            // created at `now - ttl` or before has expired.
            expired_before: now
                .saturating_sub(cfg.pending_ttl())
                .saturating_add(std::time::Duration::from_millis(1)),
            max: cfg.max_pending_enrollments(),
        };
        if store.put_pending(user, pending, limits).await? == PutPending::TooMany {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "too many pending enrollments",
            );
            return Ok(Err(RejectReason::TooManyPendingEnrollments));
        }
        audit::emit(AuditEvent::EnrollmentStarted, user, "pending");
        Ok(Ok(Enrollment::new(
            id,
            name,
            secret,
            cfg.params(),
            cfg.issuer(),
            account,
        )))
    }

    /// The pending enrollment `id` of `user`, if it exists and has not
    /// expired.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`].
    pub async fn pending_enrollment(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        account: &str,
    ) -> Result<Option<Enrollment>, Error> {
        let Some(p) = self.fresh_pending(user, id).await? else {
            return Ok(None);
        };
        let secret = self.inner.keys.open(user, &p.secret)?;
        let cfg = &self.inner.config;
        Ok(Some(Enrollment::new(
            p.id,
            p.name,
            secret,
            p.params,
            cfg.issuer(),
            account,
        )))
    }

    /// Forget the pending enrollment `id` (its session starts another one,
    /// or gives up). The user's other pending enrollments stay.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn cancel_enrollment(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<(), Error> {
        Ok(self.inner.store.remove_pending(user, id).await?)
    }

    async fn fresh_pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, Error> {
        let now = self.now();
        let ttl = self.inner.config.pending_ttl();
        Ok(self
            .inner
            .store
            .pending(user, id)
            .await?
            .filter(|p| is_fresh(p, now, ttl)))
    }

    /// Confirm the pending enrollment `id` with its first code. The code's
    /// step counts as used, so it cannot be replayed at login.
    ///
    /// `confirm_as` says what the confirming session may do: a session
    /// without a recent second step confirms as
    /// [`ConfirmAs::FirstAuthenticator`], and is refused
    /// ([`RejectReason::AlreadyEnrolled`]) once the user has an
    /// authenticator, even if another session activated it a moment ago.
    ///
    /// A fresh set of recovery codes is made every time, and the store keeps
    /// it, in the activation itself, when the user had no authenticator
    /// before or no codes left: then it is in the confirmation, to show once.
    /// The confirmation is the only copy: if the caller cannot show it (its
    /// session store fails right after), the codes are stored but unseen,
    /// and the user issues new ones after the next login
    /// ([`issue_recovery_codes`](Self::issue_recovery_codes)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`].
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn confirm_enrollment(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        input: &str,
        confirm_as: ConfirmAs,
    ) -> Result<Confirmation, Error> {
        // One store operation reads the pending enrollment and charges the
        // attempt, and only for a code of its digit count: a malformed
        // code is refused uncharged.
        let code = parse_typed_code(input);
        let now = self.now();
        let policy = self.inner.config.throttle();
        let start = self
            .inner
            .store
            .begin_confirmation(user, id, now, &policy, code.map(|c| c.digits()))
            .await?;
        let ttl = self.inner.config.pending_ttl();
        let Some(pending) = start.pending.filter(|p| is_fresh(p, now, ttl)) else {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "no such pending enrollment",
            );
            return Ok(Confirmation::Rejected(RejectReason::NoPendingEnrollment));
        };
        let Some(code) = code.filter(|c| c.digits() == pending.params.digits()) else {
            return Ok(Confirmation::Rejected(RejectReason::Malformed));
        };
        match start.attempt {
            Some(Attempt::Allowed) => {}
            Some(Attempt::Locked { retry_after }) => {
                let reason = self.locked_out(user, retry_after).await;
                return Ok(Confirmation::Rejected(reason));
            }
            None => {
                return Err(Error::from(StoreError::corrupt(
                    "begin_confirmation charged nothing for a code it could check",
                )));
            }
        }
        let secret = self.inner.keys.open(user, &pending.secret)?;
        let hotp = Hotp::new(&secret, pending.params);
        let window = self.inner.config.window();
        let now_step = pending.params.step_at(now);
        // A new device has no learned offset: the window around the server's step.
        let Some(step) = find_step(&hotp, &code, window.steps(now_step, 0)) else {
            audit::emit(AuditEvent::Failed, user, "enrollment code invalid");
            return Ok(Confirmation::Rejected(RejectReason::Invalid));
        };
        let codes = RecoveryCodes::generate(self.inner.config.recovery_codes())?;
        let offset = offset_of(step, now_step);
        let activation = Activation {
            pending_id: pending.id.clone(),
            step,
            offset,
            now,
            first_only: confirm_as == ConfirmAs::FirstAuthenticator,
            max_authenticators: self.inner.config.max_authenticators(),
            recovery: codes.hashes(user),
        };
        let (reason, detail) = match self.inner.store.activate_pending(user, &activation).await? {
            Activated::Done {
                epoch,
                recovery_issued,
            } => {
                if let Some(replaced) = &pending.replaces {
                    self.inner.key_cache.evict(user, replaced);
                }
                audit::emit(AuditEvent::Enrolled, user, "activated");
                crate::metrics::enrolled();
                if recovery_issued {
                    audit::emit(AuditEvent::RecoveryCodesIssued, user, "issued");
                }
                let kind = SecurityEventKind::EnrollmentCompleted {
                    authenticator: pending.id.clone(),
                    name: pending.name.clone(),
                    replaced: pending.replaces.is_some(),
                };
                self.notify(user, kind).await;
                return Ok(Confirmation::Confirmed {
                    authenticator: pending.id,
                    epoch,
                    recovery_codes: recovery_issued.then_some(codes),
                    offset,
                });
            }
            Activated::NoPending => (
                RejectReason::NoPendingEnrollment,
                "pending enrollment gone meanwhile",
            ),
            Activated::AlreadyEnrolled => (
                RejectReason::AlreadyEnrolled,
                "already enrolled: another authenticator needs a second step",
            ),
            Activated::TooMany => (
                RejectReason::TooManyAuthenticators,
                "too many authenticators",
            ),
        };
        audit::emit(AuditEvent::EnrollmentRefused, user, detail);
        Ok(Confirmation::Rejected(reason))
    }
}
