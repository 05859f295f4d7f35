use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::code::CodeParams;
use crate::recovery::RecoveryHash;
use crate::seal::SealedSecret;
use crate::throttle::Attempt;

/// The id of one authenticator (or pending enrollment): 16 random hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthenticatorId(String);

impl AuthenticatorId {
    /// A new random id.
    ///
    /// # Errors
    ///
    /// [`crate::seal::SealError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, crate::seal::SealError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|_| crate::seal::SealError::Random)?;
        Ok(Self(data_encoding::HEXLOWER.encode(&raw)))
    }

    /// An id read back from storage or a URL.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthenticatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for AuthenticatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A code that matched outside the window, waiting for its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncCandidate {
    /// The step it matched.
    pub step: u64,
    /// Its offset from the server's step at the time.
    pub offset: i64,
}

/// An authenticator's synchronisation with the server (RFC 6238 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// The newest step accepted; no code for it or an older step is accepted again.
    pub last_step: Option<u64>,
    /// The learned offset of the device's clock, in steps.
    pub offset: i64,
    /// A pending resynchronisation.
    pub resync: Option<ResyncCandidate>,
}

impl SyncState {
    /// Whether the code of `step` can no longer be used: `step` is at or
    /// before the newest accepted step.
    pub fn is_used(&self, step: u64) -> bool {
        self.last_step.is_some_and(|last| step <= last)
    }
}

/// An active authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticator {
    /// Its id.
    pub id: AuthenticatorId,
    /// The name the user gave it ("Pixel 8", "Authy on iPad").
    pub name: String,
    /// The sealed shared secret.
    pub secret: SealedSecret,
    /// The code parameters.
    pub params: CodeParams,
    /// When it was activated.
    pub created_at: UnixTime,
    /// Replay and drift state.
    pub sync: SyncState,
}

/// An enrollment waiting for its first code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEnrollment {
    /// The id the authenticator will have.
    pub id: AuthenticatorId,
    /// Its name.
    pub name: String,
    /// The sealed shared secret.
    pub secret: SealedSecret,
    /// The code parameters.
    pub params: CodeParams,
    /// When the enrollment started.
    pub created_at: UnixTime,
    /// The authenticator it replaces when confirmed (a new phone).
    pub replaces: Option<AuthenticatorId>,
}

/// What the layer needs per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserStatus {
    /// Increases with every change to the user's authenticators.
    pub epoch: u64,
    /// Whether at least one authenticator is active.
    pub enrolled: bool,
    /// Set by [`EnrollmentStore::reset`](super::EnrollmentStore::reset): every
    /// session whose password login is at or before this time is over.
    /// `None` until the user's first reset.
    pub sessions_ended_at: Option<UnixTime>,
}

/// The bounds [`EnrollmentStore::put_pending`](super::EnrollmentStore::put_pending)
/// keeps a user's pending enrollments within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Pending enrollments created before this time have expired: they are
    /// dropped first and do not count.
    pub expired_before: UnixTime,
    /// At most this many pending enrollments per user.
    pub max: usize,
}

/// The result of [`EnrollmentStore::put_pending`](super::EnrollmentStore::put_pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutPending {
    /// Kept beside the user's other pending enrollments.
    Stored,
    /// The user already has the maximum of unexpired pending enrollments;
    /// nothing changed.
    TooMany,
}

/// What [`EnrollmentStore::activate_pending`](super::EnrollmentStore::activate_pending)
/// is asked to do, in one atomic operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The pending enrollment to activate.
    pub pending_id: AuthenticatorId,
    /// The step of the confirming code: the new authenticator's last used step.
    pub step: u64,
    /// The learned offset of the confirming code.
    pub offset: i64,
    /// The activation time (the authenticator's `created_at`).
    pub now: UnixTime,
    /// Activate only if the user has no active authenticator (a session
    /// without a recent second step may add the first one, never another).
    pub first_only: bool,
    /// At most this many active authenticators per user, counted after the
    /// one the pending enrollment replaces is gone.
    pub max_authenticators: usize,
    /// A fresh set of recovery codes, kept if the user had no active
    /// authenticator before, or has no recovery codes left.
    pub recovery: Vec<RecoveryHash>,
}

/// The result of [`EnrollmentStore::activate_pending`](super::EnrollmentStore::activate_pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activated {
    /// No pending enrollment with that id (confirmed, replaced or expired
    /// meanwhile); nothing changed.
    NoPending,
    /// `first_only` was set and the user already has an active
    /// authenticator; nothing changed.
    AlreadyEnrolled,
    /// The user already has `max_authenticators`; nothing changed.
    TooMany,
    /// The authenticator is active.
    Done {
        /// The user's new epoch.
        epoch: u64,
        /// Whether [`Activation::recovery`] replaced the user's recovery codes.
        recovery_issued: bool,
    },
}

/// The result of [`StepStore::consume_step`](super::StepStore::consume_step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The step was newer and is now used.
    Consumed,
    /// The step (or a newer one) was already used.
    Replayed,
    /// No such authenticator (revoked meanwhile).
    NotFound,
}

/// The result of [`EnrollmentStore::revoke`](super::EnrollmentStore::revoke)
/// and of [`TwoFactor::revoke`](crate::TwoFactor::revoke).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RevokeOutcome {
    /// The authenticator is gone and the user's epoch increased.
    Revoked,
    /// The user has no authenticator with that id (never had, or it was
    /// revoked already); nothing changed.
    NotFound,
}

/// The result of [`EnrollmentStore::reseal`](super::EnrollmentStore::reseal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ResealOutcome {
    /// The authenticator's secret is now the new sealed record.
    Resealed,
    /// The user has no authenticator with that id (revoked meanwhile);
    /// nothing changed.
    NotFound,
}

/// The result of
/// [`RecoveryStore::consume_recovery_code`](super::RecoveryStore::consume_recovery_code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RecoveryOutcome {
    /// The code was one of the user's unused codes, and is now used up.
    Consumed,
    /// None of the user's unused codes has this hash (a wrong code, or one
    /// used already); nothing changed.
    NoMatch,
}

/// What [`StepStore::begin_verification`](super::StepStore::begin_verification)
/// read and charged, in one atomic operation: everything the engine needs
/// to decide a login code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationStart {
    /// The user's status, as [`EnrollmentStore::status`](super::EnrollmentStore::status)
    /// would have answered it.
    pub status: UserStatus,
    /// The user's active authenticators with their sync state, as
    /// [`EnrollmentStore::authenticators`](super::EnrollmentStore::authenticators)
    /// would have answered them.
    pub authenticators: Vec<Authenticator>,
    /// The throttle's answer, when an attempt was charged: only if some
    /// active authenticator has exactly the code's number of digits. `None`
    /// means nothing was charged (not enrolled, a malformed code, or no
    /// authenticator with that many digits) and the throttle state is
    /// unchanged.
    pub attempt: Option<Attempt>,
}

/// What [`EnrollmentStore::begin_confirmation`](super::EnrollmentStore::begin_confirmation)
/// read and charged, in one atomic operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationStart {
    /// The pending enrollment, as [`EnrollmentStore::pending`](super::EnrollmentStore::pending)
    /// would have answered it (expiry is still the engine's business).
    pub pending: Option<PendingEnrollment>,
    /// The throttle's answer, when an attempt was charged: only if the
    /// pending enrollment exists and its codes have exactly the code's
    /// number of digits. `None` means nothing was charged.
    pub attempt: Option<Attempt>,
}
