//! What a check of a code answers.

use std::time::Duration;

use crate::store::AuthenticatorId;

/// The outcome of checking a code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The code matched and its step is now used.
    Accepted {
        /// The authenticator whose code it was.
        authenticator: AuthenticatorId,
        /// The step it matched.
        step: u64,
        /// The device's offset in steps (matched step minus the server's step).
        offset: i64,
        /// Whether this acceptance resynchronised a drifted device.
        resynchronised: bool,
    },
    /// The code was refused.
    Rejected(RejectReason),
}

impl Verdict {
    /// Whether the code was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// Why a code was refused (or, for the last three, an enrollment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Not a code of the expected shape (see the input rule).
    Malformed,
    /// No step in the window matched.
    Invalid,
    /// It matched a step already used.
    Replayed,
    /// Too many failures: locked out for this long.
    Throttled {
        /// Time until the next attempt is let through.
        retry_after: Duration,
    },
    /// The user has no active authenticator.
    NotEnrolled,
    /// No pending enrollment with the id given (the caller's session has
    /// none, it expired, or it was confirmed or replaced meanwhile).
    NoPendingEnrollment,
    /// This session may add the first authenticator only, and the user has
    /// one already: adding another needs a recent second step.
    AlreadyEnrolled,
    /// The user has the maximum number of active authenticators.
    TooManyAuthenticators,
    /// The user has the maximum number of pending enrollments (one per
    /// session that started one); they expire after the pending time.
    TooManyPendingEnrollments,
}

impl RejectReason {
    /// A short machine-readable name (`malformed`, `invalid`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::Replayed => "replayed",
            Self::Throttled { .. } => "throttled",
            Self::NotEnrolled => "not_enrolled",
            Self::NoPendingEnrollment => "no_pending_enrollment",
            Self::AlreadyEnrolled => "already_enrolled",
            Self::TooManyAuthenticators => "too_many_authenticators",
            Self::TooManyPendingEnrollments => "too_many_pending_enrollments",
        }
    }
}
